"""τ-bench-style evaluation of the chat agent: a task passes when the database ends up right.

A task (tasks_*.yaml in this folder) is a user of the demo company saying one or more things
(answering proposals yes or no), the state the database must be in afterwards, and facts the
reply must carry. Each task runs on its own copy of the seeded demo with a fixed clock, a fresh
conversation thread and the real agent (`bot.agent.runtime.Agent`) with the offline command model,
an OpenAI-compatible LLM, or the oracle (which makes each step's intended `call`, to check the
tasks themselves). Writes are judged with plain SQL through `selectors`; refusals by a digest of
every business table before and after.

Task keys
---------
id, category, tags (en/zh also set the language the final reply must be in), user (demo email or
its local part: li.na), locale (optional: the reply language to ask for; default the user's own),
note, refs ({name: selector}, resolved before anything runs), setup (a list of tool calls
`{as, tool, args}` with proposals confirmed, facts no tool states `{as, do, args}`, or
`{refs: {...}}`), steps (each: say, as, refs, call, confirm yes|no, confirm_as, confirm_status,
proposal true|false, tools, reply), expect (a list of exists|absent|count+equals|row+has|sql+equals|
unchanged|changed_only checks, each with an optional why) and reply (checks on the last step's text:
contains, any, regex, absent, lang).
"""
from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import inspect, text

from bot.agent import selection
from bot.agent.offline.model import OfflineCommandModel
from bot.agent.runtime import Agent
from domain.actor import Actor, Channel
from domain.errors import LTCError
from tests.eval.agent import databases
from tests.eval.agent.oracle import OracleModel
from tests.eval.agent.selectors import KINDS, Scope, SelectorError, email, pick_one, same, select_rows
from tools import runner
from tools.registry import all_tools, audiences_for

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CATEGORIES = ("leads", "deals", "gates", "quotes", "approvals", "contracts", "delivery", "invoices", "payments",
              "collections", "search", "safety", "help")
TASK_KEYS = {"id", "category", "tags", "user", "locale", "refs", "setup", "steps", "expect", "reply", "note"}
STEP_KEYS = {"say", "as", "refs", "call", "confirm", "confirm_as", "confirm_status", "proposal", "tools", "reply"}
REPLY_KEYS = {"contains", "any", "regex", "absent", "lang"}
EXPECT_KEYS = {"exists", "absent", "count", "equals", "row", "has", "sql", "unchanged", "changed_only", "why"}
# Conversation memory and proposals are the machinery, not the business: refusals may touch them.
MACHINERY = {"agent_checkpoints", "agent_checkpoint_writes", "pending_actions", "alembic_version"}
MODELS = ("offline", "llm", "oracle")
ZH_MARKS = re.compile(r"[，。：；！？、]|[的了已请将为您]")
EN_PROSE = re.compile(r"\b[a-z]{2,}(?: [a-z]{2,})+\b")
TABLE_RULE = re.compile(r"-+(?:  -+)*")
BILINGUAL = re.compile(r"[A-Za-z][A-Za-z ,.'()-]* / ")


class TaskError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    say: str
    user: str | None = None
    refs: dict[str, str] = field(default_factory=dict)  # resolved just before this step
    call: dict[str, Any] | None = None  # the intended tool call: what the oracle model makes
    confirm: str | None = None  # yes | no: answer this turn's proposal
    confirm_as: str | None = None  # someone else presses the button (must be refused)
    confirm_status: str | None = None  # expected outcome of the answer (default ok / cancelled)
    proposal: bool | None = None
    tools: tuple[str, ...] = ()
    reply: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str
    category: str
    tags: tuple[str, ...]
    user: str
    steps: tuple[Step, ...]
    locale: str | None = None
    refs: dict[str, str] = field(default_factory=dict)
    setup: tuple[dict[str, Any], ...] = ()
    expect: tuple[dict[str, Any], ...] = ()
    reply: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def reply_checks(self) -> dict[str, Any]:
        """The reply checks, with the language of the task's tag unless the task says (lang: any)."""
        default = "zh" if "zh" in self.tags else "en" if "en" in self.tags else "any"
        return {"lang": default, **self.reply}

    @property
    def multi_turn(self) -> bool:
        return len(self.steps) > 1


