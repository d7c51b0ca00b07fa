"""The oracle model: for each utterance it makes exactly the task's intended call (a step's `call`).

Run with `--model oracle` to check the tasks themselves: that each is solvable through the tools
and that its judgement (state and reply checks) accepts the right call. A failing oracle task is a
wrong task or a product bug, never the parser's fault. Steps without a `call` fall back to the
offline command grammar.
"""
from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import Field

from bot.agent.offline.model import OfflineCommandModel, _text, _trailing_tool_results
from prompts.messages import render


class OracleModel(OfflineCommandModel):
    calls: dict[str, dict[str, Any]] = Field(default_factory=dict)  # utterance → {tool, args}

    def _answer(self, messages: list[BaseMessage]) -> AIMessage:
        human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        call = self.calls.get(_text(human)) if human is not None else None
        if call is None or _trailing_tool_results(messages):
            return super()._answer(messages)
        if call["tool"] not in self.tool_names:  # as the offline model: not bound for this role
            return AIMessage(content=render("offline.not_for_you", self.locale, tool=call["tool"]))
        return AIMessage(content="", tool_calls=[{"name": call["tool"], "args": call.get("args") or {},
                                                  "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}])
