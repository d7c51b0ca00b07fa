"""A deterministic LangChain chat model that turns commands (English / 中文) into tool calls.

It is the embedded default: no network, no weights. On a user's message it parses the command
language (`grammar.parse`) into exactly the tool call an LLM would make; after the tools ran it
answers with their ready-to-post texts. What it cannot parse gets help with examples, in the
language the user wrote in. It reports estimated token counts so turns are measured like an LLM's.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from bot.agent.offline import grammar
from bot.agent.tokens import estimate_tokens
from prompts.messages import render


class OfflineCommandModel(BaseChatModel):
    today: date
    locale: str = "en"
    tool_names: tuple[str, ...] = ()
    tool_schemas: tuple[dict, ...] = ()  # what an LLM would be sent; counted, not read

    @property
    def _llm_type(self) -> str:
        return "ltc-offline-commands"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any):
        schemas = tuple(_schema(t) for t in tools)
        return self.model_copy(update={"tool_names": tuple(s["function"]["name"] for s in schemas),
                                       "tool_schemas": schemas})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager=None,
                  **kwargs: Any) -> ChatResult:
        message = self._answer(messages)
        prompt = sum(estimate_tokens(_text(m)) for m in messages) + estimate_tokens(json.dumps(self.tool_schemas))
        completion = estimate_tokens(_text(message) + json.dumps([c["args"] for c in message.tool_calls]))
        message.usage_metadata = {"input_tokens": prompt, "output_tokens": completion,
                                  "total_tokens": prompt + completion}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _answer(self, messages: list[BaseMessage]) -> AIMessage:
        results = _trailing_tool_results(messages)
        human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = _text(human) if human is not None else ""
        locale = grammar.detect_locale(text, self.locale)
        if results:
            return AIMessage(content="\n\n".join(_result_text(r, locale) for r in results))
        command = grammar.parse(text, today=self.today)
        if command is None:
            return AIMessage(content=grammar.help_text(locale, text))
        if command.tool not in self.tool_names:
            return AIMessage(content=render("offline.not_for_you", locale, tool=command.tool))
        return AIMessage(content="", tool_calls=[{"name": command.tool, "args": command.args,
                                                  "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}])


_SCHEMAS: dict[str, dict] = {}


def _schema(tool: Any) -> dict:
    """A tool's OpenAI schema (only counted here); the same for every user, so built once per name."""
    name = getattr(tool, "name", None)
    if name is None:
        return convert_to_openai_tool(tool)
    if name not in _SCHEMAS:
        _SCHEMAS[name] = convert_to_openai_tool(tool)
    return _SCHEMAS[name]


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _trailing_tool_results(messages: list[BaseMessage]) -> list[ToolMessage]:
    out: list[ToolMessage] = []
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            out.append(m)
        else:
            break
    return list(reversed(out))


def _result_text(message: ToolMessage, locale: str) -> str:
    try:
        data = json.loads(_text(message))
    except (TypeError, ValueError):
        return _text(message)
    if not isinstance(data, dict):
        return _text(message)
    status = data.get("status")
    if status == "awaiting_user_confirmation":
        return render("confirm.ask", locale, summary=data.get("summary", ""), minutes=data.get("minutes", 10))
    if status == "error":
        message = data.get("message", "")
        if locale == "zh" and not grammar.has_chinese(message):
            # Domain messages are English for now; say plainly in Chinese that nothing was done.
            message = render("offline.not_done", locale, message=message)
        lines = [message]
        if data.get("did_you_mean"):
            lines.append(render("offline.did_you_mean", locale) + "\n" +
                         "\n".join(f"  • {c}" for c in data["did_you_mean"]))
        elif data.get("allowed"):
            lines.append(render("offline.allowed", locale, values=", ".join(map(str, data["allowed"][:15]))))
        return "\n".join(x for x in lines if x)
    return str(data.get("text") or data.get("message") or "")