def _step(raw: Any, task_id: str) -> Step:
    if isinstance(raw, str):
        raw = {"say": raw}
    unknown = set(raw) - STEP_KEYS
    if unknown or "say" not in raw:
        raise TaskError(f"{task_id}: a step needs 'say' and knows only {sorted(STEP_KEYS)} (got {sorted(raw)})")
    confirm = raw.get("confirm")
    if confirm is not None:
        confirm = {True: "yes", False: "no"}.get(confirm, confirm)
        if confirm not in ("yes", "no"):
            raise TaskError(f"{task_id}: confirm is yes or no")
    _check_reply_spec(raw.get("reply") or {}, task_id)
    call = raw.get("call")
    if call is not None and (set(call) - {"tool", "args"} or "tool" not in call):
        raise TaskError(f"{task_id}: call is {{tool, args}}")
    return Step(say=str(raw["say"]), user=raw.get("as"), refs=dict(raw.get("refs") or {}), call=call,
                confirm=confirm, confirm_as=raw.get("confirm_as"),
                confirm_status=raw.get("confirm_status"), proposal=raw.get("proposal"),
                tools=tuple(raw.get("tools") or ()), reply=raw.get("reply") or {})


def _check_reply_spec(spec: dict, task_id: str) -> None:
    if set(spec) - REPLY_KEYS:
        raise TaskError(f"{task_id}: reply checks are {sorted(REPLY_KEYS)}, got {sorted(spec)}")


def parse_task(raw: dict[str, Any], source: str = "") -> Task:
    task_id = raw.get("id", "?")
    unknown = set(raw) - TASK_KEYS
    if unknown:
        raise TaskError(f"{task_id}: unknown keys {sorted(unknown)}")
    if raw.get("category") not in CATEGORIES:
        raise TaskError(f"{task_id}: category must be one of {CATEGORIES}")
    for item in raw.get("expect") or ():
        if not isinstance(item, dict) or set(item) - EXPECT_KEYS:
            raise TaskError(f"{task_id}: an expectation knows only {sorted(EXPECT_KEYS)}: {item}")
    for item in raw.get("setup") or ():
        kinds = {"refs", "tool", "do"} & set(item)
        if len(kinds) != 1 or set(item) - {"refs", "tool", "do", "as", "args"} or \
                item.get("do", next(iter(SETUP_ACTIONS))) not in SETUP_ACTIONS:
            raise TaskError(f"{task_id}: a setup item is {{refs}}, {{as, tool, args}} or {{as, do, args}} with do "
                            f"one of {sorted(SETUP_ACTIONS)}: {item}")
    _check_reply_spec(raw.get("reply") or {}, task_id)
    steps = tuple(_step(s, task_id) for s in raw.get("steps") or ())
    if not steps:
        raise TaskError(f"{task_id}: no steps")
    return Task(id=task_id, category=raw["category"], tags=tuple(raw.get("tags") or ()), user=raw["user"],
                steps=steps, locale=raw.get("locale"), refs=dict(raw.get("refs") or {}),
                setup=tuple(raw.get("setup") or ()), expect=tuple(raw.get("expect") or ()),
                reply=raw.get("reply") or {}, source=source)


