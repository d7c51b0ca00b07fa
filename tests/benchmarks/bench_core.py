#!/usr/bin/env python
"""Core throughput benchmarks for LTC Copilot, on SQLite and PostgreSQL.

A script, not a pytest module (pyproject excludes tests/benchmarks). `scripts/bench.sh` runs
it with LTC_TEST_PG_URL exported; by hand:

    .venv/bin/python tests/benchmarks/bench_core.py                  # both databases
    .venv/bin/python tests/benchmarks/bench_core.py --only sqlite --n 200
    .venv/bin/python tests/benchmarks/bench_core.py --n leads=2000,cycles=100
    .venv/bin/python tests/benchmarks/bench_core.py --only postgresql --profile --what-if

For each database it migrates a fresh one (a temp SQLite file; a throw-away PostgreSQL
database that it creates and drops), builds the standard org (tests/builders.build_org) and
drives everything through the services, one unit of work per use case:

  lead_create        create_lead as `rep`, unique emails, one uow each (timed: the whole uow)
  lead_create_2thr   PostgreSQL only: the same from 2 worker threads sharing one engine
  lead_convert       create + qualify + convert, each in its own uow; only convert is timed
  gate_cycle         builders.full_cycle (ATI → solution review → ATB → ATC, 15 uows) on a
                     fresh deal from builders.make_deal; deal creation is not timed

ops/s = operations / summed op time for sequential runs, and operations / wall time for the
threaded run. queries/op counts the SQL statements sent (SQLite's BEGIN IMMEDIATE included;
PostgreSQL's implicit BEGIN is not). The aims (PostgreSQL): ≥500 lead creations/s and
≥100 gate cycles/s.

--profile adds, per database, for lead creation and the gate cycle (timed parts only):
  * an instrumented breakdown (wrappers, ~1 µs/call): inclusive time of the use cases, shared
    helpers (begin, audit, emit, to_view …), repository calls (users.all/managers/get …),
    Session.flush, selectin loads, pool checkout, BEGIN/COMMIT; plus who calls the repeated ones;
  * the SQL statement mix: count and time inside cursor.execute per statement shape;
  * cProfile: top self time and domain/ cumulative time, with .prof files for snakeviz/pstats.
--what-if times simulated fixes (monkeypatched in this process only; domain/ is not edited)
against the baseline: per-uow and in-process user directory, outbox upsert/batch, audit without
flush, lock-once approval load, one-query de-dup, policy cache, no pool pre-ping, SQLite
synchronous=NORMAL, and all of them combined.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import json
import os
import platform
import pstats
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from domain.db.engine import make_engine  # noqa: E402
from domain.db.migrate import upgrade  # noqa: E402
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory  # noqa: E402
from domain.services import leads as lead_svc  # noqa: E402
from tests import builders  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:54329/ltc_test"
AIMS = {  # (database, scenario) -> minimum ops/s
    ("postgresql", "lead_create"): 500.0,
    ("postgresql", "gate_cycle"): 100.0,
}
SCENARIOS = ("lead_create", "lead_create_2thr", "lead_convert", "gate_cycle")


# --------------------------------------------------------------------------------------------
# Measurement plumbing
# --------------------------------------------------------------------------------------------

@dataclass
class Result:
    db: str
    scenario: str
    n: int
    wall_s: float
    durations: list[float]
    queries: int
    threads: int = 1
    unit: str = "op"

    @property
    def ops_per_s(self) -> float:
        busy = self.wall_s if self.threads > 1 else sum(self.durations)
        return self.n / busy if busy > 0 else float("inf")

    def pct(self, p: float) -> float:
        return percentile(self.durations, p) * 1000.0

    @property
    def queries_per_op(self) -> float:
        return self.queries / self.n if self.n else 0.0

    def as_dict(self) -> dict:
        aim = AIMS.get((self.db, self.scenario))
        return {"db": self.db, "scenario": self.scenario, "n": self.n, "threads": self.threads,
                "ops_per_s": round(self.ops_per_s, 1), "p50_ms": round(self.pct(50), 2),
                "p95_ms": round(self.pct(95), 2), "max_ms": round(max(self.durations) * 1000, 2),
                "queries_per_op": round(self.queries_per_op, 1), "aim_ops_per_s": aim,
                "meets_aim": None if aim is None else self.ops_per_s >= aim}


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class QueryCounter:
    """Counts statements sent on an engine (thread-safe enough: a lock around +=)."""

    def __init__(self, engine) -> None:
        self.n = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._on_exec)

    def _on_exec(self, *_args) -> None:
        with self._lock:
            self.n += 1


def _load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024.0 if sys.platform != "darwin" else kb / (1024.0 * 1024.0)


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------

@dataclass
class Database:
    kind: str  # "sqlite" | "postgresql"
    url: str
    label: str = ""


@contextmanager
def sqlite_database() -> Iterator[Database]:
    tmp = tempfile.mkdtemp(prefix="ltc_bench_")
    path = Path(tmp) / "bench.db"
    try:
        yield Database("sqlite", f"sqlite:///{path}", label=str(path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def postgres_database(base_url: str, name: str) -> Iterator[Database]:
    base = make_url(base_url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    quoted = '"' + name.replace('"', '""') + '"'
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {quoted}"))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield Database("postgresql", url, label=f"{base.host}:{base.port}/{name}")
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()


def pg_reachable(url: str) -> str | None:
    """None when a connection works, else the error text."""
    try:
        eng = create_engine(make_url(url).set(database="postgres"), poolclass=NullPool)
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001 - report any failure, then skip
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


class Harness:
    """One migrated database with the standard org, an engine, a uow factory and a query counter."""

    def __init__(self, db: Database) -> None:
        self.db = db
        upgrade(db.url)
        self.engine = make_engine(db.url)
        self.sf = session_factory(self.engine)
        self.counter = QueryCounter(self.engine)
        self.org = builders.build_org(self.uow)
        self.seq = 0
        self._seq_lock = threading.Lock()

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.sf)

    def next_ids(self, k: int) -> range:
        with self._seq_lock:
            start = self.seq
            self.seq += k
        return range(start, start + k)

    def close(self) -> None:
        self.engine.dispose()


def lead_data(i: int, tag: str = "") -> dict:
    """A fully described lead: unique email, company and contact (so no de-dup hit)."""
    return {
        "source": "referral", "company": f"Bench{tag} {i} Manufacturing Ltd", "contact_name": f"Person {i}",
        "email": f"p{i}{tag}@bench{i}.example", "need": "MES roll-out for two plants",
        "budget": "250000", "region": "east", "timeline": "within_3_months", "authority": "decision_maker",
    }


# --------------------------------------------------------------------------------------------
# Scenarios (each op is timed with perf_counter; untimed set-up runs outside the timer)
# --------------------------------------------------------------------------------------------

def op_create_lead(h: Harness, i: int, actor) -> None:
    with h.uow() as uow:
        lead_svc.create_lead(lead_data(i), actor=actor, uow=uow)
        uow.commit()


def run_lead_create(h: Harness, n: int, warmup: int) -> Result:
    rep = h.org.actor("rep")
    for i in h.next_ids(warmup):
        op_create_lead(h, i, rep)
    ids = h.next_ids(n)
    durations: list[float] = []
    q0, t0 = h.counter.n, time.perf_counter()
    for i in ids:
        s = time.perf_counter()
        op_create_lead(h, i, rep)
        durations.append(time.perf_counter() - s)
    wall = time.perf_counter() - t0
    return Result(h.db.kind, "lead_create", n, wall, durations, h.counter.n - q0)


def run_lead_create_threads(h: Harness, n: int, warmup: int, threads: int) -> Result:
    rep = h.org.actor("rep")
    for i in h.next_ids(warmup):
        op_create_lead(h, i, rep)
    per = [list(h.next_ids(n // threads + (1 if k < n % threads else 0))) for k in range(threads)]
    durations: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        try:
            barrier.wait()
            for i in per[k]:
                s = time.perf_counter()
                op_create_lead(h, i, rep)
                durations[k].append(time.perf_counter() - s)
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    pool = [threading.Thread(target=work, args=(k,), name=f"bench-{k}") for k in range(threads)]
    for t in pool:
        t.start()
    q0 = h.counter.n
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    flat = [d for ds in durations for d in ds]
    return Result(h.db.kind, f"lead_create_{threads}thr", len(flat), wall, flat, h.counter.n - q0,
                  threads=threads)


def prepare_qualified_lead(h: Harness, i: int, rep) -> int:
    with h.uow() as uow:
        lead_id = lead_svc.create_lead(lead_data(i, "c"), actor=rep, uow=uow).id
        uow.commit()
    with h.uow() as uow:
        lead_svc.qualify_lead(lead_id, actor=rep, uow=uow)
        uow.commit()
    return lead_id


def op_convert(h: Harness, lead_id: int, rep) -> None:
    with h.uow() as uow:
        lead_svc.convert_lead(lead_id, {"amount": "250000"}, actor=rep, uow=uow)
        uow.commit()


def run_lead_convert(h: Harness, n: int, warmup: int) -> Result:
    rep = h.org.actor("rep")
    for i in h.next_ids(warmup):
        op_convert(h, prepare_qualified_lead(h, i, rep), rep)
    durations: list[float] = []
    queries = 0
    t0 = time.perf_counter()
    for i in h.next_ids(n):
        lead_id = prepare_qualified_lead(h, i, rep)
        q0 = h.counter.n
        s = time.perf_counter()
        op_convert(h, lead_id, rep)
        durations.append(time.perf_counter() - s)
        queries += h.counter.n - q0
    return Result(h.db.kind, "lead_convert", n, time.perf_counter() - t0, durations, queries)


def run_gate_cycle(h: Harness, n: int, warmup: int, *, around_op: Callable | None = None) -> Result:
    """`around_op(fn)` lets the profiler wrap only the timed part."""
    for i in h.next_ids(warmup):
        builders.full_cycle(h.uow, h.org, builders.make_deal(h.uow, h.org, n=i, prefix="w"))
    durations: list[float] = []
    queries = 0
    t0 = time.perf_counter()
    for i in h.next_ids(n):
        opp_id = builders.make_deal(h.uow, h.org, n=i, prefix="g")
        q0 = h.counter.n
        s = time.perf_counter()
        if around_op is None:
            builders.full_cycle(h.uow, h.org, opp_id)
        else:
            around_op(lambda: builders.full_cycle(h.uow, h.org, opp_id))
        durations.append(time.perf_counter() - s)
        queries += h.counter.n - q0
    return Result(h.db.kind, "gate_cycle", n, time.perf_counter() - t0, durations, queries, unit="cycle")


# --------------------------------------------------------------------------------------------
# Profiling: cProfile (+ .prof files), an instrumented breakdown and the SQL statement mix
# --------------------------------------------------------------------------------------------

class PhaseTimer:
    """Inclusive wall time per wrapped function, and per (caller → callee) edge.

    Functions are wrapped in place (module attributes, class attributes, registry dicts) and
    restored afterwards; nothing under domain/ is edited. Overhead is ~1 µs per call, far less
    than cProfile's, so the shares are close to the un-instrumented run.
    """

    def __init__(self) -> None:
        self.incl: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.edge: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.edge_calls: Counter[tuple[str, str]] = Counter()
        self.root: defaultdict[tuple[str, str], float] = defaultdict(float)  # (use case at the root, label)
        self.root_calls: Counter[tuple[str, str]] = Counter()
        self.stack: list[str] = []
        self.active = False
        self._undo: list[Callable[[], None]] = []

    def wrap(self, label: str, fn: Callable) -> Callable:
        timer = self

        @functools.wraps(fn)
        def timed(*a, **k):
            if not timer.active:
                return fn(*a, **k)
            parent = next((x for x in reversed(timer.stack) if x != label), "<op>")
            root = timer.stack[0] if timer.stack else label
            outer = label not in timer.stack
            timer.stack.append(label)
            s = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                d = time.perf_counter() - s
                timer.stack.pop()
                if outer:  # recursion/re-entry counts once
                    timer.incl[label] += d
                    timer.calls[label] += 1
                    timer.edge[(parent, label)] += d
                    timer.edge_calls[(parent, label)] += 1
                    timer.root[(root, label)] += d
                    timer.root_calls[(root, label)] += 1

        timed.__bench_wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def patch(self, owner, name: str, label: str) -> None:
        """Wrap owner.name; for classes an inherited method is wrapped on this class only."""
        had_own = name in vars(owner) if isinstance(owner, type) else True
        original = vars(owner)[name] if had_own and isinstance(owner, type) else getattr(owner, name)
        target = getattr(owner, name)
        setattr(owner, name, self.wrap(label, target))
        self._undo.append(lambda: setattr(owner, name, original) if had_own else delattr(owner, name))

    def patch_everywhere(self, fn: Callable, label: str, modules) -> None:
        """Wrap a function in every module that imported it by name."""
        wrapped = self.wrap(label, fn)
        for m in modules:
            for attr, value in list(vars(m).items()):
                if value is fn:
                    setattr(m, attr, wrapped)
                    self._undo.append(lambda m=m, attr=attr: setattr(m, attr, fn))

    def patch_dict(self, d: dict, key, label: str) -> None:
        fn = d[key]
        d[key] = self.wrap(label, fn)
        self._undo.append(lambda: d.__setitem__(key, fn))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


def instrument(timer: PhaseTimer) -> None:
    """The places the time is expected to go (use cases, shared helpers, repositories, SQLAlchemy)."""
    from sqlalchemy.engine import base as sa_engine_base
    from sqlalchemy.orm import Session
    from sqlalchemy.orm import strategies as sa_strategies
    from sqlalchemy.pool import base as sa_pool_base

    from domain.db import repositories as r
    from domain.services import accounts, activities, approvals, base, leads, opportunities, users

    mods = [accounts, activities, approvals, base, leads, opportunities, users, builders]
    # Use cases (entry points) first, then helpers (order matters only for readability).
    for mod, name in [(leads, "create_lead"), (leads, "convert_lead"), (leads, "change_lead_status"),
                      (approvals, "request_gate"), (approvals, "decide_approval"),
                      (opportunities, "record_solution"), (opportunities, "record_delivery_plan"),
                      (opportunities, "advance_stage"), (opportunities, "sign_off_deliverability"),
                      (builders, "approve_quote")]:
        timer.patch(mod, name, f"{mod.__name__.rsplit('.', 1)[-1]}.{name}")
    for fn, label in [(base.begin, "base.begin"), (base.parse, "base.parse"), (base.audit, "base.audit"),
                      (base.emit, "base.emit"), (base.get_or_404, "base.get_or_404")]:
        timer.patch_everywhere(fn, label, mods)
    for mod, name in [(leads, "to_view"), (approvals, "to_view"), (opportunities, "to_view"),
                      (approvals, "eligible_approvers"), (approvals, "open_request"),
                      (opportunities, "apply_stage"), (opportunities, "visible_opportunity"),
                      (opportunities, "new_opportunity"), (accounts, "find_or_create_account"),
                      (accounts, "find_or_create_contact"), (leads, "rescore"), (leads, "_assign_by_rules")]:
        timer.patch(mod, name, f"{mod.__name__.rsplit('.', 1)[-1]}.{name}")
    timer.patch_dict(approvals.SUBJECTS, "opportunity", "approvals.SUBJECTS[opportunity]")
    for kind in list(approvals.ON_APPROVED):
        timer.patch_dict(approvals.ON_APPROVED, kind, "approvals._pass_gate")
    for cls, names in [(r.UserRepository, ["get", "all", "managers", "by_email"]),
                       (r.LeadRepository, ["find_duplicate", "add"]),
                       (r.OpportunityRepository, ["get", "get_for_update", "add"]),
                       (r.ApprovalRepository, ["get", "get_for_update", "pending_for", "add"]),
                       (r.PolicyRepository, ["gates", "stage_probabilities"]),
                       (r.AuditRepository, ["add"]), (r.OutboxRepository, ["add"]),
                       (r.AccountRepository, ["by_name_norm", "add"]), (r.ContactRepository, ["for_account", "add"]),
                       (r.QuoteRepository, ["has_approved", "add"]), (r.ActivityRepository, ["count_for_lead"])]:
        short = cls.__name__.replace("Repository", "").lower()
        short = {"user": "users", "lead": "leads", "opportunity": "opportunities", "approval": "approvals",
                 "policy": "policies", "account": "accounts", "contact": "contacts", "quote": "quotes",
                 "activity": "activities"}.get(short, short)
        for name in names:
            timer.patch(cls, name, f"uow.{short}.{name}")
    for name in ["__enter__", "commit", "__exit__", "flush"]:
        timer.patch(SqlAlchemyUnitOfWork, name, f"UnitOfWork.{name}")
    timer.patch(Session, "flush", "Session.flush")
    timer.patch(sa_strategies._SelectInLoader, "_load_for_path", "selectin eager load")
    timer.patch(sa_pool_base.Pool, "connect", "pool checkout (incl. pre-ping)")
    timer.patch(sa_engine_base.Connection, "_begin_impl", "DB BEGIN (incl. SQLite BEGIN IMMEDIATE hook)")
    timer.patch(sa_engine_base.Connection, "_commit_impl", "DB COMMIT")


# Statement shapes: "SELECT users [users.id]", "INSERT audit_log", …
_VERB = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|BEGIN\s*\w*|COMMIT|ROLLBACK|PRAGMA|SAVEPOINT|RELEASE)", re.I)
_FROM = re.compile(r"\bFROM\s+([\w\.\"]+)", re.I)
_TABLE_AFTER_VERB = re.compile(r"^\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+([\w\.\"]+)", re.I)
_WHERE_COLS = re.compile(r"([\w]+\.[\w]+|\blower\([\w\.]+\))\s*(=|IN\b|<|>|IS\b)", re.I)


def statement_shape(sql: str) -> str:
    sql = " ".join(sql.split())
    m = _VERB.match(sql)
    verb = m.group(1).upper().split()[0] if m else sql.split()[0].upper()
    if verb in ("INSERT", "UPDATE", "DELETE"):
        t = _TABLE_AFTER_VERB.match(sql)
        extra = " ON CONFLICT" if " ON CONFLICT " in sql.upper() else ""
        return f"{verb} {t.group(1) if t else '?'}{extra}"
    if verb == "SELECT":
        head, _, where = sql.partition(" WHERE ")
        f = _FROM.search(head)
        table = f.group(1) if f else "-"
        if re.search(r"\bcount\(", head, re.I):
            table = f"count({table})"
        cols = list(dict.fromkeys(c for c, _op in _WHERE_COLS.findall(where.split(" ORDER BY ")[0])))
        where_s = f" WHERE {', '.join(cols[:3])}" if cols else ""
        lock = " FOR UPDATE" if "FOR UPDATE" in sql.upper() else ""
        return f"SELECT {table}{where_s}{lock}"
    return verb


class StatementTimer:
    """Count and time statements by shape (before/after_cursor_execute)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.count: Counter[str] = Counter()
        self.secs: defaultdict[str, float] = defaultdict(float)
        self._start: dict[int, float] = {}
        self.active = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, params, context, executemany) -> None:
        if self.active:
            self._start[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, params, context, executemany) -> None:
        if self.active:
            s = self._start.pop(id(cursor), None)
            shape = statement_shape(statement)
            self.count[shape] += 1
            if s is not None:
                self.secs[shape] += time.perf_counter() - s

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


