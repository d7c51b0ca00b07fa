"""Every authenticated API call leaves an audit row (reads too), after its answer is known.

Writes audit their records through the domain as usual; this row says who called what and how it
ended, so a key's use can be traced even when it only read. Unauthenticated calls have no user to
record and are only logged.
"""
from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool

from domain.services import api_keys

log = logging.getLogger("ltc.api")


class CallLog:
    """Pure ASGI middleware: sees the status as it is sent, records once the answer is complete."""

    def __init__(self, app, *, uow_of) -> None:
        self.app = app
        self.uow_of = uow_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = {"code": 500}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            who = scope.get("state", {}).get("api_caller")
            if who is not None:
                route = scope.get("route")
                path = getattr(route, "path", None) or scope.get("path", "")
                await run_in_threadpool(self._record, who, scope["method"], path, status["code"])

    def _record(self, who, method: str, path: str, code: int) -> None:
        try:
            with self.uow_of() as uow:
                api_keys.record_call(who.key_id, method, path, code, actor=who.actor, uow=uow)
                uow.commit()
        except Exception:  # the answer is already sent: never turn a served call into a failure
            log.exception("could not audit API call %s %s (request %s)", method, path, who.actor.request_id)
