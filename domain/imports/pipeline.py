"""How an imported opportunity gets its stage and its history — and why it is written in batches.

Decision. A deal from another CRM arrives in the stage it has there (e.g. negotiate, won). We do
NOT replay it through `advance_stage`: the gates (ATI, ATB, ATC…) are approvals that were decided,
or skipped, in the other system; re-asking them for 10,000 historic deals would block the import
(ApprovalRequired) and invent decisions nobody took. Nor do we call `create_opportunity` per row:
it answers a full view (gates, pending approvals: several queries) and flushes three times a deal,
~3× too slow for 10,000 rows. Instead each deal is built from the domain model under the rules of
`opportunities.new_opportunity` (the AR holds a sales role, region from the account or the AR,
the stage's policy probability, history from creation), after the same checks as the service
(RBAC CREATE_OPPORTUNITY once per unit of work, the account's visibility, OpportunityCreate's
field rules), and moved to its stage by `Opportunity.move_to` (the model's transition table: no
skipping) along the one path our stage machine allows. Deals are then inserted a batch at a time
(domain.imports.writers.OpportunityBatch), each with one audit row `import` (channel and request
id of the caller; after = the deal as imported) and the event OpportunityCreated.

Its history is written so the analytics stay consistent (migrations 0009, 0011, 0015):

* One stage_history row per stage on the path: qualify → … → the stage (won passes every open
  stage; lost/abandoned leave from qualify, since the file does not say where the deal was lost).
  The triggers of 0015 then set `reached_stages` from those rows, so the funnel stays monotonic
  (a won deal has reached negotiate) and equals what the history says.
* Times come from the file: the deal opened at its Created Date (`created_on`), else — for a
  closed deal — on its close date, else now; a won/lost/abandoned deal closed on its Close Date
  (required for closed deals, not in the future, not before it opened). The open stages on the
  path are entered when the deal opened. So win rate, won amount and the pipeline rollup (0009:
  a closed deal's month is `stage_changed_at`) put last year's wins in last year, not in the
  quarter of the import.
* `spell_us` is NULL on the imported rows after the first: how long the deal sat in each stage
  in the other system is unknown, and zero-length spells would drag the cycle-time medians to 0.
  Cycle time per stage therefore counts only spells LTC saw; `history_started_at` is the opening
  time, so "days to win" is exact when the file carries Created Date (and 0 when it does not).
* No OpportunityStageChanged events: historic moves are not news (they would page deal channels,
  send stage checklists and tell ERP webhooks about wins of years ago).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from domain.errors import ValidationFailed
from domain.model.accounts import Account
from domain.model.events import OpportunityCreated
from domain.model.opportunities import CLOSED_STAGES, NEEDS_REASON, OPEN_STAGES, Opportunity, StageChange
from domain.model.records import AuditEntry
from domain.model.users import User
from domain.model.vocab import Role, Stage
from domain.services.base import Ctx, emit, snapshot
from domain.services.opportunities import OPP_FIELDS

IMPORTED_REASON = "imported"


def path_to(stage: Stage) -> list[Stage]:
    """The moves after qualify that reach `stage` without skipping (move_to enforces it)."""
    if stage in (Stage.LOST, Stage.ABANDONED):
        return [stage]
    order = [*OPEN_STAGES, Stage.WON]
    return order[1: order.index(stage) + 1]


def check_owner(owner: User | None, owner_id: int) -> User:
    """new_opportunity's rule: a deal's AR holds a sales role (and is active)."""
    if owner is None or not owner.active or not owner.has_role(Role.SALES_REP, Role.SALES_MANAGER, Role.DIRECTOR):
        who = owner.display_name() if owner is not None else f"User {owner_id}"
        raise ValidationFailed(f"{who} cannot be a deal's AR (needs a sales role)", field="owner_id")
    return owner


def build(ctx: Ctx, probabilities: dict[str, int], *, name: str, account: Account, owner: User, amount: Decimal,
          currency: str, expected_close_date: date | None, competitors: list[str], next_step: str | None,
          customer_need: str | None, budget: Decimal | None, stage: Stage, opened: datetime,
          closed_at: datetime | None, reason: str | None, now: datetime) -> Opportunity:
    """The deal as new_opportunity makes it, opened at `opened`, then moved to `stage`. No database."""
    first = Stage.QUALIFY.value
    opp = Opportunity(name=name, account_id=account.id, owner_id=owner.id, amount=amount, currency=currency,
                      region=account.region or owner.region, expected_close_date=expected_close_date,
                      competitors=list(competitors), next_step=next_step, customer_need=customer_need,
                      budget=budget, stage=first, probability=probabilities[first], created_at=opened,
                      updated_at=now, stage_changed_at=opened)
    opp.history.append(StageChange(from_stage=None, to_stage=first, changed_at=opened, changed_by=ctx.user.id,
                                   probability=opp.probability))
    for step in path_to(stage):
        at = closed_at if step in CLOSED_STAGES and closed_at is not None else opened
        change = opp.move_to(step, probability=probabilities[step.value], at=at, by=ctx.user.id,
                             reason=(reason or IMPORTED_REASON) if step in NEEDS_REASON else None)
        change.spell_us = None  # unknown: the time in the stage was spent in the other system
    return opp


def record(uow, ctx: Ctx, opp: Opportunity) -> None:
    """After the deal's INSERT: its audit row and its creation event. The audit row is built as
    domain.services.base.audit builds it, but added without a flush of its own, so a batch of
    deals costs two flushes, not one per deal."""
    after = {**snapshot(opp, OPP_FIELDS), "created_at": opp.created_at.isoformat()}
    uow.session.add(AuditEntry(at=uow.now(), actor_id=ctx.user.id, channel=ctx.actor.channel.value,
                               via_agent=ctx.actor.via_agent, request_id=ctx.actor.request_id,
                               entity="opportunity", entity_id=opp.id, action="import", before=None, after=after))
    emit(uow, OpportunityCreated(opportunity_id=opp.id, owner_id=opp.owner_id, amount=str(opp.amount),
                                 currency=opp.currency))
