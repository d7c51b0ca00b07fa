"""What a route depends on: the authenticated caller (key → service user, scopes, rate limit),
a unit of work, and the page shape of list endpoints.

    @router.get("/leads", response_model=Page[LeadOut])
    def list_leads(who: Caller = Depends(caller("leads:read")), uow=Depends(uow_dep)): ...
        with uow:
            ... service(..., actor=who.actor, uow=uow)
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from bot.api import idempotency
from bot.api.errors import ApiError, request_id
from bot.context import AppContext
from domain.actor import Actor, Channel
from domain.errors import Unauthenticated
from domain.services import api_keys as key_svc

T = TypeVar("T")

# Parameter types every route should use: ids beyond a 32-bit INTEGER would be a driver error
# (SQLite overflows, PostgreSQL rejects the value) instead of a clean 422.
MAX_ID = 2_147_483_647
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")]

# auto_error=False: a missing key is answered in the API's own error schema, not FastAPI's.
_bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                     description="An API key from `ltc apikey create`: Authorization: Bearer ltc_…")


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str
    actor: Actor
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def app_context(request: Request) -> AppContext:
    return request.app.state.ctx


def uow_dep(request: Request) -> Iterator:
    """A fresh unit of work; the route enters it (`with uow:`) and commits its writes."""
    yield app_context(request).uow()


def caller(scope: str | None = None):
    """A dependency: the authenticated caller holding `scope` (None = any valid key)."""

    async def dependency(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
        if credentials is None:
            raise Unauthenticated("Send an API key: Authorization: Bearer ltc_…")
        ctx = app_context(request)
        principal = await _authenticate(ctx, credentials.credentials)
        who = Caller(key_id=principal.id, name=principal.name, scopes=frozenset(principal.scopes),
                     actor=Actor(principal.user_id, Channel.API, request_id=request_id(request)))
        request.app.state.limiter.take(principal.id)  # a throttled call writes nothing, not even its audit row
        request.state.api_caller = who  # bot/api/call_log.py audits the call, refused or not
        if scope is not None and "*" not in principal.scopes and scope not in principal.scopes:
            raise ApiError(403, "scope_missing", f"This API key lacks the scope {scope}",
                           details={"scope": scope, "have": sorted(principal.scopes)})
        await idempotency.begin(request, ctx, who.key_id)
        return who

    return dependency


async def _authenticate(ctx: AppContext, token: str) -> key_svc.Principal:
    def check() -> key_svc.Principal:  # database work off the event loop
        with ctx.uow() as uow:
            principal = key_svc.authenticate(token, uow=uow)
            if key_svc.touch(principal, uow=uow):
                uow.commit()
            return principal

    return await run_in_threadpool(check)
