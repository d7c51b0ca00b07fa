"""Owners and accounts named in a file → ids, under explicit policies.

Owners: an exact email (any case), or a display name that matches exactly one active person in
English or Chinese (spaces, dots and case ignored: "Li Wei", "li.wei", "李伟"). Unknown or
ambiguous owners follow `--unknown-owner`: `reject` (a row error naming the candidates) or
`assign:<email>` (that person owns the row).

Accounts: a ref (ACC-00012) or a name, matched as the domain de-duplicates company names
(domain.normalize.company_norm: "华东电力有限公司" = "华东电力"). A missing account follows
`--missing-account`: `reject` (a row error) or `create` (a new account owned by the row's owner,
through the accounts service: RBAC, audit, the name rules).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from domain.db import tables as t
from domain.errors import ValidationFailed
from domain.normalize import company_norm, person_norm

MISSING_ACCOUNT = ("reject", "create")
_ACC_REF = re.compile(r"^\s*ACC\s*[-_ ]?\s*0*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class OwnerPolicy:
    """`reject`, or `assign:<email>` resolved to that user's id."""

    text: str
    assign_to: int | None = None


def owner_policy(text: str | None, people: People) -> OwnerPolicy:
    raw = (text or "reject").strip()
    if raw == "reject":
        return OwnerPolicy(raw)
    if raw.startswith("assign:"):
        email = raw.split(":", 1)[1].strip()
        user = people.by_email.get(email.casefold())
        if user is None:
            raise ValidationFailed(f"--unknown-owner {raw}: no active user with email {email}", field="unknown_owner")
        return OwnerPolicy(raw, user)
    raise ValidationFailed(f"--unknown-owner '{raw}' is not reject or assign:<email>", field="unknown_owner",
                           allowed=["reject", "assign:<email>"])


def missing_account_policy(text: str | None) -> str:
    raw = (text or "reject").strip().lower()
    if raw not in MISSING_ACCOUNT:
        raise ValidationFailed(f"--missing-account '{text}' is not reject or create", field="missing_account",
                               allowed=list(MISSING_ACCOUNT))
    return raw


class People:
    """Active users by email and by display name (en and zh), read once per unit of work."""

    def __init__(self, users) -> None:
        self.by_email: dict[str, int] = {}
        self.by_name: dict[str, set[int]] = {}
        self.email_of: dict[int, str] = {}
        for u in users:
            if not u.active:
                continue
            self.by_email[u.email.casefold()] = u.id
            self.email_of[u.id] = u.email
            for name in (u.name_en, u.name_zh):
                if name and person_norm(name):
                    self.by_name.setdefault(person_norm(name), set()).add(u.id)

    def find(self, text: str) -> tuple[int | None, str | None]:
        """(user id, None) or (None, why not)."""
        raw = text.strip()
        if raw.casefold() in self.by_email:
            return self.by_email[raw.casefold()], None
        ids = self.by_name.get(person_norm(raw), set())
        if len(ids) == 1:
            return next(iter(ids)), None
        if ids:
            who = ", ".join(sorted(self.email_of[i] for i in ids))
            return None, f"owner '{raw}' matches {len(ids)} people ({who}): write the email"
        return None, f"owner '{raw}' is not an active user's email or name"

    def owner(self, text: str | None, policy: OwnerPolicy) -> tuple[int | None, str | None]:
        """The owner a row names, after the policy. A row naming nobody gets the assign:<email>
        user, else (None, None): the service's default (the acting rep; for leads, the rules)."""
        if text is None:
            return policy.assign_to, None
        uid, why = self.find(text)
        if uid is not None:
            return uid, None
        if policy.assign_to is not None:
            return policy.assign_to, None
        return None, why


class AccountBook:
    """Account names and refs → ids for one unit of work. New accounts become visible to later rows
    only once their row is written (`remember`), so a row rolled back leaves no dangling id."""

    def __init__(self, session) -> None:
        self.by_norm: dict[str, int] = {}
        self.ids: set[int] = set()
        for aid, norm in session.execute(select(t.accounts.c.id, t.accounts.c.name_norm)):
            self.by_norm.setdefault(norm, aid)
            self.ids.add(aid)

    def find(self, text: str) -> int | None:
        m = _ACC_REF.match(text)
        if m and int(m[1]) in self.ids:
            return int(m[1])
        return self.by_norm.get(company_norm(text))

    def remember(self, name: str, account_id: int) -> None:
        self.by_norm.setdefault(company_norm(name), account_id)
        self.ids.add(account_id)
