"""Iron-triangle incentive split per contract: by role weight and recorded contribution, on collected cash only."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from domain.actor import Actor
from domain.errors import NotFound, ValidationFailed
from domain.model import contracts as c
from domain.model.incentives import ROLES, Contribution, split
from domain.model.quotes import HUNDRED
from domain.model.vocab import MemberRole
from domain.rbac import UseCase
from domain.services import opportunities as opp_svc
from domain.services.base import audit, begin, parse
from domain.services.contract_access import visible_contract
from domain.services.schemas import Input, View


class ShareIn(Input):
    user_id: int = Field(gt=0)
    share_pct: Decimal = Field(gt=0, le=100, max_digits=5, decimal_places=2)


class ContributionCreate(Input):
    role: Literal["AR", "SR", "FR"]
    shares: list[ShareIn] = Field(min_length=1, max_length=10, description="who earned the role's share; Σ = 100")
    note: str | None = Field(None, max_length=2000)


class SplitLine(View):
    role: str
    user_id: int
    name: str
    share_pct: Decimal
    amount: Decimal


class IncentiveSplitView(View):
    contract_number: str
    currency: str
    contract_value: Decimal
    collected: Decimal
    pool_pct: Decimal
    pool: Decimal
    final: bool  # the whole contract is collected: nothing more will come
    lines: list[SplitLine]
    message: str = ""


def _seat_holders(opp) -> dict[str, list[tuple[int, Decimal]]]:
    seats = {"AR": [(opp.owner_id, HUNDRED)]}
    for role in (MemberRole.SR, MemberRole.FR):
        holders = sorted(opp.member_ids(role))
        if holders:
            seats[role.value] = [(holders[0], HUNDRED)]
    return seats


def record_contribution(contract_id: int | str, data: ContributionCreate | dict, *, actor: Actor,
                        uow) -> IncentiveSplitView:
    """A manager records who contributed to one iron-triangle role on a contract (replaces that role's shares)."""
    ctx = begin(uow, actor, UseCase.RECORD_CONTRIBUTION)
    cmd = parse(ContributionCreate, data)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "record contributions")
    total = sum((s.share_pct for s in cmd.shares), Decimal("0"))
    if total != HUNDRED:
        raise ValidationFailed(f"The {cmd.role} shares add up to {total}%; they must be 100%", field="shares")
    if len({s.user_id for s in cmd.shares}) != len(cmd.shares):
        raise ValidationFailed("A person is listed twice", field="shares")
    for n, share in enumerate(cmd.shares):
        user = uow.users.get(share.user_id)
        if user is None or not user.active:
            raise NotFound(f"User {share.user_id} does not exist or is inactive", field=f"shares.{n}.user_id")
    old = [x for x in uow.finance.contributions_for(contract.id) if x.role == cmd.role]
    before = {s.user_id: str(s.share_pct) for s in old}
    for x in old:
        uow.finance.delete(x)
    for share in cmd.shares:
        uow.finance.add(Contribution(contract_id=contract.id, user_id=share.user_id, role=cmd.role,
                                     share_pct=share.share_pct, recorded_by=ctx.user.id, recorded_at=uow.now(),
                                     note=cmd.note))
    audit(uow, ctx, "contract", contract.id, f"contribution:{cmd.role}", {"shares": before or None},
          {"shares": {s.user_id: str(s.share_pct) for s in cmd.shares}})
    return _split_view(uow, contract, opp, message=f"{cmd.role} contributions on {contract.ref} recorded")


def incentive_split(contract_id: int | str, *, actor: Actor, uow) -> IncentiveSplitView:
    """The incentive each iron-triangle member earned on a contract from the cash collected so far."""
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    contract, opp = visible_contract(uow, ctx, contract_id)
    return _split_view(uow, contract, opp)


def _split_view(uow, contract, opp, message: str = "") -> IncentiveSplitView:
    plan = uow.finance.incentive_plan()
    if plan is None:
        raise NotFound("No active incentive plan: an admin seeds one with `ltc init`", field="plan")
    shares = _seat_holders(opp)
    recorded: dict[str, list[tuple[int, Decimal]]] = {}
    for x in uow.finance.contributions_for(contract.id):
        recorded.setdefault(x.role, []).append((x.user_id, x.share_pct))
    shares.update(recorded)
    signed = contract.status in (*c.IN_FORCE, c.CLOSED)
    collected = contract.paid_total if signed else Decimal("0")
    names = {u.id: u.display_name() for u in uow.users.all()}
    share_of = {(role, uid): pct for role in ROLES for uid, pct in shares.get(role, [])}
    lines = [SplitLine(role=role, user_id=uid, name=names.get(uid, "?"), share_pct=share_of[(role, uid)],
                       amount=amount) for role, uid, amount in split(collected, plan, shares)]
    pool = sum((x.amount for x in lines), Decimal("0"))
    final = collected == contract.value
    if not message:
        message = (f"{contract.ref}: {pool} to share from {collected} collected" if collected
                   else f"{contract.ref}: nothing collected yet, so nothing to share (no win, no collection, no share)")
        if collected and not final:
            message += f"; the other {contract.value - collected} earns shares only when collected"
    return IncentiveSplitView(contract_number=contract.number, currency=contract.currency,
                              contract_value=contract.value, collected=collected, pool_pct=plan.pool_pct, pool=pool,
                              final=final, lines=lines, message=message)
