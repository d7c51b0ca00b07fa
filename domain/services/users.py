"""People and teams: users with roles and chat identities, teams, lead assignment rules."""
from __future__ import annotations

from pydantic import Field

from domain.actor import Actor
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.model.records import AssignmentRule
from domain.model.users import Team, User, UserRole
from domain.model.vocab import Locale, Role
from domain.rbac import UseCase
from domain.services.base import audit, begin, parse, snapshot
from domain.services.schemas import Email, Input, View

USER_FIELDS = ("email", "name_en", "name_zh", "locale", "region", "team_id", "manager_id",
               "slack_user_id", "wecom_userid", "active")


class UserCreate(Input):
    email: Email
    name_en: str = Field(min_length=1, max_length=100)
    name_zh: str | None = Field(None, max_length=100)
    locale: Locale = Locale.ZH
    region: str = Field("", max_length=50)
    team_id: int | None = None
    manager_id: int | None = None
    roles: list[Role] = Field(min_length=1)
    slack_user_id: str | None = Field(None, max_length=50)
    wecom_userid: str | None = Field(None, max_length=64)


class TeamCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    region: str = Field(min_length=1, max_length=50)
    manager_id: int | None = None


class AssignmentRuleCreate(Input):
    priority: int = Field(ge=0)
    team_id: int
    region: str = Field("*", max_length=50)
    max_open_leads: int = Field(50, gt=0, le=10_000)


class UserView(View):
    id: int
    email: str
    name_en: str
    name_zh: str | None
    locale: str
    region: str
    team_id: int | None
    manager_id: int | None
    roles: list[str]
    slack_user_id: str | None
    wecom_userid: str | None
    active: bool


def user_view(u: User) -> UserView:
    return UserView(id=u.id, email=u.email, name_en=u.name_en, name_zh=u.name_zh, locale=u.locale, region=u.region,
                    team_id=u.team_id, manager_id=u.manager_id, roles=sorted(r.value for r in u.roles),
                    slack_user_id=u.slack_user_id, wecom_userid=u.wecom_userid, active=u.active)


def create_team(data: TeamCreate | dict, *, actor: Actor, uow) -> int:
    ctx = begin(uow, actor, UseCase.MANAGE_USERS)
    cmd = parse(TeamCreate, data)
    if any(t.name == cmd.name for t in uow.teams.all()):
        raise Conflict(f"Team '{cmd.name}' already exists", field="name")
    if cmd.manager_id is not None and uow.users.get(cmd.manager_id) is None:
        raise NotFound(f"User {cmd.manager_id} does not exist", field="manager_id")
    team = uow.teams.add(Team(name=cmd.name, region=cmd.region, manager_id=cmd.manager_id))
    audit(uow, ctx, "team", team.id, "create", None, snapshot(team, ("name", "region", "manager_id")))
    return team.id


def create_user(data: UserCreate | dict, *, actor: Actor, uow) -> UserView:
    ctx = begin(uow, actor, UseCase.MANAGE_USERS)
    cmd = parse(UserCreate, data)
    if cmd.email is None:
        raise ValidationFailed("email is required", field="email")
    if uow.users.by_email(cmd.email) is not None:
        raise Conflict(f"A user with email {cmd.email} already exists", field="email")
    for field, ref in (("team_id", cmd.team_id), ("manager_id", cmd.manager_id)):
        repo = uow.teams if field == "team_id" else uow.users
        if ref is not None and repo.get(ref) is None:
            raise NotFound(f"{field} {ref} does not exist", field=field)
    user = User(**cmd.model_dump(exclude={"roles", "locale"}), locale=cmd.locale.value,
                role_links=[UserRole(role=r.value) for r in dict.fromkeys(cmd.roles)])
    uow.users.add(user)
    uow.flush()
    audit(uow, ctx, "user", user.id, "create", None,
          {**snapshot(user, USER_FIELDS), "roles": sorted(r.value for r in user.roles)})
    return user_view(user)


def set_team_manager(team_id: int, manager_id: int, *, actor: Actor, uow) -> None:
    ctx = begin(uow, actor, UseCase.MANAGE_USERS)
    team = uow.teams.get(team_id)
    if team is None:
        raise NotFound(f"Team {team_id} does not exist", field="team_id")
    if uow.users.get(manager_id) is None:
        raise NotFound(f"User {manager_id} does not exist", field="manager_id")
    before = snapshot(team, ("manager_id",))
    team.manager_id = manager_id
    audit(uow, ctx, "team", team.id, "set_manager", before, snapshot(team, ("manager_id",)))


def link_slack_user(user_id: int, slack_user_id: str, *, actor: Actor, uow) -> UserView:
    """Remember a person's Slack id (found by their email), so later messages map without a lookup."""
    return _link_chat_id(uow, actor, user_id, "slack_user_id", slack_user_id, uow.users.by_slack_id, "Slack user")


def link_wecom_user(user_id: int, wecom_userid: str, *, actor: Actor, uow) -> UserView:
    """Set a person's WeCom userid (企业微信账号): their WeCom messages then act as them."""
    return _link_chat_id(uow, actor, user_id, "wecom_userid", wecom_userid.strip(), uow.users.by_wecom_id,
                         "WeCom userid")


def _link_chat_id(uow, actor: Actor, user_id: int, column: str, value: str, owner_of, label: str) -> UserView:
    ctx = begin(uow, actor, UseCase.MANAGE_USERS)
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist", field="user_id")
    if not value or len(value) > 64:
        raise ValidationFailed(f"{label} must be 1 to 64 characters", field=column)
    if getattr(user, column) == value:
        return user_view(user)
    if (other := owner_of(value)) is not None and other.id != user.id:
        raise Conflict(f"{label} {value} already belongs to {other.email}", field=column)
    before = snapshot(user, (column,))
    setattr(user, column, value)
    audit(uow, ctx, "user", user.id, f"link_{column.split('_')[0]}", before, snapshot(user, (column,)))
    return user_view(user)


def add_assignment_rule(data: AssignmentRuleCreate | dict, *, actor: Actor, uow) -> int:
    ctx = begin(uow, actor, UseCase.MANAGE_USERS)
    cmd = parse(AssignmentRuleCreate, data)
    if uow.teams.get(cmd.team_id) is None:
        raise NotFound(f"Team {cmd.team_id} does not exist", field="team_id")
    rule = uow.policies.add(AssignmentRule(**cmd.model_dump()))
    audit(uow, ctx, "assignment_rule", rule.id, "create", None, cmd.model_dump())
    return rule.id


def list_users(*, actor: Actor, uow) -> list[UserView]:
    begin(uow, actor, UseCase.VIEW_ACCOUNT)
    return [user_view(u) for u in sorted(uow.users.all(), key=lambda u: u.id)]