def _timed_ops(h: Harness, name: str, n: int, on: Callable[[], None], off: Callable[[], None]
               ) -> list[tuple[float, float]]:
    """Run n ops of a scenario with `on()`/`off()` around each timed op (inside the timer).
    Returns (wall seconds, client CPU seconds) per op; gate_cycle's make_deal is not timed."""
    rep = h.org.actor("rep")
    out: list[tuple[float, float]] = []
    for i in h.next_ids(n):
        if name == "lead_create":
            def fn(i=i):
                op_create_lead(h, i, rep)
        else:
            opp_id = builders.make_deal(h.uow, h.org, n=i, prefix="g")

            def fn(opp_id=opp_id):
                builders.full_cycle(h.uow, h.org, opp_id)
        s, c = time.perf_counter(), time.process_time()
        on()
        try:
            fn()
        finally:
            off()
        out.append((time.perf_counter() - s, time.process_time() - c))
    return out


PER_USE_CASE = {"base.begin", "base.audit", "base.emit", "base.parse", "uow.users.all", "uow.users.managers",
                "uow.users.get", "selectin eager load", "Session.flush", "UnitOfWork.commit", "approvals.to_view",
                "opportunities.to_view", "leads.to_view", "approvals.eligible_approvers", "uow.approvals.get",
                "uow.approvals.get_for_update", "uow.opportunities.get", "uow.opportunities.get_for_update",
                "uow.policies.gates", "uow.leads.find_duplicate", "uow.outbox.add", "uow.audit.add",
                "approvals.open_request", "approvals._pass_gate", "pool checkout (incl. pre-ping)"}
