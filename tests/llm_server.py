"""A scripted OpenAI-compatible chat server, so tests drive the real `openai` client and langchain-openai.

The server answers `POST /v1/chat/completions` from a script: a queue of steps, one consumed per
request, in order. A step is a model answer (text and/or tool calls, OpenAI JSON with the
arguments as a JSON *string*, which may be deliberately broken), an HTTP failure (429 with
Retry-After, 500), or a delay before answering (to make the client time out). Every request body
is recorded so a test can assert on the tools offered, the history sent and the tool results fed
back. Streaming requests (`"stream": true`) get the same answer as server-sent events.

    with ScriptedLLM() as llm:
        llm.script(call("search_records", {"query": "Acme"}), say("Done."))
        settings = Settings(llm_base_url=llm.base_url, llm_model="scripted", llm_api_key="test")
        ...
        assert llm.requests[1].tool_messages()[0]["content"].startswith('{"status": "ok"')

Or as the pytest fixture `scripted_llm` (tests/integration/test_agent_llm.py imports it).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from tests.loopback import LoopbackPeer

# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # a JSON string, as the OpenAI API sends it (tests may send broken JSON)
    id: str = ""


@dataclass(frozen=True)
class Reply:
    """One assistant message: text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int = 100
    completion_tokens: int = 20


@dataclass(frozen=True)
class Fail:
    """An HTTP error answer; `retry_after` goes out as the Retry-After header (seconds)."""

    status: int
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Wait `seconds` before answering with `then` (a client with a shorter timeout gives up first)."""

    seconds: float
    then: Reply | Fail | None = None


@dataclass(frozen=True)
class Forever:
    """A step that is never used up: every further request gets it (e.g. a model stuck calling tools)."""

    step: Reply | Fail | Sleep


Step = Reply | Fail | Sleep | Forever


def call(name: str, args: dict[str, Any] | str | None = None, *, id: str | None = None, **usage: int) -> Reply:
    """An assistant message asking for one tool; `args` as a dict (encoded) or a raw (maybe broken) string."""
    arguments = args if isinstance(args, str) else json.dumps(args or {}, ensure_ascii=False)
    return Reply(tool_calls=(ToolCall(name, arguments, id or f"call_{uuid.uuid4().hex[:12]}"),), **usage)


def calls(*items: tuple[str, dict[str, Any] | str], **usage: int) -> Reply:
    """An assistant message asking for several tools at once (parallel tool calls)."""
    return Reply(tool_calls=tuple(call(n, a).tool_calls[0] for n, a in items), **usage)


def say(text: str, **usage: int) -> Reply:
    """A final assistant message (no tool calls)."""
    return Reply(content=text, **usage)


# --------------------------------------------------------------------------- recorded requests


@dataclass
class Recorded:
    """One request as the server received it, and what the script answered."""

    body: dict[str, Any]
    headers: dict[str, str]
    answered: str  # "reply", "fail 429", "sleep", "exhausted"
    at: float = 0.0  # time.monotonic() on arrival (backoff between retries shows here)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", [])]

    def tool_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("role") == "tool"]

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool messages' contents, decoded from JSON (the runner's structured outcomes)."""
        return [json.loads(m["content"]) for m in self.tool_messages()]

    def texts(self, role: str) -> list[str]:
        return [m["content"] for m in self.messages if m.get("role") == role and isinstance(m.get("content"), str)]


# --------------------------------------------------------------------------- the server


class ScriptedLLM(LoopbackPeer):
    NAME = "scripted-llm"

    def __init__(self, *, model: str = "scripted") -> None:
        self.model = model
        self.requests: list[Recorded] = []
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self._closing = False
        self.app = self._build_app()

    # -- script -------------------------------------------------------------------------------

    def script(self, *steps: Step) -> ScriptedLLM:
        """Append steps to the queue (one per request, in order)."""
        with self._lock:
            self._steps.extend(steps)
        return self

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self.requests.clear()

    @property
    def remaining(self) -> int:
        """Steps not yet used (a Forever counts as one)."""
        with self._lock:
            return len(self._steps)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _next(self) -> Step | None:
        with self._lock:
            if not self._steps:
                return None
            step = self._steps[0]
            if not isinstance(step, Forever):
                self._steps.popleft()
                return step
            return step.step

    # -- HTTP ---------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request):
            body = await request.json()
            step = self._next()
            record = Recorded(body=body, headers=dict(request.headers), answered="", at=time.monotonic())
            with self._lock:
                self.requests.append(record)
            if isinstance(step, Sleep):
                record.answered = "sleep"
                await self._sleep(step.seconds)
                step = step.then or say("(late answer)")
            if step is None:
                record.answered = "exhausted"
                return JSONResponse({"error": {"message": "the test script has no more steps", "type": "script"}},
                                    status_code=500, headers={"x-should-retry": "false"})
            if isinstance(step, Fail):
                record.answered = record.answered or f"fail {step.status}"
                headers = dict(step.headers)
                if step.retry_after is not None:
                    headers["retry-after"] = step.retry_after
                return JSONResponse({"error": {"message": f"scripted {step.status}", "type": "scripted",
                                               "code": str(step.status)}}, status_code=step.status, headers=headers)
            record.answered = record.answered or "reply"
            if body.get("stream"):
                return StreamingResponse(self._sse(step, body), media_type="text/event-stream")
            return JSONResponse(self._completion(step, body))

        @app.post("/v1/{rest:path}")
        async def other(rest: str):  # e.g. the Responses API: fail loudly, the agent must not use it
            return JSONResponse({"error": {"message": f"/v1/{rest} is not scripted"}}, status_code=404,
                                headers={"x-should-retry": "false"})

        return app

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._closing and time.monotonic() < deadline:  # short naps: shutdown never waits long
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _message(self, step: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": step.content}
        if step.tool_calls:
            message["tool_calls"] = [{"id": c.id or f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in step.tool_calls]
        return message

    @staticmethod
    def _usage(step: Reply) -> dict[str, int]:
        return {"prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens,
                "total_tokens": step.prompt_tokens + step.completion_tokens}

    def _completion(self, step: Reply, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": self._message(step),
                         "finish_reason": "tool_calls" if step.tool_calls else "stop"}],
            "usage": self._usage(step),
        }

    async def _sse(self, step: Reply, body: dict[str, Any]):
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", self.model)}

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> str:
            data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None
                    else [], **({"usage": usage} if usage else {})}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": step.content or ""})
        for i, c in enumerate(step.tool_calls):
            yield chunk({"tool_calls": [{"index": i, "id": c.id or f"call_{uuid.uuid4().hex[:12]}",
                                         "type": "function", "function": {"name": c.name, "arguments": c.arguments}}]})
        yield chunk({}, "tool_calls" if step.tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            yield chunk({}, usage=self._usage(step))
        yield "data: [DONE]\n\n"

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self) -> None:
        self._closing = True  # streams in flight end instead of holding the server open
        super().stop()


try:  # a fixture for whoever imports it; the module stays importable without pytest
    import pytest

    @pytest.fixture(scope="session")
    def _scripted_llm_server():
        with ScriptedLLM() as server:
            yield server

    @pytest.fixture
    def scripted_llm(_scripted_llm_server: ScriptedLLM) -> ScriptedLLM:
        """The session's scripted server, with an empty script and no recorded requests."""
        _scripted_llm_server.reset()
        yield _scripted_llm_server
        _scripted_llm_server.reset()
except ImportError:  # pragma: no cover
    pass
