#!/usr/bin/env python
"""Core throughput benchmarks for LTC Copilot, on SQLite and PostgreSQL.

A script, not a pytest module (pyproject excludes tests/benchmarks). `scripts/bench.sh` runs
it with LTC_TEST_PG_URL exported; by hand:

    .venv/bin/python tests/benchmarks/bench_core.py                  # both databases
    .venv/bin/python tests/benchmarks/bench_core.py --only sqlite --n 200
    .venv/bin/python tests/benchmarks/bench_core.py --n leads=2000,cycles=100
    .venv/bin/python tests/benchmarks/bench_core.py --only postgresql --profile

For each database it migrates a fresh one (a temp SQLite file; a throw-away PostgreSQL
database that it creates and drops), builds the standard org (tests/builders.build_org) and
drives everything through the services, one unit of work per use case:

  lead_create        create_lead as `rep`, unique emails, one uow each (timed: the whole uow)
  lead_create_2thr   PostgreSQL only: the same from 2 worker threads sharing one engine
  lead_convert       create + qualify + convert, each in its own uow; only convert is timed
  gate_cycle         builders.full_cycle (ATI → solution review → ATB → ATC, with the quote sent and
                     accepted and the contract drafted for ATC: 16 uows) on a
                     fresh deal from builders.make_deal; deal creation is not timed
  lead_to_cash       builders.lead_to_cash: gates, a 25 % quote approved by director + finance,
                     contract signed by ATC, order, delivery and final acceptance, 3 invoices,
                     3 payments (one proposed then confirmed, one overpaying), reconciliation,
                     close, incentive split (~45 uows); deal creation is not timed

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
SCENARIOS = ("lead_create", "lead_create_2thr", "lead_convert", "gate_cycle", "lead_to_cash")


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
        try:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        except Exception as e:  # noqa: BLE001 - e.g. the server was restarted under us; say so, don't mask
            print(f"[bench] WARNING: could not drop database {name}: {type(e).__name__}: "
                  f"{str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
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


def _run_deal_flow(h: Harness, scenario: str, unit: str, flow: Callable, n: int, warmup: int, prefix: str,
                   around_op: Callable | None = None) -> Result:
    """Time `flow(uow_factory, org, opp_id)` on fresh deals; making the deal is not timed."""
    for i in h.next_ids(warmup):
        flow(h.uow, h.org, builders.make_deal(h.uow, h.org, n=i, prefix=f"w{prefix}"))
    durations: list[float] = []
    queries = 0
    t0 = time.perf_counter()
    for i in h.next_ids(n):
        opp_id = builders.make_deal(h.uow, h.org, n=i, prefix=prefix)
        q0 = h.counter.n
        s = time.perf_counter()
        if around_op is None:
            flow(h.uow, h.org, opp_id)
        else:
            around_op(lambda: flow(h.uow, h.org, opp_id))
        durations.append(time.perf_counter() - s)
        queries += h.counter.n - q0
    return Result(h.db.kind, scenario, n, time.perf_counter() - t0, durations, queries, unit=unit)


def run_gate_cycle(h: Harness, n: int, warmup: int, *, around_op: Callable | None = None) -> Result:
    """`around_op(fn)` lets the profiler wrap only the timed part."""
    return _run_deal_flow(h, "gate_cycle", "cycle", builders.full_cycle, n, warmup, "g", around_op)


def run_lead_to_cash(h: Harness, n: int, warmup: int) -> Result:
    builders.seed_catalog(h.uow, h.org)
    return _run_deal_flow(h, "lead_to_cash", "flow", builders.lead_to_cash, n, warmup, "l2c")


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
        if "lead_to_cash" in wanted:
            steps.append(("lead_to_cash", lambda: run_lead_to_cash(h, sizes.cycles, max(1, args.warmup // 5))))
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
          "gate_cycle = builders.full_cycle (4 gates, 6 decisions, contract for ATC: 16 units of work); "
          "lead_to_cash = builders.lead_to_cash (~45 units of work).")
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
    p.add_argument("--skip-bench", action="store_true", help="no throughput table (with --profile)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up ops before each scenario (default 20)")
    p.add_argument("--threads", type=int, default=2, help="worker threads for the threaded variant (default 2)")
    p.add_argument("--pg-url", default=os.environ.get("LTC_TEST_PG_URL") or DEFAULT_PG_URL,
                   help="PostgreSQL server URL (default $LTC_TEST_PG_URL, else %(default)s); "
                        "only host/port/user are used: the bench creates and drops its own database")
    p.add_argument("--pg-db", default=f"ltc_bench_{os.getpid()}", help="throw-away database name")
    p.add_argument("--profile", action="store_true",
                   help="also break down lead creation and the gate cycle: instrumented timing, SQL mix, cProfile")
    p.add_argument("--profile-leads", type=int, default=300, help="lead creations per profile run")
    p.add_argument("--profile-cycles", type=int, default=20, help="gate cycles per profile run")
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
            "peak_rss_mb": round(peak_rss_mb(), 1), "load_average": _load(), "profiles": run.profiles, "notes": run.notes,
        }, indent=2))
        print(f"[bench] wrote {args.json_path}")
    missed = [r for r in run.results if (a := AIMS.get((r.db, r.scenario))) and r.ops_per_s < a]
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