REPEATED = ["uow.users.all", "uow.users.managers", "uow.users.get", "selectin eager load", "Session.flush",
            "uow.outbox.add", "uow.audit.add", "uow.policies.gates", "uow.policies.stage_probabilities",
            "uow.approvals.get", "uow.approvals.get_for_update", "approvals.SUBJECTS[opportunity]"]


def profile_scenarios(h: Harness, n_leads: int, n_cycles: int, out_dir: Path, top: int) -> dict:
    report: dict = {}
    rep = h.org.actor("rep")
    for i in h.next_ids(10):  # warm caches (compiled SQL, prepared statements) before measuring
        op_create_lead(h, i, rep)
    run_gate_cycle(h, 2, 0)
    for name, n in (("lead_create", n_leads), ("gate_cycle", n_cycles)):
        entry: dict = report.setdefault(name, {"ops": n})
        unit = "op" if name == "lead_create" else "cycle"

        # 1. Instrumented breakdown + SQL statement mix, one un-profiled run.
        timer, stm = PhaseTimer(), StatementTimer(h.engine)
        instrument(timer)
        try:
            def on():
                timer.active = stm.active = True

            def off():
                timer.active = stm.active = False
            op_s = sum(w for w, _c in _timed_ops(h, name, n, on, off))
        finally:
            timer.restore()
            stm.remove()
        per = op_s / n * 1000
        n_stmt = sum(stm.count.values())
        in_sql = sum(stm.secs.values())
        print(f"\n=== {h.db.kind} / {name}: instrumented breakdown ({n} {unit}s, {per:.2f} ms/{unit}, "
              f"{n_stmt / n:.1f} statements/{unit}, {in_sql / op_s * 100:.1f}% of the time inside cursor.execute)")
        print(f"  {'function (inclusive time)':<52} {'% of ' + unit:>9} {'ms/' + unit:>9} {'calls/' + unit:>10}")
        for label, secs in sorted(timer.incl.items(), key=lambda kv: -kv[1]):
            if secs / op_s < 0.003:
                continue
            print(f"  {label:<52} {secs / op_s * 100:8.1f}% {secs / n * 1000:9.3f} {timer.calls[label] / n:10.1f}")
        print("\n  repeated work, by caller:")
        for callee in REPEATED:
            edges = sorted(((p, s) for (p, c), s in timer.edge.items() if c == callee), key=lambda kv: -kv[1])
            if not edges:
                continue
            tot = timer.incl[callee]
            print(f"  {callee:<40} {tot / op_s * 100:5.1f}% {timer.calls[callee] / n:6.1f}/{unit}  <- "
                  + ", ".join(f"{p} {timer.edge_calls[(p, callee)] / n:.1f}× {s / op_s * 100:.1f}%"
                              for p, s in edges[:6]))
        print("\n  per use case: where each call's time goes (inclusive, share of that use case):")
        roots = sorted({r for r, lbl in timer.root if r == lbl}, key=lambda r: -timer.root[(r, r)])
        for r in roots:
            tot, calls = timer.root[(r, r)], timer.root_calls[(r, r)]
            if tot / op_s < 0.01 or not calls:
                continue
            parts = sorted(((lbl, v) for (rr, lbl), v in timer.root.items() if rr == r and lbl != r
                            and lbl in PER_USE_CASE), key=lambda kv: -kv[1])
            print(f"  {r} ({calls / n:.0f}×/{unit}, {tot / calls * 1000:.2f} ms/call, {tot / op_s * 100:.1f}% of {unit}):")
            print("      " + ", ".join(f"{lbl} {v / tot * 100:.0f}% ({timer.root_calls[(r, lbl)] / calls:.1f}×)"
                                     for lbl, v in parts[:9]))
        print(f"\n  SQL statement mix ({h.db.kind}, time inside cursor.execute only):")
        print(f"  {'statement shape':<72} {'per ' + unit:>9} {'ms/' + unit:>8} {'% of ' + unit:>8}")
        for shape, c in sorted(stm.count.items(), key=lambda kv: (-stm.secs.get(kv[0], 0.0), -kv[1])):
            secs = stm.secs.get(shape, 0.0)
            print(f"  {shape[:72]:<72} {c / n:9.2f} {secs / n * 1000:8.3f} {secs / op_s * 100:7.1f}%")
        entry["instrumented"] = {
            "ms_per_op": round(per, 3), "statements_per_op": round(n_stmt / n, 2),
            "sql_share": round(in_sql / op_s, 4),
            "functions": {k: {"share": round(v / op_s, 4), "ms_per_op": round(v / n * 1000, 3),
                              "calls_per_op": round(timer.calls[k] / n, 2)} for k, v in timer.incl.items()},
            "statements": {k: {"per_op": round(c / n, 2), "ms_per_op": round(stm.secs.get(k, 0.0) / n * 1000, 3)}
                           for k, c in stm.count.items()}}

        # 2. cProfile of the same scenario: self time anywhere, and the domain/ call tree.
        prof = cProfile.Profile()
        _timed_ops(h, name, n, prof.enable, prof.disable)
        path = out_dir / f"{h.db.kind}_{name}.prof"
        prof.dump_stats(str(path))
        stats = pstats.Stats(prof)
        total = stats.total_tt  # type: ignore[attr-defined]
        raw = stats.stats  # type: ignore[attr-defined]
        print(f"\n  cProfile ({total / n * 1000:.2f} ms/{unit} under the profiler) -> {path}")
        print(f"  top {top} by self time:")
        for (fname, line, fn), (_cc, nc, tt, ct, _callers) in sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]:
            print(f"  {tt / total * 100:5.1f}% self {ct / total * 100:5.1f}% cum {nc / n:8.1f}/{unit}  "
                  f"{_short(fname)}:{line}({fn})")
        print(f"  top {top} domain/ functions by cumulative time:")
        dom = [(k, v) for k, v in raw.items() if "/domain/" in k[0].replace("\\", "/")]
        for (fname, line, fn), (_cc, nc, _tt, ct, _callers) in sorted(dom, key=lambda kv: -kv[1][3])[:top]:
            print(f"  {ct / total * 100:5.1f}% cum {ct / n * 1000:8.3f} ms/{unit} {nc / n:6.1f}/{unit}  "
                  f"{_short(fname)}:{line}({fn})")
        entry["cprofile"] = str(path)
    return report


