"""A mock Slack Web API on a free port, recording every call (method + arguments).

    with SlackMock(users={"U1": "rep@example.com"}) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        ...
        slack.wait_for("chat.postMessage")[0].args["thread_ts"]

It answers `ok: true` with plausible fields for the methods the app uses; `slack.rate_limit_once(m)`
makes the next call of `m` answer 429 with Retry-After, as Slack does; `slack.fail_next(m, error)`
makes the next call of `m` answer `ok: false` with that error (e.g. "missing_scope"). Channel names
in `slack.taken_names` make conversations.create answer `name_taken`, as for an existing channel.

File uploads go the way `files_upload_v2` sends them: files.getUploadURLExternal hands out an
upload_url on this mock and a file id, the bytes are POSTed there, files.completeUploadExternal
shares them (files=[{id, title}], channel_id, thread_ts). `slack.shared_files()` lists what was
shared, bytes included; `slack.fail_uploads(n)` makes the next n byte uploads answer HTTP 500.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from tests.loopback import LoopbackPeer

TEAM, BOT_USER = "T0LTC", "U0BOT"


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]


class SlackMock(LoopbackPeer):
    NAME = "slack-mock"

    def __init__(self, users: dict[str, str | None] | None = None) -> None:
        self.users = dict(users or {})  # Slack user id → profile email (None = no email)
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._limited: set[str] = set()
        self._failing: dict[str, list[str]] = {}  # method → errors for its next calls
        self.taken_names: set[str] = set()  # channel names that exist already
        self._ts = 0
        self._uploads: dict[str, dict[str, Any]] = {}  # file id → filename, length, alt_txt, data (once POSTed)
        self._upload_failures = 0
        self._shared: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.add_api_route("/api/{method}", self._handle, methods=["GET", "POST"])
        self.app.add_api_route("/upload/v1/{file_id}", self._upload, methods=["POST"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def rate_limit_once(self, method: str) -> None:
        self._limited.add(method)

    def fail_next(self, method: str, error: str) -> None:
        with self._lock:
            self._failing.setdefault(method, []).append(error)

    def fail_uploads(self, n: int = 1) -> None:
        with self._lock:
            self._upload_failures += n

    def shared_files(self) -> list[dict[str, Any]]:
        """Files shared by files.completeUploadExternal: id, title, filename, alt_txt, channel, thread_ts, data."""
        with self._lock:
            return [dict(f) for f in self._shared]

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, n: int = 1, timeout: float = 20.0) -> list[Call]:
        """The calls of `method` once there are at least `n` (lazy listeners run in threads)."""
        deadline = time.monotonic() + timeout
        while len(self.of(method)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} called {len(self.of(method))} times, wanted {n}: "
                                     f"{[c.method for c in self.calls]}")
            time.sleep(0.02)
        return self.of(method)

    async def _handle(self, method: str, request: Request) -> JSONResponse:
        raw = await request.body()
        args: dict[str, Any] = dict(request.query_params)
        if raw:
            if request.headers.get("content-type", "").startswith("application/json"):
                args.update(json.loads(raw))
            else:
                args.update(parse_qsl(raw.decode()))
        with self._lock:
            self.calls.append(Call(method, args))
            if method in self._limited:
                self._limited.discard(method)
                return JSONResponse({"ok": False, "error": "ratelimited"}, status_code=429,
                                    headers={"Retry-After": "1"})
            if self._failing.get(method):
                return JSONResponse({"ok": False, "error": self._failing[method].pop(0)})
            self._ts += 1
            ts = f"1700000000.{self._ts:06d}"
            if method == "conversations.create":  # under the lock: two creates of one name, one wins
                name = args.get("name", "")
                if name in self.taken_names:
                    return JSONResponse({"ok": False, "error": "name_taken"})
                self.taken_names.add(name)
        return JSONResponse(self._answer(method, args, ts))

    def _answer(self, method: str, args: dict[str, Any], ts: str) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://ltc.slack.com/", "team": "LTC", "user": "ltc", "team_id": TEAM,
                    "user_id": BOT_USER, "bot_id": "B0BOT"}
        if method in ("chat.postMessage", "chat.update"):
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts") or ts,
                    "message": {"text": args.get("text"), "ts": args.get("ts") or ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "users.info":
            uid = args.get("user")
            if uid not in self.users:
                return {"ok": False, "error": "user_not_found"}
            email = self.users[uid]
            return {"ok": True, "user": {"id": uid, "team_id": TEAM, "name": uid.lower(), "is_bot": False,
                                         "deleted": False, "profile": {"email": email} if email else {}}}
        if method in ("views.open", "views.update", "views.push"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else dict(view or {})
            return {"ok": True, "view": {**view, "id": args.get("view_id") or f"V{ts.replace('.', '')}"}}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": f"D{args.get('users', 'X')}"}}
        if method == "views.publish":
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else (view or {})
            return {"ok": True, "view": {**view, "id": f"VHOME{ts[-6:]}", "hash": ts}}
        if method == "conversations.create":
            private = str(args.get("is_private", "")).lower() in ("true", "1")
            return {"ok": True, "channel": {"id": f"C{ts.replace('.', '')[-8:]}", "name": args.get("name"),
                                            "is_channel": not private, "is_group": private, "is_private": private,
                                            "creator": BOT_USER, "is_member": True}}
        if method in ("conversations.invite", "conversations.join", "conversations.info"):
            return {"ok": True, "channel": {"id": args.get("channel"), "is_member": True}}
        if method == "files.getUploadURLExternal":
            return self._upload_url(args, ts)
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        return {"ok": True}  # reactions.add / reactions.remove and the rest

    # -- files_upload_v2: URL, bytes, completion ---------------------------------------------------

    def _upload_url(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        filename, length = args.get("filename"), str(args.get("length", ""))
        if not filename or not length.isdigit() or int(length) <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{ts.replace('.', '')[-10:]}"
        with self._lock:
            self._uploads[file_id] = {"filename": filename, "length": int(length), "alt_txt": args.get("alt_txt"),
                                      "data": None}
        return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{file_id}", "file_id": file_id}

    async def _upload(self, file_id: str, request: Request) -> PlainTextResponse:
        data = await request.body()
        with self._lock:
            if self._upload_failures:
                self._upload_failures -= 1
                return PlainTextResponse("upload failed (injected)", status_code=500)
            if file_id not in self._uploads:
                return PlainTextResponse("unknown upload", status_code=404)
            self._uploads[file_id]["data"] = data
        return PlainTextResponse(f"OK - {len(data)}")

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(args.get("files") or "")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            if not isinstance(files, list) or not files or any(
                    not isinstance(f, dict) or f.get("id") not in self._uploads for f in files):
                return {"ok": False, "error": "invalid_arguments"}
            if any(self._uploads[f["id"]]["data"] is None for f in files):
                return {"ok": False, "error": "file_not_found"}  # never POSTed to its upload_url
            for f in files:
                up = self._uploads[f["id"]]
                if len(up["data"]) != up["length"]:
                    return {"ok": False, "error": "file_upload_size_mismatch"}
            shared = [{"id": f["id"], "title": f.get("title") or self._uploads[f["id"]]["filename"],
                       "filename": self._uploads[f["id"]]["filename"], "alt_txt": self._uploads[f["id"]]["alt_txt"],
                       "channel": args.get("channel_id"), "thread_ts": args.get("thread_ts"),
                       "data": self._uploads[f["id"]]["data"]} for f in files]
            self._shared += shared
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"], "name": f["filename"]} for f in shared]}
