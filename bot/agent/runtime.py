"""One conversational turn: user text in, reply (and proposals) out, memory per chat thread.

LangChain's `create_agent` (a LangGraph graph) runs the loop model → tools → model with the
tools selected for this user and message, the checkpointer on the app database and a step limit.
Failures of the model endpoint become a friendly sentence; nothing below reaches the user as a
stack trace. Each turn logs its token counts.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from bot.agent import prompting, selection
from bot.agent.checkpointer import SqlCheckpointSaver
from bot.agent.llm import chat_model, model_label
from bot.agent.offline.grammar import detect_locale
from bot.agent.offline.model import OfflineCommandModel
from bot.agent.toolkit import toolkit
from domain.actor import Actor
from domain.errors import PermissionDenied
from prompts.messages import render
from tools import resolve, runner
from tools.charts import Chart
from tools.context import ToolContext
from tools.errors import HINTS, Problem, ToolError
from tools.registry import ToolSpec, all_tools, audiences_for

log = logging.getLogger("ltc.agent")
MALFORMED_RETRIES = 2  # answers to tool calls whose arguments were not JSON, per turn


@dataclass
class TurnResult:
    text: str
    outcomes: list[runner.ToolOutcome] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    bound_tools: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    latency_ms: float = 0.0
    error: str | None = None
    locale: str = "en"  # the language this turn answered in

    @property
    def proposals(self) -> list[runner.Proposal]:
        return [o.proposal for o in self.outcomes if o.status == "needs_confirmation" and o.proposal]

    @property
    def charts(self) -> list[Chart]:
        """The charts this turn's tools drew data for (a result's "chart"), to be sent after the text."""
        charts, seen = [], set()
        for o in self.outcomes:
            data = (o.result or {}).get("chart") if o.status == "ok" else None
            key = json.dumps(data, sort_keys=True, default=str) if data else None
            if key and key not in seen:  # the same report twice in a turn is one picture
                seen.add(key)
                try:
                    charts.append(Chart.model_validate(data))
                except ValueError as e:  # a malformed chart costs the picture, never the reply
                    log.warning("tool %s returned a malformed chart: %s", o.tool, e)
        return charts


@dataclass(frozen=True)
class Person:
    actor: Actor
    name: str
    locale: str
    roles: list[str]


class Agent:
    """Built once per process; `reply` is safe to call from several threads."""

    def __init__(self, app, *, model_factory=None) -> None:
        self.app = app
        self.settings = app.settings
        self.checkpointer = SqlCheckpointSaver(app.engine)
        # Tests inject a scripted model; production builds one per turn from settings.
        self.model_factory = model_factory or (lambda today, locale: chat_model(self.settings, today=today,
                                                                               locale=locale))

    def person(self, actor: Actor) -> Person:
        with self.app.uow() as uow:
            user = uow.users.get(actor.user_id)
            if user is None or not user.active:
                # Nobody knows this person's language yet: say it in both.
                raise PermissionDenied(render("agent.unknown_user", "zh") + "\n" + render("agent.unknown_user", "en")
                                       if user is None else render("agent.unknown_user", user.locale))
            return Person(actor=actor, name=user.display_name(), locale=user.locale,
                          roles=sorted(r.value for r in user.roles))

    def tool_context(self, actor: Actor, locale: str) -> ToolContext:
        return ToolContext(actor=actor, uow=self.app.uow, playbooks=self.app.playbooks(), locale=locale,
                           confirm_tools=frozenset(self.settings.confirm_tools),
                           confirm_ttl_minutes=self.settings.confirmation_ttl_minutes,
                           approval_ttl_hours=self.settings.approval_ttl_hours)

    def reply(self, *, actor: Actor, text: str, thread_id: str, locale: str | None = None) -> TurnResult:
        started = time.perf_counter()
        person = self.person(actor)
        # Answer in the language of the message (a zh user may type English), else in the user's own.
        locale = locale or detect_locale(text, person.locale)
        actor = replace(actor, via_agent=True)
        ctx = self.tool_context(actor, locale)
        config = {"configurable": {"thread_id": memory_key(thread_id, actor.user_id)},
                  "recursion_limit": self.settings.agent_max_steps}
        with self.app.uow() as uow:
            today = uow.now().date()
            items = prompting.open_items(uow, actor)
        model = self.model_factory(today, locale)
        specs = self.bind_for(person, text, model, recent=self._recent_tools(config))
        prompt = prompting.system_prompt(locale=locale, name=person.name, roles=person.roles,
                                         audiences=audiences_for(person.roles), today=today, items=items,
                                         company=self.settings.company_name)
        outcomes: list[runner.ToolOutcome] = []
        graph = create_agent(model, tools=toolkit(specs, ctx, outcomes), system_prompt=prompt,
                             checkpointer=self.checkpointer)
        turn_id = uuid.uuid4().hex
        # Argument errors raised before a tool runs speak the user's language too.
        locale_token = resolve.LOCALE.set(locale)
        result = TurnResult(text="", outcomes=outcomes, bound_tools=[s.name for s in specs], locale=locale)
        try:
            state = graph.invoke({"messages": [HumanMessage(text, id=turn_id)]}, config=config)
            for _ in range(MALFORMED_RETRIES):
                if not self._answer_malformed(graph, config, state["messages"]):
                    break
                state = graph.invoke(None, config=config)  # the model reads the error and tries again
            self._collect(result, state["messages"], turn_id)
        except GraphRecursionError:
            result.error = "step_limit"
            result.text = render("agent.step_limit", locale, steps=self.settings.agent_max_steps)
            self._close_dangling(graph, config)
        except Exception as e:  # the model endpoint or anything else: a sentence, never a trace
            result.error, result.text = self._failure(e, locale)
            self._close_dangling(graph, config)
        finally:
            resolve.LOCALE.reset(locale_token)
        if not result.text and outcomes:
            result.text = "\n\n".join(o.text for o in outcomes if o.text)
        result.latency_ms = (time.perf_counter() - started) * 1000
        log.info("turn user=%s thread=%s model=%s bound=%d calls=%s in_tokens=%d out_tokens=%d model_calls=%d "
                 "ms=%.0f error=%s", actor.user_id, thread_id, model_label(self.settings), len(specs),
                 ",".join(result.tool_calls) or "-", result.input_tokens, result.output_tokens, result.model_calls,
                 result.latency_ms, result.error or "-")
        return result

    def bind_for(self, person: Person, text: str, model, *, recent=()) -> list[ToolSpec]:
        specs = all_tools().values()
        audiences = audiences_for(person.roles)
        if isinstance(model, OfflineCommandModel):  # no prompt to keep small: the grammar picks one
            return selection.eligible(specs, audiences)
        return selection.select(specs, audiences, text, limit=self.settings.agent_max_tools, recent=recent)

    def remember(self, thread_id: str, text: str, *, user_id: int) -> None:
        """Put what happened outside the model (a confirmed proposal) into the thread's memory."""
        config = {"configurable": {"thread_id": memory_key(thread_id, user_id)}}
        if self.checkpointer.get_tuple(config) is None:
            return
        graph = create_agent(OfflineCommandModel(today=_today()), tools=[],
                             checkpointer=self.checkpointer)
        graph.update_state(config, {"messages": [AIMessage(text)]}, as_node="model")

    # -- helpers ----------------------------------------------------------------------------

    def _recent_tools(self, config) -> list[str]:
        saved = self.checkpointer.get_tuple(config)
        if saved is None:
            return []
        messages = saved.checkpoint.get("channel_values", {}).get("messages", [])[-8:]
        return [c["name"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]

    @staticmethod
    def _collect(result: TurnResult, messages, turn_id: str) -> None:
        start = next((i for i, m in enumerate(messages) if getattr(m, "id", None) == turn_id), len(messages) - 1)
        for m in messages[start + 1:]:
            if isinstance(m, AIMessage):
                result.model_calls += 1
                usage = m.usage_metadata or {}
                result.input_tokens += int(usage.get("input_tokens", 0))
                result.output_tokens += int(usage.get("output_tokens", 0))
                result.tool_calls += [c["name"] for c in m.tool_calls]
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and not last.tool_calls:
            result.text = last.content if isinstance(last.content, str) else str(last.content)

    def _failure(self, e: Exception, locale: str) -> tuple[str, str]:
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is a dependency
            openai = None
        if openai is not None and isinstance(e, openai.APITimeoutError):
            log.warning("model timed out: %s", e)
            return "timeout", render("agent.timeout", locale)
        if openai is not None and isinstance(e, openai.APIError):
            log.warning("model endpoint failed: %r", e)
            return "llm_unavailable", render("agent.llm_unavailable", locale,
                                             attempts=self.settings.llm_max_retries + 1)
        log.exception("agent turn failed")
        return "internal", render("agent.internal_error", locale)

    @staticmethod
    def _answer_malformed(graph, config, messages) -> bool:
        """create_agent ends the turn when the model's only tool calls had arguments that are not JSON
        (the user would get an empty reply): answer each with a structured error, as the tools node."""
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or last.tool_calls or not last.invalid_tool_calls:
            return False
        answers = []
        for call in last.invalid_tool_calls:
            problem = Problem(field="(arguments)", message=f"not a valid JSON object: {call.get('args')!r}")
            err = ToolError(error="bad_arguments", field=problem.field, hint=HINTS["bad_arguments"],
                            message=f"{call.get('name')}: {problem.message}", problems=[problem])
            answers.append(ToolMessage(content=json.dumps({"status": "error", **err.model_dump(exclude_none=True)},
                                                          ensure_ascii=False),
                                       tool_call_id=call.get("id") or "", name=call.get("name") or "unknown",
                                       status="error"))
        graph.update_state(config, {"messages": answers}, as_node="tools")
        return True

    @staticmethod
    def _close_dangling(graph, config) -> None:
        """A turn that died after the model asked for tools leaves calls without results; an
        OpenAI-compatible API refuses such a history, so answer them as not run."""
        try:
            snapshot = graph.get_state(config)
        except Exception:  # no state at all: nothing to repair
            return
        messages = snapshot.values.get("messages", []) if snapshot and snapshot.values else []
        if not messages or not isinstance(messages[-1], AIMessage) or not messages[-1].tool_calls:
            return
        answered = [ToolMessage(content='{"status": "error", "message": "not run: the turn failed"}',
                                tool_call_id=c["id"], name=c["name"]) for c in messages[-1].tool_calls]
        graph.update_state(config, {"messages": answered}, as_node="tools")


def memory_key(thread_id: str, user_id: int) -> str:
    """Memory is per chat thread *and* person: in a shared Slack thread, B's turns must not read the
    tool results A's turns fetched (they may be out of B's sight)."""
    return f"{thread_id}#u{user_id}"


def _today():
    from datetime import date

    return date.today()