def _short(fname: str) -> str:
    f = fname.replace("\\", "/")
    for marker in ("/site-packages/", str(REPO).replace("\\", "/") + "/"):
        if marker in f:
            return f.split(marker, 1)[1]
    return f if len(f) < 60 else "…" + f[-58:]


# --------------------------------------------------------------------------------------------
# What-if: simulate proposed fixes in this process (monkeypatches; domain/ stays unchanged)
# --------------------------------------------------------------------------------------------
# Each factory gets the harness, keeps whatever state the fix would keep (a cache…) and returns
# `install(patches)`. Patches are installed only around each timed operation (so untimed set-up
# such as make_deal runs the real code), except the engine-level ones, which stay for the run.

class Patches:
    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set(self, owner, name: str, value) -> None:
        had_own = name in vars(owner)
        old = vars(owner)[name] if had_own else None
        setattr(owner, name, value)
        self._undo.append(lambda: setattr(owner, name, old) if had_own else delattr(owner, name))

    def on_undo(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


class _NotApplicable(Exception):
    pass


def _whatif_users_per_uow(h: Harness):
    """Memoise users.all() and users.managers() per unit of work (session), reset on users.add;
    users.get stays a by-id load (identity-map hit once all() ran). Fix: UserRepository."""
    from domain.db import repositories as r

    orig_all, orig_managers, orig_add = r.UserRepository.all, r.UserRepository.managers, r.UserRepository.add

    def all_(self):
        users = self.session.info.get("users_all")
        if users is None:
            users = self.session.info["users_all"] = orig_all(self)
        return list(users)

    def managers(self):
        m = self.session.info.get("users_managers")
        if m is None:
            users = self.session.info.get("users_all")
            m = {u.id: u.manager_id for u in users} if users is not None else orig_managers(self)
            self.session.info["users_managers"] = m
        return dict(m)

    def add(self, obj):
        self.session.info.pop("users_all", None)
        self.session.info.pop("users_managers", None)
        return orig_add(self, obj)

    def install(p: Patches) -> None:
        p.set(r.UserRepository, "all", all_)
        p.set(r.UserRepository, "managers", managers)
        p.set(r.UserRepository, "add", add)
    return install


def _whatif_users_process(h: Harness):
    """Upper bound: an in-process user directory (detached snapshots), invalidated on user writes;
    no user queries in steady state. Fix: a cached org directory behind UserRepository."""
    from domain.db import repositories as r

    orig_all, orig_add = r.UserRepository.all, r.UserRepository.add
    cache: dict = {}

    def directory(self) -> dict:
        if "d" not in cache:
            users = orig_all(self)
            for u in users:
                self.session.expunge(u)
            cache["d"] = {u.id: u for u in users}
        return cache["d"]

    def add(self, obj):
        cache.clear()
        return orig_add(self, obj)

    def install(p: Patches) -> None:
        p.set(r.UserRepository, "all", lambda self: list(directory(self).values()))
        p.set(r.UserRepository, "managers", lambda self: {u.id: u.manager_id for u in directory(self).values()})
        p.set(r.UserRepository, "get", lambda self, id_: directory(self).get(id_) if isinstance(id_, int) else None)
        p.set(r.UserRepository, "add", add)
    return install


def _outbox_insert(session, rows: list[dict]) -> None:
    from domain.db import tables as t

    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(t.outbox).on_conflict_do_nothing(index_elements=["key"]), rows)


