"""Who may do what: use-case permissions (data) and row-level visibility scopes."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import PermissionDenied
from domain.model.message_keys import keyed
from domain.model.vocab import Role, Stage

R = Role


class UseCase(StrEnum):
    CREATE_LEAD = "create_lead"
    UPDATE_LEAD = "update_lead"
    ASSIGN_LEAD = "assign_lead"
    CHANGE_LEAD_STATUS = "change_lead_status"
    CONVERT_LEAD = "convert_lead"
    LOG_ACTIVITY = "log_activity"
    CREATE_ACCOUNT = "create_account"
    UPDATE_ACCOUNT = "update_account"
    ADD_CONTACT = "add_contact"
    VIEW_ACCOUNT = "view_account"
    CREATE_OPPORTUNITY = "create_opportunity"
    UPDATE_OPPORTUNITY = "update_opportunity"
    ASSIGN_TRIANGLE = "assign_triangle"
    RECORD_SOLUTION = "record_solution"
    RECORD_DELIVERY_PLAN = "record_delivery_plan"
    SIGN_OFF_DELIVERABILITY = "sign_off_deliverability"
    ADVANCE_STAGE = "advance_stage"
    CLOSE_OPPORTUNITY = "close_opportunity"
    REQUEST_GATE = "request_gate"
    DECIDE_APPROVAL = "decide_approval"
    CANCEL_APPROVAL = "cancel_approval"
    VIEW_OPPORTUNITY = "view_opportunity"
    VIEW_LEAD = "view_lead"
    MANAGE_USERS = "manage_users"
    MANAGE_CATALOG = "manage_catalog"
    BUILD_QUOTE = "build_quote"
    SEND_QUOTE = "send_quote"
    MANAGE_CONTRACT = "manage_contract"
    CHANGE_CONTRACT = "change_contract"
    CLOSE_CONTRACT = "close_contract"
    MANAGE_DELIVERY = "manage_delivery"
    ISSUE_INVOICE = "issue_invoice"
    VOID_INVOICE = "void_invoice"
    RECORD_PAYMENT = "record_payment"
    PROPOSE_PAYMENT = "propose_payment"
    RECORD_PROMISE = "record_promise"
    RUN_JOBS = "run_jobs"
    RECORD_CONTRIBUTION = "record_contribution"
    CONFIRM_ACTION = "confirm_action"
    SEARCH_RECORDS = "search_records"
    VIEW_ANALYTICS = "view_analytics"
    SET_TARGET = "set_target"
    MANAGE_API_KEYS = "manage_api_keys"


_SELLERS = frozenset({R.SALES_REP, R.SALES_MANAGER, R.DIRECTOR, R.SALES_OPS, R.ADMIN})
_DEAL_LEADS = frozenset({R.SALES_REP, R.SALES_MANAGER, R.DIRECTOR, R.ADMIN})
_MANAGERS = frozenset({R.SALES_MANAGER, R.DIRECTOR, R.SALES_OPS, R.ADMIN})
_EVERYONE = frozenset(Role)

# Which roles may attempt a use case at all. Row-level checks (visibility, seat on the deal,
# eligibility as approver) come on top, in the services.
PERMISSIONS: dict[UseCase, frozenset[Role]] = {
    UseCase.CREATE_LEAD: _SELLERS,
    UseCase.UPDATE_LEAD: _SELLERS,
    UseCase.ASSIGN_LEAD: _MANAGERS,
    UseCase.CHANGE_LEAD_STATUS: _SELLERS,
    UseCase.CONVERT_LEAD: _SELLERS,
    UseCase.LOG_ACTIVITY: _SELLERS | {R.SOLUTION_MANAGER, R.FULFILLMENT_MANAGER},
    UseCase.CREATE_ACCOUNT: _SELLERS,
    UseCase.UPDATE_ACCOUNT: _SELLERS,
    UseCase.ADD_CONTACT: _SELLERS | {R.SOLUTION_MANAGER},
    UseCase.VIEW_ACCOUNT: _EVERYONE,
    UseCase.CREATE_OPPORTUNITY: _DEAL_LEADS,
    UseCase.UPDATE_OPPORTUNITY: _DEAL_LEADS | {R.SALES_OPS},
    UseCase.ASSIGN_TRIANGLE: _DEAL_LEADS | {R.SALES_OPS},
    UseCase.RECORD_SOLUTION: frozenset({R.SOLUTION_MANAGER, R.ADMIN}),
    UseCase.RECORD_DELIVERY_PLAN: frozenset({R.FULFILLMENT_MANAGER, R.ADMIN}),
    UseCase.SIGN_OFF_DELIVERABILITY: frozenset({R.FULFILLMENT_MANAGER}),
    UseCase.ADVANCE_STAGE: _DEAL_LEADS,
    UseCase.CLOSE_OPPORTUNITY: _DEAL_LEADS,
    UseCase.REQUEST_GATE: _DEAL_LEADS | {R.SALES_OPS},
    UseCase.DECIDE_APPROVAL: frozenset({R.SALES_MANAGER, R.DIRECTOR, R.FINANCE, R.LEGAL, R.ADMIN}),
    UseCase.CANCEL_APPROVAL: _DEAL_LEADS | {R.SALES_OPS},
    UseCase.VIEW_OPPORTUNITY: _EVERYONE,
    UseCase.VIEW_LEAD: _SELLERS,
    UseCase.MANAGE_USERS: frozenset({R.ADMIN}),
    UseCase.MANAGE_CATALOG: frozenset({R.ADMIN, R.SALES_OPS}),
    UseCase.BUILD_QUOTE: _DEAL_LEADS | {R.SOLUTION_MANAGER},
    UseCase.SEND_QUOTE: _DEAL_LEADS,
    UseCase.MANAGE_CONTRACT: _DEAL_LEADS | {R.SALES_OPS},
    UseCase.CHANGE_CONTRACT: _DEAL_LEADS | {R.SALES_OPS},
    UseCase.CLOSE_CONTRACT: frozenset({R.FINANCE}),  # the books are finance's: no admin override
    UseCase.MANAGE_DELIVERY: frozenset({R.FULFILLMENT_MANAGER, R.SALES_OPS, R.ADMIN}),
    UseCase.ISSUE_INVOICE: frozenset({R.FINANCE}),
    UseCase.VOID_INVOICE: frozenset({R.FINANCE}),  # finance only: no admin override on the books
    UseCase.RECORD_PAYMENT: frozenset({R.FINANCE}),
    UseCase.PROPOSE_PAYMENT: frozenset({R.SALES_REP, R.SALES_MANAGER, R.DIRECTOR}),
    UseCase.RECORD_PROMISE: frozenset({R.SALES_REP, R.SALES_MANAGER, R.DIRECTOR, R.FINANCE}),
    UseCase.RUN_JOBS: frozenset({R.ADMIN, R.SALES_OPS, R.FINANCE}),
    UseCase.RECORD_CONTRIBUTION: frozenset({R.SALES_MANAGER, R.DIRECTOR, R.SALES_OPS, R.ADMIN}),
    # Anyone may answer their own proposals; what the proposal then does is checked again on its own.
    UseCase.CONFIRM_ACTION: _EVERYONE,
    UseCase.SEARCH_RECORDS: _EVERYONE,  # results are filtered by each record's visibility
    # Numbers are scoped to the asker's deals or subtree; delivery and legal have no pipeline to read.
    UseCase.VIEW_ANALYTICS: _SELLERS | {R.FINANCE},
    UseCase.SET_TARGET: _MANAGERS,
    UseCase.MANAGE_API_KEYS: frozenset({R.ADMIN}),  # a key acts as anyone it names: admin only
}

# Finance and legal see the deals their function works on, not the early funnel.
FUNCTION_STAGES: dict[Role, frozenset[Stage]] = {
    R.FINANCE: frozenset({Stage.BID, Stage.NEGOTIATE, Stage.WON}),
    R.LEGAL: frozenset({Stage.NEGOTIATE, Stage.WON}),
}
SEES_ALL = frozenset({R.ADMIN, R.SALES_OPS})
MANAGES_SUBTREE = frozenset({R.SALES_MANAGER, R.DIRECTOR})


def require(roles: frozenset[Role], use_case: UseCase) -> None:
    allowed = PERMISSIONS[use_case]
    if not roles & allowed:
        have = ", ".join(sorted(r.value for r in roles)) or "no role"
        raise PermissionDenied(
            f"{use_case.value} needs one of the roles {', '.join(sorted(r.value for r in allowed))}; "
            f"you have {have}",
            allowed=sorted(r.value for r in allowed),
            details=keyed("rbac.needs_role", use_case=use_case.value,
                          roles=", ".join(sorted(r.value for r in allowed)), have_roles=have),
        )


@dataclass(frozen=True)
class Scope:
    """What one user can see. `subtree` includes the user; `stages` is what finance/legal see."""

    user_id: int
    roles: frozenset[Role]
    subtree: frozenset[int]
    sees_all: bool
    stages: frozenset[Stage]

    @property
    def is_manager(self) -> bool:
        return bool(self.roles & MANAGES_SUBTREE)

    def sees_people(self, *user_ids: int | None) -> bool:
        """True when any of the people is the user or (for managers) in their subtree."""
        pool = self.subtree if self.is_manager else frozenset({self.user_id})
        return any(uid in pool for uid in user_ids if uid is not None)

    def sees_opportunity(self, owner_id: int, member_ids: set[int], stage: str) -> bool:
        if self.sees_all:
            return True
        if self.sees_people(owner_id, *member_ids):
            return True
        return Stage(stage) in self.stages

    def sees_lead(self, owner_id: int | None) -> bool:
        return self.sees_all or self.sees_people(owner_id)

    def sees_account(self, owner_id: int, deal_team_ids: set[int]) -> bool:
        if self.sees_all or self.stages:
            return True  # finance and legal need customer master data
        return self.sees_people(owner_id, *deal_team_ids)


def build_scope(user_id: int, roles: frozenset[Role], managers: dict[int, int | None]) -> Scope:
    """`managers` maps every user id to their manager id; the subtree is computed from it."""
    children: dict[int, list[int]] = {}
    for uid, mid in managers.items():
        if mid is not None:
            children.setdefault(mid, []).append(uid)
    subtree, stack = {user_id}, [user_id]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in subtree:
                subtree.add(child)
                stack.append(child)
    stages: frozenset[Stage] = frozenset().union(*(FUNCTION_STAGES.get(r, frozenset()) for r in roles))
    return Scope(
        user_id=user_id,
        roles=roles,
        subtree=frozenset(subtree),
        sees_all=bool(roles & SEES_ALL),
        stages=stages,
    )


def management_chain(user_id: int, managers: dict[int, int | None]) -> list[int]:
    """The user's managers, nearest first."""
    chain, seen, current = [], {user_id}, managers.get(user_id)
    while current is not None and current not in seen:
        chain.append(current)
        seen.add(current)
        current = managers.get(current)
    return chain
