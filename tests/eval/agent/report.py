"""What an eval run prints: pass rates and costs per category and tag, failures, prompt sizes.

The prompt-size report answers "how many tokens does one LLM turn cost?" without an LLM: it builds
the prompt the agent would send (system prompt + every bound tool's JSON schema + the user's
message) once with ALL tools the user's roles may use and once with the subset
`bot.agent.selection.select` binds, and counts both with `bot.agent.tokens.estimate_tokens`
(an estimate: ~4 characters per token for Latin text, one per CJK character; no tokenizer ships).
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass

from langchain_core.utils.function_calling import convert_to_openai_tool

from bot.agent import prompting, selection
from bot.agent.tokens import estimate_tokens
from bot.agent.toolkit import toolkit
from domain.actor import Actor, Channel
from tests.eval.agent.harness import CATEGORIES, Task, TaskResult
from tests.eval.agent.selectors import email
from tools.context import ToolContext
from tools.registry import all_tools, audiences_for

AIM = 2500  # the aim: tokens per LLM turn with the selected subset
REPORT_TAGS = ("command-language", "free-form", "en", "zh", "safety", "multi-turn")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, results: list[TaskResult]) -> str:
    turns = [t for r in results for t in r.turns]
    lat = [t.latency_ms for t in turns]
    passed = sum(r.passed for r in results)
    calls = sum(r.tool_calls for r in results)
    tin = sum(t.input_tokens for t in turns)
    tout = sum(t.output_tokens for t in turns)
    per = max(len(turns), 1)
    return (f"{name:<18} {len(results):>4} {passed:>5} {100 * passed / max(len(results), 1):>6.1f}% "
            f"{calls:>6} {tin / per:>9.0f} {tout / per:>8.0f} {_pct(lat, .5):>8.0f} {_pct(lat, .95):>8.0f}")


def summary(results: list[TaskResult], *, model: str, seconds: float) -> str:
    head = (f"{'':<18} {'tasks':>4} {'pass':>5} {'rate':>7} {'calls':>6} {'in/turn':>9} {'out/turn':>8} "
            f"{'p50 ms':>8} {'p95 ms':>8}")
    lines = [f"agent eval · model: {model} · {len(results)} tasks, "
             f"{sum(len(r.turns) for r in results)} turns · {seconds:.1f} s",
             "tokens: the model's usage summed over the model calls of a turn (a tool call makes two); the offline "
             "model estimates them with every eligible tool's schema in its prompt",
             head, "-" * len(head)]
    by_cat: dict[str, list[TaskResult]] = defaultdict(list)
    for r in results:
        by_cat[r.task.category].append(r)
    lines += [_row(c, by_cat[c]) for c in CATEGORIES if by_cat.get(c)]
    lines.append("-" * len(head))
    for tag in REPORT_TAGS:
        tagged = [r for r in results if tag in r.task.tags or (tag == "multi-turn" and r.task.multi_turn)]
        if tagged:
            lines.append(_row(f"#{tag}", tagged))
    lines.append(_row("all", results))
    turns = [t for r in results for t in r.turns if t.tools]
    covered = sum(t.subset_covers for t in turns)
    lines.append(f"tool selection: the LLM subset held every tool called in {covered}/{len(turns)} turns with calls")
    misses = [(r.task.id, t.tools, t.say) for r in results for t in r.turns if t.tools and not t.subset_covers]
    lines += [f"  subset miss: {tid}: {tools} for {say!r}" for tid, tools, say in misses[:15]]
    return "\n".join(lines)


def failures(results: list[TaskResult]) -> str:
    lines = []
    for r in results:
        if not r.passed:
            lines.append(f"FAIL {r.task.id} [{r.task.category}; {', '.join(r.task.tags)}]")
            lines += [f"     - {f}" for f in r.failures]
    return "\n".join(lines)


# --- prompt tokens -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromptSize:
    task: str
    say: str
    all_tools: int
    all_tokens: int
    subset_tools: int
    subset_tokens: int


def representative(tasks: list[Task], n: int = 20) -> list[Task]:
    """`n` tasks spread over the categories (round robin, file order), one first message each."""
    by_cat: dict[str, list[Task]] = defaultdict(list)
    for t in tasks:
        by_cat[t.category].append(t)
    picked: list[Task] = []
    while len(picked) < n and any(by_cat.values()):
        for c in CATEGORIES:
            if by_cat.get(c) and len(picked) < n:
                picked.append(by_cat[c].pop(0))
    return picked


def prompt_sizes(app, tasks: list[Task], *, limit: int) -> list[PromptSize]:
    from bot.agent.runtime import Agent

    agent = Agent(app)
    specs = list(all_tools().values())
    out = []
    for task in tasks:
        with app.uow() as uow:
            user_id = uow.users.by_email(email(task.user)).id
            today = uow.now().date()
        actor = Actor(user_id, Channel.CLI, via_agent=True)
        person = agent.person(actor)
        locale = task.locale or person.locale
        with app.uow() as uow:
            items = prompting.open_items(uow, actor)
        audiences = audiences_for(person.roles)
        system = prompting.system_prompt(locale=locale, name=person.name, roles=person.roles, audiences=audiences,
                                         today=today, items=items, company=app.settings.company_name)
        say = task.steps[0].say
        ctx = ToolContext(actor=actor, uow=app.uow, locale=locale)

        def size(chosen) -> int:
            schemas = [convert_to_openai_tool(t) for t in toolkit(list(chosen), ctx)]
            return (estimate_tokens(system) + estimate_tokens(json.dumps(schemas, ensure_ascii=False))
                    + estimate_tokens(say))

        eligible = selection.eligible(specs, audiences)
        subset = selection.select(specs, audiences, say, limit=limit)
        out.append(PromptSize(task.id, say, len(eligible), size(eligible), len(subset), size(subset)))
    return out


def prompt_report(sizes: list[PromptSize], *, limit: int) -> str:
    if not sizes:
        return "prompt tokens: no utterances"
    full = [s.all_tokens for s in sizes]
    sub = [s.subset_tokens for s in sizes]
    under = sum(1 for x in sub if x < AIM)
    lines = [f"prompt tokens per LLM turn (ESTIMATED with bot.agent.tokens.estimate_tokens, not a real tokenizer), "
             f"{len(sizes)} representative first messages; system prompt + tool JSON schemas + message:",
             f"  all eligible tools ({min(s.all_tools for s in sizes)}–{max(s.all_tools for s in sizes)} tools): "
             f"mean {statistics.mean(full):.0f}, max {max(full)}",
             f"  selected subset (≤ {limit} tools, LTC_AGENT_MAX_TOOLS): mean {statistics.mean(sub):.0f}, "
             f"max {max(sub)}  ({100 * (1 - statistics.mean(sub) / statistics.mean(full)):.0f}% smaller)",
             f"  aim < {AIM} tokens with the subset: {under}/{len(sizes)} turns under "
             f"({'met' if under == len(sizes) else 'NOT met'} for every turn)"]
    for s in sizes:
        lines.append(f"    {s.task:<28} all {s.all_tokens:>6} ({s.all_tools:>2} tools)  subset {s.subset_tokens:>5} "
                     f"({s.subset_tools:>2})  {s.say[:48]!r}")
    return "\n".join(lines)