def _outbox_row(obj) -> dict:
    return {"key": obj.key, "topic": obj.topic, "payload": obj.payload, "created_at": obj.created_at,
            "available_at": obj.available_at, "attempts": 0}


def _whatif_outbox_upsert(h: Harness):
    """One `INSERT … ON CONFLICT (key) DO NOTHING` per event instead of SELECT-by-key + ORM add +
    flush. Fix: OutboxRepository.add."""
    from domain.db import repositories as r

    def add(self, obj):
        _outbox_insert(self.session, [_outbox_row(obj)])
        return obj

    return lambda p: p.set(r.OutboxRepository, "add", add)


def _whatif_outbox_batch(h: Harness):
    """Buffer events in the unit of work; one multi-row `INSERT … ON CONFLICT DO NOTHING` right
    before commit. Fix: OutboxRepository.add + SqlAlchemyUnitOfWork.commit."""
    from domain.db import repositories as r

    orig_commit = SqlAlchemyUnitOfWork.commit

    def add(self, obj):
        self.session.info.setdefault("outbox_buf", {}).setdefault(obj.key, obj)
        return obj

    def commit(self):
        buf = self.session.info.pop("outbox_buf", None) if self.session is not None else None
        if buf:
            _outbox_insert(self.session, [_outbox_row(o) for o in buf.values()])
        return orig_commit(self)

    def install(p: Patches) -> None:
        p.set(r.OutboxRepository, "add", add)
        p.set(SqlAlchemyUnitOfWork, "commit", commit)
    return install


