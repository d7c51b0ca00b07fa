"""Whose numbers an asker may read: everyone's, their reporting subtree's, or their own."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import exists, or_, select, text

from domain.actor import Actor
from domain.db import tables as t
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.model.message_keys import keyed
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services.base import Ctx, begin
from domain.settings import get_settings

# Finance reads receivables and reconciliation for the whole company, like admin and sales ops.
SEES_EVERY_DEAL = frozenset({Role.ADMIN, Role.SALES_OPS, Role.FINANCE})


@dataclass(frozen=True)
class Asker:
    """One analytics question's context: who asks, which owners count, the clock and the money rules."""

    ctx: Ctx
    owner_ids: frozenset[int] | None  # None = every owner
    scope: str  # all, team, self
    currency: str
    rates: dict[str, Decimal]
    now: datetime
    names: dict[int, str]  # user id → display name in the asker's language
    locale: str  # the asker's language: names and product labels follow it
    filter_ids: frozenset[int] | None = None  # owner_ids, or None when no one else owns a deal or lead
    strict_ids: frozenset[int] | None = None  # owner_ids, or None when they are every user
    team_of: dict[int, int | None] = field(default_factory=dict)  # user id → team id
    team_names: dict[int, str] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return self.now.date()

    def owned(self, column):
        """The WHERE clause keeping rows whose deal or lead owner is in scope (None = no clause)."""
        if self.strict_ids is None:
            return None
        if self.filter_ids is None:
            return column.is_not(None)  # no one outside owns anything: only the unassigned leads stay out
        return column.in_(sorted(self.filter_ids))

    def by_person(self, column):
        """The same for any other person column (an approval's requester, a target's holder)."""
        return None if self.strict_ids is None else column.in_(sorted(self.strict_ids))

    def sees(self, owner_id: int | None) -> bool:
        return self.owner_ids is None or owner_id in self.owner_ids

    def fields(self) -> dict:
        return {"currency": self.currency, "scope": self.scope,
                "owner_ids": None if self.owner_ids is None else sorted(self.owner_ids)}


def ask(uow, actor: Actor, *, team: int | str | None = None, owner: int | None = None,
        use_case: UseCase = UseCase.VIEW_ANALYTICS) -> Asker:
    ctx = begin(uow, actor, use_case)
    settings = get_settings()
    # Plain columns, not ORM users with their roles: this runs before every question.
    rows = uow.session.execute(select(t.users.c.id, t.users.c.team_id, t.users.c.name_en, t.users.c.name_zh,
                                      t.users.c.email)).all()
    team_of = {r.id: r.team_id for r in rows}
    names = {r.id: _display(r, ctx.user.locale) for r in rows}
    allowed: frozenset[int] | None
    if ctx.user.roles & SEES_EVERY_DEAL:
        allowed = None
    elif ctx.scope.is_manager:
        allowed = ctx.scope.subtree
    else:
        allowed = frozenset({ctx.user.id})
    owners = allowed
    if team is not None:
        wanted = team_id(uow, team)
        members = frozenset(uid for uid, tid in team_of.items() if tid == wanted)
        _within(allowed, members, "team", team)
        owners = members
    if owner is not None:
        if owner not in team_of:
            raise NotFound(f"User {owner} does not exist", field="owner")
        _within(allowed, frozenset({owner}), "owner", names.get(owner, owner))
        owners = frozenset({owner}) if owners is None else owners & {owner}
    if owners is None:
        scope = "all"
    elif owners == {ctx.user.id}:
        scope = "self"
    else:
        scope = "team"
    if uow.session.get_bind().dialect.name == "postgresql":
        # Compiling these aggregates costs more than running them (measured 120-470 ms at 1M deals).
        uow.session.execute(text("SET LOCAL jit = off"))
    # Everyone's owner ids filter nothing (owner_id is a foreign key to users): skip the IN list.
    strict = None if owners is not None and owners >= frozenset(team_of) else owners
    filtered = None if strict is None or _owns_nothing(uow, frozenset(team_of) - strict) else strict
    return Asker(ctx=ctx, owner_ids=owners, scope=scope, currency=settings.reporting_currency,
                 rates=dict(settings.fx_rates), now=uow.now(), names=names,
                 locale=ctx.user.locale, filter_ids=filtered, strict_ids=strict, team_of=team_of,
                 team_names=dict(uow.session.execute(select(t.teams.c.id, t.teams.c.name)).all()))


def _owns_nothing(uow, outsiders: frozenset[int]) -> bool:
    """True when none of these few people owns a deal or a lead: then an owner filter filters nothing.

    A VP's subtree is every seller but not SR, FR, finance or admin; an IN list of 400 owners costs more
    than the question (measured). Checked per question, so a deal handed to an outsider counts at once.
    """
    if not outsiders or len(outsiders) > 64:
        return not outsiders
    ids = sorted(outsiders)
    o, ld = t.opportunities, t.leads
    owns = or_(exists().where(o.c.owner_id.in_(ids)), exists().where(ld.c.owner_id.in_(ids)))
    return not uow.session.execute(select(owns)).scalar_one()


def _display(row, locale: str) -> str:
    """As User.display_name: the Chinese name for a zh reader when there is one."""
    if locale == "zh" and row.name_zh:
        return row.name_zh
    return row.name_en or row.name_zh or row.email


def team_id(uow, team: int | str) -> int:
    """A team by id, by its full name, or by a part of its name that only one team has ("East")."""
    teams = uow.session.execute(select(t.teams.c.id, t.teams.c.name)).all()
    wanted = str(team).strip().casefold()
    for tid, name in teams:
        if (isinstance(team, int) and tid == team) or name.casefold() == wanted or wanted == str(tid):
            return tid
    partial = [(tid, name) for tid, name in teams if wanted and wanted in name.casefold()]
    if len(partial) == 1:
        return partial[0][0]
    names = sorted(n for _, n in (partial or teams))
    if partial:
        raise ValidationFailed(f"{team!r} matches several teams: {', '.join(names)}", field="team", allowed=names,
                               details=keyed("analytics.team_ambiguous", ref=team, names=", ".join(names)))
    raise NotFound(f"No team called {team!r}", field="team", allowed=names,
                   details=keyed("not_found.team", ref=team))


def _within(allowed: frozenset[int] | None, wanted: frozenset[int], what: str, label) -> None:
    # Asking about someone else's people is refused outright: a partial answer would look complete.
    if allowed is not None and not wanted <= allowed:
        raise PermissionDenied(f"You can only see the numbers of your own reporting line, not {what} {label}",
                               field=what, details=keyed("analytics.outside_scope", what=what, name=label))