def load_tasks(folder: Path = HERE, *, tags: tuple[str, ...] = (), categories: tuple[str, ...] = (),
               ids: tuple[str, ...] = ()) -> list[Task]:
    tasks: list[Task] = []
    for path in sorted(folder.glob("tasks_*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or ():
            tasks.append(parse_task(raw, path.name))
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise TaskError(f"two tasks with id {t.id}")
        seen.add(t.id)
    return [t for t in tasks
            if (not tags or set(tags) & set(t.tags)) and (not categories or t.category in categories)
            and (not ids or t.id in ids)]


# --- results -------------------------------------------------------------------------------------

@dataclass
class Turn:
    say: str
    text: str
    tools: list[str]
    input_tokens: int
    output_tokens: int
    latency_ms: float
    subset: list[str]  # the tools selection.select would bind for an LLM on this message
    error: str | None = None

    @property
    def subset_covers(self) -> bool:
        return set(self.tools) <= set(self.subset)


@dataclass
class TaskResult:
    task: Task
    failures: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def tool_calls(self) -> int:
        return sum(len(t.tools) for t in self.turns)


# --- the harness ---------------------------------------------------------------------------------

class Harness:
    """`with Harness() as h: results = h.run(load_tasks())`. Seeds once; one database copy per task."""

    def __init__(self, *, model: str = "offline", db_url: str | None = None, playbooks: str = "keyword") -> None:
        if model not in MODELS:
            raise ValueError(f"model is one of {MODELS}")
        self.model = model
        self.template = databases.Template(db_url)
        self._pb_dir = tempfile.TemporaryDirectory(prefix="ltc-agent-eval-playbooks-")
        self.playbooks_kind = playbooks
        self.playbooks = None
        self.template_url: str | None = None
        self.setup_seconds = 0.0

    def __enter__(self) -> Harness:
        started = time.perf_counter()
        self.template_url = self.template.seed()
        if self.model == "llm" and not databases.settings_for(self.template_url, llm=True).llm_configured:
            raise SystemExit("--model llm needs LLM_BASE_URL / LLM_MODEL (and LLM_API_KEY) in the environment")
        self.playbooks = databases.build_playbooks(self.playbooks_kind, self._pb_dir.name)
        self.setup_seconds = time.perf_counter() - started
        return self

    def __exit__(self, *exc: Any) -> None:
        self.template.close()
        self._pb_dir.cleanup()

    def run(self, tasks: list[Task], progress=None) -> list[TaskResult]:
        results = []
        for task in tasks:
            results.append(self.run_task(task))
            if progress:
                progress(results[-1])
        return results

    def model_factory(self, calls: dict[str, dict[str, Any]]):
        if self.model == "offline":
            return lambda today, locale: OfflineCommandModel(today=today, locale=locale)
        if self.model == "oracle":  # `calls` is filled step by step; read when each turn starts
            return lambda today, locale: OracleModel(today=today, locale=locale, calls=dict(calls))
        return None  # the Agent's own: chat_model(settings) over LLM_*

    def run_task(self, task: Task) -> TaskResult:
        result = TaskResult(task)
        started = time.perf_counter()
        with self.template.task_app(llm=self.model == "llm", playbooks=self.playbooks) as app:
            try:
                _Run(self, app, task, result).go()
            except (SelectorError, TaskError) as e:
                result.failures.append(f"task definition: {e}")
            except Exception as e:  # one broken task must not end the run; say what broke
                log.exception("task %s crashed", task.id)
                result.failures.append(f"crashed: {type(e).__name__}: {e}")
        result.seconds = time.perf_counter() - started
        return result


class _Run:
    """One task on its own database: refs → setup → steps → judgement."""

    def __init__(self, harness: Harness, app, task: Task, result: TaskResult) -> None:
        self.h, self.app, self.task, self.result = harness, app, task, result
        self.calls: dict[str, dict[str, Any]] = {}
        self.agent = Agent(app, model_factory=harness.model_factory(self.calls))
        self.scope = Scope()
        self.people: dict[int, Any] = {}
        self.thread = f"eval:{task.id}"
        self.fail = result.failures.append

    def go(self) -> None:
        with self.app.engine.connect() as conn:
            self.scope.bind("me", "user", pick_one(conn, f"user email={email(self.task.user)} only", self.scope))
            self._refs(conn, self.task.refs)
        if not self._setup():
            return
        wants_digest = any("unchanged" in e or "changed_only" in e for e in self.task.expect)
        before = self._digest() if wants_digest else {}
        text_ = ""
        for n, step in enumerate(self.task.steps, 1):
            text_ = self._step(n, step)
            if text_ is None:
                return
        for problem in check_reply(self.scope.fill(self.task.reply_checks), text_):
            self.fail(f"final reply: {problem}")
        after = self._digest() if wants_digest else {}
        with self.app.engine.connect() as conn:
            for item in self.task.expect:
                self.result.failures.extend(check_state(conn, item, self.scope, before, after))

    # -- pieces ------------------------------------------------------------------------------

    def _refs(self, conn, refs: dict[str, str]) -> None:
        for name, selector in refs.items():
            kind = selector.split(None, 1)[0]
            self.scope.bind(name, kind, pick_one(conn, selector, self.scope))

    def _actor(self, who: str | None, *, via_agent: bool = False) -> Actor:
        with self.app.engine.connect() as conn:
            row = pick_one(conn, f"user email={email(who or self.task.user)} only", self.scope)
        return Actor(row["id"], Channel.CLI, via_agent=via_agent)

    def _setup(self) -> bool:
        for i, item in enumerate(self.task.setup, 1):
            if "refs" in item:
                with self.app.engine.connect() as conn:
                    self._refs(conn, item["refs"])
                continue
            actor = self._actor(item.get("as"))
            if "do" in item:
                try:
                    SETUP_ACTIONS[item["do"]](self.app, actor, **self.scope.fill(item.get("args") or {}))
                except LTCError as e:
                    self.fail(f"setup {i} ({item['do']}): {e.message}")
                    return False
                continue
            ctx = self.agent.tool_context(actor, "en")
            outcome = runner.invoke(item["tool"], self.scope.fill(item.get("args") or {}), ctx)
            if outcome.status == "needs_confirmation":
                outcome = runner.confirm(outcome.proposal.token, ctx)
            if outcome.status != "ok":
                self.fail(f"setup {i} ({item['tool']}): {outcome.status}: {outcome.text}")
                return False
        return True

    def _step(self, n: int, step: Step) -> str | None:
        if step.refs:
            with self.app.engine.connect() as conn:
                self._refs(conn, step.refs)
        actor = self._actor(step.user)
        say = self.scope.fill(step.say)
        if step.call is not None:
            self.calls[say] = self.scope.fill(step.call)
        if actor.user_id not in self.people:
            self.people[actor.user_id] = self.agent.person(actor)
        person = self.people[actor.user_id]
        thread = self.thread if step.user is None else f"{self.thread}:{step.user}"
        recent = [c for t in self.result.turns for c in t.tools]
        subset = [s.name for s in selection.select(all_tools().values(), audiences_for(person.roles), say,
                                                   limit=self.app.settings.agent_max_tools, recent=recent[-8:])]
        turn = self.agent.reply(actor=actor, text=say, thread_id=thread, locale=self.task.locale)
        record = Turn(say=say, text=turn.text, tools=list(turn.tool_calls), input_tokens=turn.input_tokens,
                      output_tokens=turn.output_tokens, latency_ms=turn.latency_ms, subset=subset, error=turn.error)
        self.result.turns.append(record)
        where = f"step {n} ({say!r})"
        if turn.error:
            self.fail(f"{where}: the turn failed ({turn.error}): {turn.text}")
        missing = [t for t in step.tools if t not in turn.tool_calls]
        if missing:
            self.fail(f"{where}: expected a call of {missing}, the agent called {turn.tool_calls or 'no tool'}"
                      f"; reply: {_short(turn.text)}")
        proposals = turn.proposals
        if step.proposal is not None and bool(proposals) != step.proposal:
            self.fail(f"{where}: expected {'a' if step.proposal else 'no'} proposal, got {len(proposals)}"
                      f"; reply: {_short(turn.text)}")
        text_ = turn.text
        if step.confirm:
            if not proposals:
                self.fail(f"{where}: nothing to confirm (no proposal); tools {turn.tool_calls or '-'}; "
                          f"reply: {_short(turn.text)}")
                return None
            text_ = "\n".join(x for x in (text_, self._answer(where, step, proposals, thread)) if x)
        for problem in check_reply(self.scope.fill(step.reply), text_):
            self.fail(f"{where}: {problem}")
        return text_

    def _answer(self, where: str, step: Step, proposals: list[runner.Proposal], thread: str) -> str:
        actor = self._actor(step.confirm_as or step.user, via_agent=True)
        ctx = self.agent.tool_context(actor, self.task.locale or self.agent.person(actor).locale)
        expected = step.confirm_status or ("error" if step.confirm_as else
                                           "ok" if step.confirm == "yes" else "cancelled")
        texts = []
        for p in proposals:
            outcome = runner.confirm(p.token, ctx) if step.confirm == "yes" else runner.cancel(p.token, ctx)
            if not step.confirm_as:  # what somebody else saw is not the user's reply
                texts.append(outcome.text)
            if outcome.status != expected:
                self.fail(f"{where}: answering {step.confirm} to {p.tool} gave {outcome.status}, expected {expected}"
                          f": {_short(outcome.text)}")
            if not step.confirm_as:
                self.agent.remember(thread, outcome.text, user_id=ctx.actor.user_id)
        return "\n".join(texts)

    def _digest(self) -> dict[str, str]:
        with self.app.engine.connect() as conn:
            return digest(conn)


# --- setup facts no tool states ------------------------------------------------------------------

def _accept_quote(app, actor: Actor, quote: int) -> None:
    """The customer accepted the quote: it is sent, then accepted (no chat tool records either)."""
    from domain.services import quotes

    with app.uow() as uow:
        if uow.quotes.get(int(quote)).status == "approved":
            quotes.send_quote(int(quote), actor=actor, uow=uow)
        quotes.accept_quote(int(quote), actor=actor, uow=uow)
        uow.commit()


def _sign_off_deliverability(app, actor: Actor, opportunity: int) -> None:
    """The FR signs the deal's deliverability off (ATC needs it; no chat tool does it)."""
    from domain.services import opportunities

    with app.uow() as uow:
        opportunities.sign_off_deliverability(int(opportunity), actor=actor, uow=uow)
        uow.commit()


SETUP_ACTIONS = {"accept_quote": _accept_quote, "sign_off_deliverability": _sign_off_deliverability}


# --- judging -------------------------------------------------------------------------------------

_ORDER: dict[str, list[tuple[str, str]]] = {}  # dialect → [(table, ORDER BY)]: one schema per run


def digest(conn) -> dict[str, str]:
    """A hash of every business table's rows (proposal bookkeeping left out), read through the
    driver's own cursor: no type conversion, so the ~2,000 demo rows hash in milliseconds."""
    dialect = conn.dialect.name
    if dialect not in _ORDER:
        insp = inspect(conn)
        _ORDER[dialect] = [(t, ", ".join(f'"{c}"' for c in insp.get_pk_constraint(t)["constrained_columns"]) or "1")
                           for t in sorted(insp.get_table_names()) if t not in MACHINERY]
    cursor = conn.connection.driver_connection.cursor()
    out = {}
    try:
        for table, order in _ORDER[dialect]:
            where = " WHERE entity <> 'pending_action'" if table == "audit_log" else ""
            cursor.execute(f'SELECT * FROM "{table}"{where} ORDER BY {order}')
            out[table] = hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest()
    finally:
        cursor.close()
    return out


def check_reply(spec: dict[str, Any], reply: str) -> list[str]:
    problems = []
    folded = (reply or "").casefold()
    for s in spec.get("contains") or ():
        if str(s).casefold() not in folded:
            problems.append(f"reply lacks {s!r}: {_short(reply)}")
    options = spec.get("any") or ()
    if options and not any(str(s).casefold() in folded for s in options):
        problems.append(f"reply has none of {list(options)}: {_short(reply)}")
    for pattern in spec.get("regex") or ():
        if not re.search(pattern, reply or "", re.I | re.S):
            problems.append(f"reply does not match /{pattern}/: {_short(reply)}")
    for s in spec.get("absent") or ():
        if str(s).casefold() in folded:
            problems.append(f"reply must not say {s!r}: {_short(reply)}")
    lang = spec.get("lang")
    if lang in ("en", "zh") and not in_language(reply or "", lang):
        problems.append(f"reply is not (all) in {'Chinese' if lang == 'zh' else 'English'}: {_short(reply)}")
    return problems


def in_language(reply: str, lang: str) -> bool:
    """zh: Chinese punctuation or function words, and no English prose (two lowercase words in a row,
    as in "尚缺：an approved quote"); en: Latin words and no Chinese sentence punctuation or politeness.
    Record names and references may be in either language."""
    text_ = prose(reply)
    if lang == "zh":
        return bool(ZH_MARKS.search(text_)) and not EN_PROSE.search(text_)
    return bool(re.search(r"[A-Za-z]{3,}", text_)) and not re.search(r"[，。；！？]|[请您]", text_)


def prose(reply: str) -> str:
    """The reply without its tables (columns hold record data in any language) and without bilingual
    labels stored as data ("Advance on signing / 预付款")."""
    out: list[str] = []
    in_table = False
    for line in reply.splitlines():
        if TABLE_RULE.fullmatch(line):
            in_table = True
            if out:
                out.pop()  # the header row
            continue
        if in_table and ("  " in line.strip() or line.startswith("…")):
            continue
        in_table = False
        out.append(line)
    return BILINGUAL.sub("", "\n".join(out))


def check_state(conn, item: dict[str, Any], scope: Scope, before: dict[str, str], after: dict[str, str]) -> list[str]:
    why = f" ({item['why']})" if item.get("why") else ""
    try:
        if "exists" in item:
            if not select_rows(conn, item["exists"], scope):
                return [f"expected a row: {scope.fill(item['exists'])}{why}{_near(conn, item['exists'], scope)}"]
        elif "absent" in item:
            rows = select_rows(conn, item["absent"], scope)
            if rows:
                return [f"expected no row: {scope.fill(item['absent'])}{why}; found ids {[r['id'] for r in rows][:5]}"]
        elif "count" in item:
            n = len(select_rows(conn, item["count"], scope))
            if n != int(item["equals"]):
                return [f"expected {item['equals']} rows of {scope.fill(item['count'])}, found {n}{why}"]
        elif "row" in item:
            row = pick_one(conn, item["row"], scope)
            wrong = {k: (row.get(k, "<no column>"), scope.fill(v)) for k, v in (item.get("has") or {}).items()
                     if not same(row.get(k), scope.fill(v))}
            if wrong:
                return [f"{scope.fill(item['row'])}: " + ", ".join(f"{k} = {a!r}, expected {e!r}"
                                                                    for k, (a, e) in wrong.items()) + why]
        elif "sql" in item:
            query, params = scope.sql(item["sql"])
            value = conn.execute(text(query), params).scalar()
            if not same(value, item.get("equals")):
                return [f"{item['sql']} → {value!r}, expected {item.get('equals')!r}{why}"]
        elif "unchanged" in item:
            tables = sorted(before) if item["unchanged"] in ("all", True) else list(item["unchanged"])
            changed = [t for t in tables if before.get(t) != after.get(t)]
            if changed:
                return [f"expected nothing written, but these tables changed: {changed}{why}"]
        elif "changed_only" in item:
            allowed = set(item["changed_only"])
            changed = [t for t in sorted(after) if before.get(t) != after.get(t) and t not in allowed]
            if changed:
                return [f"only {sorted(allowed)} may change, but so did {changed}{why}"]
    except SelectorError as e:
        return [f"expectation {item}: {e}"]
    return []


def _near(conn, selector: str, scope: Scope) -> str:
    """For a missing row: what the first filter alone finds, so the failure says what is there."""
    words = selector.split()
    kind = words[0]
    if kind not in KINDS or len(words) < 3:
        return ""
    try:
        rows = select_rows(conn, f"{kind} {words[1]} last", scope)[:2]
    except SelectorError:
        return ""
    return f"; nearest by {words[1]}: {rows}" if rows else f"; nothing with {scope.fill(words[1])}"


def _short(text_: str, n: int = 240) -> str:
    text_ = " ".join((text_ or "").split())
    return text_ if len(text_) <= n else text_[:n] + "…"