def _whatif_audit_no_flush(h: Harness):
    """audit() adds the row without a flush; the rows go out batched with the next flush/commit.
    Fix: AuditRepository.add = session.add only; the few callers that need entry.id
    (assign_lead, change_lead_status, assign_iron_triangle: event keys) flush explicitly."""
    from domain.db import repositories as r

    def add(self, obj):
        self.session.add(obj)
        return obj

    return lambda p: p.set(r.AuditRepository, "add", add)


def _whatif_lock_once(h: Harness):
    """decide_approval first loads the request with its selectin collections just to learn its
    subject, locks the deal, then reloads the request FOR UPDATE with populate_existing (the
    collections again). Fix (approvals.lock_request): read only (subject_type, subject_id) by id
    with one Core SELECT, lock the subject, then load the request once, FOR UPDATE.
    On a domain without lock_request: load it once FOR UPDATE instead of get + get_for_update."""
    from sqlalchemy import select

    from domain.db import repositories as r
    from domain.db import tables as t
    from domain.services import approvals

    orig_404 = approvals.get_or_404
    new_style = hasattr(approvals, "lock_request") and hasattr(approvals, "SUBJECT_LOCKS")

    def lock_request(uow, approval_id):
        row = None
        if isinstance(approval_id, int) and approval_id > 0:
            row = uow.session.execute(select(t.approval_requests.c.subject_type, t.approval_requests.c.subject_id)
                                      .where(t.approval_requests.c.id == approval_id)).first()
        if row is None:
            return orig_404(uow.approvals, approval_id, "Approval request")  # raises NotFound
        approvals.SUBJECT_LOCKS[row.subject_type](uow, row.subject_id)
        return uow.approvals.get_for_update(approval_id)

    def get_or_404(repo, id_, label, ref=None):
        if isinstance(repo, r.ApprovalRepository) and isinstance(id_, int) and id_ > 0:
            obj = repo.get_for_update(id_)
            if obj is not None:
                return obj
        return orig_404(repo, id_, label, ref)

    orig_gfu = r.SqlRepository.get_for_update

    def get_for_update(self, id_):  # never re-load a row this transaction already locked
        locked = self.session.info.setdefault("locked", {})
        if (self.model, id_) not in locked:
            locked[(self.model, id_)] = orig_gfu(self, id_)
        return locked[(self.model, id_)]

    def install(p: Patches) -> None:
        if new_style:
            p.set(approvals, "lock_request", lock_request)
        else:
            p.set(approvals, "get_or_404", get_or_404)
            p.set(r.SqlRepository, "get_for_update", get_for_update)
    return install


def _whatif_dedup_one_query(h: Harness):
    """find_duplicate runs one SELECT per identity (2 for a lead without phone, 3 with);
    one `WHERE email_norm = :e OR phone_norm = :p OR identity_norm = :i` does it in one trip.
    Fix: LeadRepository.find_duplicate (pick the reason in Python, same priority order)."""
    from sqlalchemy import or_, select

    from domain.db import repositories as r
    from domain.db import tables as t
    from domain.model.leads import Lead

    def find_duplicate(self, email_norm, phone_norm, identity_norm, *, exclude_id=None):
        checks = [(c, v, why) for c, v, why in ((t.leads.c.email_norm, email_norm, "same email"),
                                                (t.leads.c.phone_norm, phone_norm, "same phone"),
                                                (t.leads.c.identity_norm, identity_norm, "same company and contact"))
                  if v]
        if not checks:
            return None
        q = select(Lead).where(or_(*(c == v for c, v, _ in checks)))
        if exclude_id is not None:
            q = q.where(t.leads.c.id != exclude_id)
        found = list(self.session.scalars(q))
        for column, value, why in checks:
            for lead in found:
                if getattr(lead, column.key) == value:
                    return lead, why
        return None

    return lambda p: p.set(r.LeadRepository, "find_duplicate", find_duplicate)


def _whatif_policy_cache(h: Harness):
    """Gate policies and stage probabilities cached in-process (invalidated when an admin changes
    them). Fix: PolicyRepository.gates/stage_probabilities behind a versioned cache."""
    from domain.db import repositories as r

    orig_gates, orig_probs = r.PolicyRepository.gates, r.PolicyRepository.stage_probabilities
    cache: dict = {}

    def gates(self):
        if "g" not in cache:
            gs = orig_gates(self)
            for g in gs:
                self.session.expunge(g)
            cache["g"] = gs
        return list(cache["g"])

    def probs(self):
        if "p" not in cache:
            cache["p"] = orig_probs(self)
        return dict(cache["p"])

    def install(p: Patches) -> None:
        p.set(r.PolicyRepository, "gates", gates)
        p.set(r.PolicyRepository, "stage_probabilities", probs)
    return install


def _whatif_no_pre_ping(h: Harness):
    """No `SELECT 1` round trip on every pool checkout. Fix: domain/db/engine.py make_engine:
    pool_pre_ping=False plus pool_recycle (stale connections then fail once and are replaced)."""
    def install(p: Patches) -> None:
        pool = h.engine.pool
        old = pool._pre_ping
        pool._pre_ping = False
        p.on_undo(lambda: setattr(pool, "_pre_ping", old))
    return install


def _whatif_sqlite_sync_normal(h: Harness):
    """SQLite only: PRAGMA synchronous=NORMAL (safe with WAL: a power cut may lose the last
    commits but never corrupts). Fix: domain/db/engine.py _sqlite_pragmas."""
    if h.db.kind != "sqlite":
        raise _NotApplicable

    def set_sync(value) -> object:
        # Single-threaded runs reuse the one pooled connection; set it there (outside a transaction).
        raw = h.engine.raw_connection()
        try:
            old = raw.driver_connection.execute("PRAGMA synchronous").fetchone()[0]
            raw.driver_connection.execute(f"PRAGMA synchronous={value}")
            return old
        finally:
            raw.close()

    def install(p: Patches) -> None:
        old = set_sync("NORMAL")
        p.on_undo(lambda: set_sync(old))
    return install


