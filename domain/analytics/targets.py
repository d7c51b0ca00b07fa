"""Sales targets per person or team and period: what the forecast is measured against."""
from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator
from sqlalchemy import insert, select, update

from domain.actor import Actor
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import ask
from domain.db import tables as t
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.model.events import TargetSet as TargetSetEvent
from domain.model.message_keys import keyed
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services.base import audit, emit, parse
from domain.services.schemas import Input, View

tg = t.targets


class TargetSet(Input):
    user_id: int | None = Field(None, description="the person the target is for")
    team_id: int | None = Field(None, description="or the team")
    period: str = Field(description="this_quarter, next_quarter, 2026-Q4, 2026-11, 2026 …")
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2, description="in the reporting currency")

    @model_validator(mode="after")
    def _one_holder(self) -> "TargetSet":
        if (self.user_id is None) == (self.team_id is None):
            raise ValueError("give either user_id or team_id")
        return self


class TargetView(View):
    id: int
    user_id: int | None
    team_id: int | None
    holder: str
    period: Period
    amount: Decimal
    currency: str
    previous_amount: Decimal | None  # what it replaced, None for a new target


def set_target(data: TargetSet | dict, *, actor: Actor, uow) -> TargetView:
    """Set (or replace) a person's or a team's target for a period. Managers set them for their own people."""
    args = parse(TargetSet, data)
    a = ask(uow, actor, use_case=UseCase.SET_TARGET)
    p = q.as_period(args.period, a.today)
    holder, members = _holder(uow, args, a.locale)
    if a.owner_ids is not None and not (members <= a.owner_ids and members):
        raise PermissionDenied("You can only set targets for people in your own reporting line",
                               details=keyed("analytics.target_outside_scope"))
    if args.user_id == a.ctx.user.id and not a.ctx.user.roles & {Role.SALES_OPS, Role.ADMIN}:
        raise PermissionDenied("Your own target is set by your manager (or sales ops)",
                               details=keyed("analytics.own_target"))
    key = tg.c.user_id == args.user_id if args.user_id is not None else tg.c.team_id == args.team_id
    found = uow.session.execute(select(tg.c.id, tg.c.amount).where(
        key, tg.c.period_start == p.start, tg.c.period_end == p.end)).first()
    values = {"amount": args.amount, "set_by": a.ctx.user.id, "set_at": a.now, "label": p.label}
    if found:
        uow.session.execute(update(tg).where(tg.c.id == found.id).values(**values))
        target_id, before = found.id, q.money(found.amount)
    else:
        target_id = uow.session.execute(insert(tg).values(
            user_id=args.user_id, team_id=args.team_id, period_start=p.start, period_end=p.end, **values)
        ).inserted_primary_key[0]
        before = None
    after = {"holder": holder, "period": p.label, "amount": str(args.amount)}
    audit(uow, a.ctx, "target", target_id, "update" if found else "create",
          None if before is None else {**after, "amount": str(before)}, after)
    emit(uow, TargetSetEvent(target_id=target_id, user_id=args.user_id, team_id=args.team_id, period=p.label,
                             amount=str(args.amount), set_by=a.ctx.user.id, at=a.now.isoformat()))
    return TargetView(id=target_id, user_id=args.user_id, team_id=args.team_id, holder=holder, period=p,
                      amount=q.money(args.amount), currency=a.currency, previous_amount=before)


def _holder(uow, args: TargetSet, locale: str) -> tuple[str, frozenset[int]]:
    """The holder's name and the people whose deals the target covers."""
    if args.user_id is not None:
        user = uow.users.get(args.user_id)
        if user is None:
            raise NotFound(f"User {args.user_id} does not exist", field="user_id",
                           details=keyed("not_found.user", ref=args.user_id))
        return user.display_name(locale), frozenset({user.id})
    row = uow.session.execute(select(t.teams.c.name).where(t.teams.c.id == args.team_id)).first()
    if row is None:
        raise NotFound(f"Team {args.team_id} does not exist", field="team_id")
    members = frozenset(uow.session.execute(select(t.users.c.id).where(t.users.c.team_id == args.team_id)).scalars())
    if not members:
        raise ValidationFailed(f"Team {row.name} has nobody in it to hold a target", field="team_id",
                               details=keyed("analytics.empty_team", name=row.name))
    return row.name, members


def list_targets(period: Period | str = "this_quarter", *, actor: Actor, uow) -> list[TargetView]:
    """Targets inside the period for the people (and teams) the asker may see."""
    a = ask(uow, actor)
    p = q.as_period(period, a.today)
    teams = dict(uow.session.execute(select(t.teams.c.id, t.teams.c.name)).all())
    members: dict[int, set[int]] = {}
    for uid, tid in uow.session.execute(select(t.users.c.id, t.users.c.team_id).where(t.users.c.team_id.is_not(None))):
        members.setdefault(tid, set()).add(uid)
    out = []
    for r in uow.session.execute(select(tg).where(tg.c.period_start >= p.start, tg.c.period_end <= p.end)
                                 .order_by(tg.c.period_start, tg.c.id)):
        if r.user_id is not None and not a.sees(r.user_id):
            continue
        if r.team_id is not None and a.owner_ids is not None and not (members.get(r.team_id, set()) & a.owner_ids):
            continue  # another line's team: its target is not this asker's business
        holder = a.names.get(r.user_id, "?") if r.user_id is not None else teams.get(r.team_id, "?")
        out.append(TargetView(id=r.id, user_id=r.user_id, team_id=r.team_id, holder=holder,
                              period=q.as_period(r.label, a.today), amount=q.money(r.amount), currency=a.currency,
                              previous_amount=None))
    return out
