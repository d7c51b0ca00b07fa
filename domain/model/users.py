"""Users, teams and roles."""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.model.vocab import Role


@dataclass(eq=False)
class Team:
    name: str
    region: str
    manager_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class UserRole:
    role: str
    user_id: int | None = None


@dataclass(eq=False)
class User:
    email: str
    name_en: str
    name_zh: str | None = None
    locale: str = "zh"
    region: str = ""
    team_id: int | None = None
    manager_id: int | None = None
    slack_user_id: str | None = None
    wecom_userid: str | None = None
    active: bool = True
    role_links: list[UserRole] = field(default_factory=list)
    id: int | None = None

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(link.role) for link in self.role_links)

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def display_name(self, locale: str | None = None) -> str:
        if (locale or self.locale) == "zh" and self.name_zh:
            return self.name_zh
        return self.name_en or self.name_zh or self.email