WHAT_IFS: dict[str, Callable[[Harness], Callable[[Patches], None]]] = {
    "users_per_uow": _whatif_users_per_uow,
    "users_process": _whatif_users_process,
    "outbox_upsert": _whatif_outbox_upsert,
    "outbox_batch": _whatif_outbox_batch,
    "audit_no_flush": _whatif_audit_no_flush,
    "lock_once": _whatif_lock_once,
    "dedup_one_query": _whatif_dedup_one_query,
    "policy_cache": _whatif_policy_cache,
    "no_pre_ping": _whatif_no_pre_ping,
    "sqlite_sync_normal": _whatif_sqlite_sync_normal,
}
ENGINE_LEVEL = {"no_pre_ping", "sqlite_sync_normal"}
COMBINED = ["users_process", "outbox_batch", "audit_no_flush", "lock_once", "dedup_one_query", "policy_cache",
            "no_pre_ping", "sqlite_sync_normal"]


def what_if(h: Harness, n_leads: int, n_cycles: int) -> dict:
    """Baseline vs each simulated fix. Variants take turns op by op, in a freshly shuffled order each
    round, so load from other processes and database growth hit them all alike; per-op medians."""
    import random

    variants = ["baseline", *WHAT_IFS, "combined"]
    applicable: dict[str, list[tuple[str, Callable[[Patches], None]]]] = {}
    for v in variants:
        parts = [] if v == "baseline" else COMBINED if v == "combined" else [v]
        factories = []
        for part in parts:
            try:
                factories.append((part, WHAT_IFS[part](h)))
            except _NotApplicable:
                if v != "combined":
                    break
        else:
            applicable[v] = factories
    report: dict = {}
    rep = h.org.actor("rep")
    for i in h.next_ids(10):
        op_create_lead(h, i, rep)
    for name, n, batch in (("lead_create", n_leads, 1), ("gate_cycle", n_cycles, 1)):
        wall: defaultdict[str, list[float]] = defaultdict(list)
        cpu: defaultdict[str, list[float]] = defaultdict(list)
        queries: Counter[str] = Counter()
        rng = random.Random(42)
        for _round in range(max(1, -(-n // batch))):
            order = list(applicable)
            rng.shuffle(order)
            for v in order:
                factories = applicable[v]
                engine_p, op_p = Patches(), Patches()
                for part, install in factories:
                    if part in ENGINE_LEVEL:
                        install(engine_p)
                op_installs = [install for part, install in factories if part not in ENGINE_LEVEL]
                q = [0]

                def on(op_installs=op_installs, op_p=op_p, q=q):
                    for install in op_installs:
                        install(op_p)
                    q[0] -= h.counter.n

                def off(op_p=op_p, q=q):
                    q[0] += h.counter.n
                    op_p.undo()
                try:
                    samples = _timed_ops(h, name, batch, on, off)
                finally:
                    op_p.undo()
                    engine_p.undo()
                wall[v].extend(w for w, _c in samples)
                cpu[v].extend(c for _w, c in samples)
                queries[v] += q[0]
        unit = "op" if name == "lead_create" else "cycle"
        base_w = statistics.median(wall["baseline"])
        base_c = statistics.mean(cpu["baseline"])
        count = len(wall["baseline"])
        print(f"\n=== what-if on {h.db.kind} / {name} ({count} {unit}s per variant, interleaved; simulated "
              f"in-process, domain/ unchanged)")
        print(f"  {'variant':<20} {'p50 ms':>8} {'saves':>7} {'cpu ms':>8} {'saves':>7} {unit + 's/s':>9} "
              f"{'queries/' + unit:>12}")
        entry = {}
        for v in applicable:
            w = statistics.median(wall[v])
            c = statistics.mean(cpu[v])
            qn = queries[v] / len(wall[v])
            print(f"  {v:<20} {w * 1000:8.2f} {(base_w - w) / base_w * 100:6.1f}% {c * 1000:8.2f} "
                  f"{(base_c - c) / base_c * 100:6.1f}% {1 / w:9.1f} {qn:12.1f}")
            entry[v] = {"p50_ms": round(w * 1000, 3), "saves_pct": round((base_w - w) / base_w * 100, 1),
                        "cpu_ms": round(c * 1000, 3), "cpu_saves_pct": round((base_c - c) / base_c * 100, 1),
                        "queries_per_op": round(qn, 1)}
        print(f"  combined = {' + '.join(p for p, _ in applicable['combined'])}")
        print("  p50 ms = median wall time per op; cpu ms = mean client (this process) CPU per op")
        report[name] = entry
    return report


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

@dataclass
class Sizes:
    leads: int = 500
    convert: int = 200
    cycles: int = 50
    threads: int = 500

    @classmethod
    def parse(cls, spec: str) -> "Sizes":
        """`--n 300` scales all (leads=N, threaded=N, convert=N/2, cycles=N/10);
        `--n leads=1000,cycles=20` sets named sizes (others keep their defaults)."""
        spec = spec.strip()
        if re.fullmatch(r"\d+", spec):
            n = int(spec)
            return cls(leads=n, convert=max(1, n // 2), cycles=max(1, n // 10), threads=n)
        sizes = cls()
        for part in spec.split(","):
            key, _, value = part.partition("=")
            key = key.strip()
            if key not in cls.__dataclass_fields__ or not value.strip().isdigit():
                raise argparse.ArgumentTypeError(
                    f"bad --n part '{part}': use N or leads=,convert=,cycles=,threads= with integers")
            setattr(sizes, key, max(1, int(value)))
        return sizes


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)
    profiles: dict[str, dict] = field(default_factory=dict)
    what_if: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def bench_database(db: Database, sizes: Sizes, args, run: Run) -> None:
    print(f"\n[bench] {db.kind}: {db.label}", flush=True)
    t = time.perf_counter()
    h = Harness(db)
    print(f"[bench] {db.kind}: migrated + org built in {time.perf_counter() - t:.2f}s", flush=True)
    try:
        wanted = set() if args.skip_bench else set(args.scenarios)
        steps: list[tuple[str, Callable[[], Result]]] = []
        if "lead_create" in wanted:
            steps.append(("lead_create", lambda: run_lead_create(h, sizes.leads, args.warmup)))
        if "lead_create_2thr" in wanted and db.kind == "postgresql":
            steps.append(("lead_create_2thr",
                          lambda: run_lead_create_threads(h, sizes.threads, args.warmup, args.threads)))
        if "lead_convert" in wanted:
            steps.append(("lead_convert", lambda: run_lead_convert(h, sizes.convert, max(1, args.warmup // 2))))
        if "gate_cycle" in wanted:
            steps.append(("gate_cycle", lambda: run_gate_cycle(h, sizes.cycles, max(1, args.warmup // 5))))
        for name, fn in steps:
            gc.collect()
            res = fn()
            run.results.append(res)
            print(f"[bench] {db.kind}: {res.scenario:<18} n={res.n:<5} {res.ops_per_s:9.1f} {res.unit}s/s  "
                  f"p50 {res.pct(50):7.2f} ms  p95 {res.pct(95):7.2f} ms  {res.queries_per_op:5.1f} queries/{res.unit}",
                  flush=True)
        if args.profile:
            out = Path(args.profile_dir)
            out.mkdir(parents=True, exist_ok=True)
            run.profiles[db.kind] = profile_scenarios(h, args.profile_leads, args.profile_cycles, out, args.top)
        if args.what_if:
            run.what_if[db.kind] = what_if(h, args.profile_leads, args.profile_cycles)
    finally:
        h.close()
    run.rss[db.kind] = peak_rss_mb()


def print_table(run: Run) -> None:
    head = (f"{'database':<11} {'scenario':<18} {'n':>5} {'ops/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'max ms':>8} {'q/op':>6}  {'aim':<14} {'verdict'}")
    print("\n" + "=" * len(head) + "\nLTC core benchmark" + "\n" + "=" * len(head))
    print(head)
    print("-" * len(head))
    for r in run.results:
        aim = AIMS.get((r.db, r.scenario))
        aim_s = f"≥{aim:.0f} {r.unit}s/s" if aim else "-"
        verdict = "" if aim is None else ("MEETS" if r.ops_per_s >= aim else f"MISSES ({r.ops_per_s / aim * 100:.0f}% of aim)")
        name = r.scenario + (f" ×{r.threads}" if r.threads > 1 and "thr" not in r.scenario else "")
        print(f"{r.db:<11} {name:<18} {r.n:>5} {r.ops_per_s:>9.1f} {r.pct(50):>8.2f} {r.pct(95):>8.2f} "
              f"{max(r.durations) * 1000:>8.2f} {r.queries_per_op:>6.1f}  {aim_s:<14} {verdict}")
    print("-" * len(head))
    rss = ", ".join(f"after {k}: {v:.1f} MB" for k, v in run.rss.items())
    print(f"peak RSS (whole process, ru_maxrss): {peak_rss_mb():.1f} MB" + (f"  ({rss})" if rss else ""))
    print(f"load average now (1/5/15 min): {_load()} on {os.cpu_count()} CPUs; other work on the machine "
          f"slows these figures down")
    print("ops/s: sequential = n / summed op time; threaded = n / wall time. "
          "gate_cycle = builders.full_cycle (4 gates, 6 decisions, 15 units of work).")
    for note in run.notes:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=Sizes.parse, default=Sizes(),
                   help="sizes: N (leads=N, convert=N/2, cycles=N/10, threaded=N) or "
                        "leads=500,convert=200,cycles=50,threads=500 (the defaults)")
    p.add_argument("--only", choices=["sqlite", "postgresql"], help="run one database only")
    p.add_argument("--scenario", dest="scenarios", action="append", choices=SCENARIOS,
                   help="run only these scenarios (repeatable); default all")
    p.add_argument("--skip-bench", action="store_true", help="no throughput table (with --profile/--what-if)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up ops before each scenario (default 20)")
    p.add_argument("--threads", type=int, default=2, help="worker threads for the threaded variant (default 2)")
    p.add_argument("--pg-url", default=os.environ.get("LTC_TEST_PG_URL") or DEFAULT_PG_URL,
                   help="PostgreSQL server URL (default $LTC_TEST_PG_URL, else %(default)s); "
                        "only host/port/user are used: the bench creates and drops its own database")
    p.add_argument("--pg-db", default=f"ltc_bench_{os.getpid()}", help="throw-away database name")
    p.add_argument("--profile", action="store_true",
                   help="also break down lead creation and the gate cycle: instrumented timing, SQL mix, cProfile")
    p.add_argument("--what-if", action="store_true",
                   help="also time simulated fixes (in-process monkeypatches) against the baseline")
    p.add_argument("--profile-leads", type=int, default=300, help="lead creations per profile/what-if run")
    p.add_argument("--profile-cycles", type=int, default=20, help="gate cycles per profile/what-if run")
    p.add_argument("--profile-dir", default=str(Path(tempfile.gettempdir()) / "ltc_bench_profiles"))
    p.add_argument("--top", type=int, default=20, help="rows in the profile listings")
    p.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    p.add_argument("--strict", action="store_true", help="exit 1 when a PostgreSQL aim is missed")
    args = p.parse_args(argv)
    args.scenarios = args.scenarios or list(SCENARIOS)
    if args.threads < 2:
        p.error("--threads must be at least 2")

    sizes: Sizes = args.n
    run = Run()
    print(f"[bench] python {platform.python_version()}, {os.cpu_count()} CPUs, load average {_load()}, "
          f"sizes {sizes}, warm-up {args.warmup}", flush=True)

    if args.only in (None, "sqlite"):
        with sqlite_database() as db:
            bench_database(db, sizes, args, run)

    if args.only in (None, "postgresql"):
        err = pg_reachable(args.pg_url)
        if err is not None:
            msg = f"PostgreSQL at {make_url(args.pg_url).render_as_string()} unreachable ({err}); skipped"
            if args.only == "postgresql":
                print(f"[bench] ERROR: {msg}", file=sys.stderr)
                return 2
            run.notes.append(msg)
        else:
            with postgres_database(args.pg_url, args.pg_db) as db:
                bench_database(db, sizes, args, run)

    print_table(run)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "sizes": sizes.__dict__, "results": [r.as_dict() for r in run.results],
            "peak_rss_mb": round(peak_rss_mb(), 1), "load_average": _load(), "profiles": run.profiles, "what_if": run.what_if, "notes": run.notes,
        }, indent=2))
        print(f"[bench] wrote {args.json_path}")
    missed = [r for r in run.results if (a := AIMS.get((r.db, r.scenario))) and r.ops_per_s < a]
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
