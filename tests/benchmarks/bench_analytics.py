#!/usr/bin/env python
"""Latency of the analytics questions on a large PostgreSQL dataset (never part of CI).

    bash scripts/bench.sh analytics                       # 1M deals, 20 runs, rep / manager / vp
    .venv/bin/python tests/benchmarks/bench_analytics.py --n 100000 --runs 10
    .venv/bin/python tests/benchmarks/bench_analytics.py --only pipeline_product,cycle_time --askers vp
    .venv/bin/python tests/benchmarks/bench_analytics.py --json results.json      # or --json - (stdout)
    .venv/bin/python tests/benchmarks/bench_analytics.py --explain cycle_time:vp   # EXPLAIN ANALYZE its SQL

The server: --url, else LTC_TEST_PG_URL, else DATABASE_URL (when PostgreSQL), else the local test
cluster (`bash scripts/pg.sh start`). The dataset lives in its own database on that server
(--db, default ltc_bench_1m for 1,000,000 deals, ltc_bench_100k …): generated once by
tests/benchmarks/datagen.py and reused while its `ltc_datagen` marker matches N, seed, users, today
and the generator version (--regen forces a fresh one). Migrations run on it every time, so new
indexes are built on the existing rows.

Each question is asked exactly as the product asks it — `with uow_factory() as uow:
an.<service>(..., actor=Actor(user_id), uow=uow)`, the clock fixed at the dataset's "today" noon —
by three askers: a rep (the median book), a sales manager of ~10 reps, and the VP (a director whose
reporting subtree is everyone: the widest scope through the RBAC path); `--askers` adds director
(one region) and admin (no owner filter). Per question and asker: 2 warm-ups, then R timed runs
(the whole unit of work); p50 / p95, statements per call. The floor is `SELECT count(*) FROM
opportunities` through the same unit of work, timed the same way. Aim: p95 ≤ 300 ms and ≤ 3 × the
floor's p95. Memory: peak RSS (getrusage) and the tracemalloc peak over one pass of every question
for every asker (and per question in --json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from domain.actor import Actor  # noqa: E402
from tests.benchmarks.bench_core import percentile  # noqa: E402
from domain.db.engine import make_engine  # noqa: E402
from domain.db.migrate import upgrade  # noqa: E402
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory  # noqa: E402
from tests.benchmarks import datagen  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:54329/ltc_test"
AIM_MS, AIM_FLOOR_RATIO = 300.0, 3.0
FLOOR_SQL = "SELECT count(*) FROM opportunities"

# (key, service, keyword arguments): every standard question of domain/analytics/DEFINITIONS.md.
QUESTIONS: list[tuple[str, str, dict]] = [
    ("pipeline_stage", "pipeline", {"by": "stage"}),
    ("pipeline_owner", "pipeline", {"by": "owner"}),
    ("pipeline_team", "pipeline", {"by": "team"}),
    ("pipeline_region", "pipeline", {"by": "region"}),
    ("pipeline_product", "pipeline", {"by": "product"}),
    ("pipeline_quarter", "pipeline", {"by": "quarter"}),
    ("pipeline_stage_qtr", "pipeline", {"by": "stage", "period": "this_quarter"}),
    ("forecast", "forecast", {"period": "this_quarter"}),
    ("win_rate", "win_rate", {"by": "none", "period": "this_year"}),
    ("win_rate_region", "win_rate", {"by": "region", "period": "this_year"}),
    ("cycle_time", "cycle_time", {"period": "this_quarter"}),
    ("funnel", "funnel", {"period": "this_quarter"}),
    ("stuck_deals", "stuck_deals", {"days": 30, "limit": 20}),
    ("top_deals", "top_deals", {"period": "this_month", "limit": 5}),
    ("gate_throughput", "gate_throughput", {"period": "this_quarter"}),
    ("aging", "aging", {}),
    ("collection_rate", "collection_rate", {"period": "this_quarter"}),
    ("reconciliation", "reconciliation", {"period": "this_quarter"}),
    ("period_over_period", "period_over_period", {"period": "this_quarter"}),
]
ASKERS = ("rep", "manager", "vp", "director", "admin")


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / (1024.0 * 1024.0)


def say(msg: str) -> None:
    print(f"[bench-analytics] {msg}", file=sys.stderr, flush=True)


def short_n(n: int) -> str:
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------

def server_url(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("LTC_TEST_PG_URL"):
        return os.environ["LTC_TEST_PG_URL"]
    db = os.environ.get("DATABASE_URL", "")
    if db.startswith("postgres"):
        return db
    return DEFAULT_PG_URL


def ensure_dataset(base_url: str, name: str, cfg: datagen.Config, regen: bool) -> tuple[str, dict]:
    """The URL of a database holding exactly cfg's dataset (generated when missing or different)."""
    base = make_url(base_url)
    if base.get_backend_name() != "postgresql":
        raise SystemExit("bench_analytics needs PostgreSQL (the dataset is too large for SQLite)")
    url = base.set(database=name).render_as_string(hide_password=False)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    quoted = '"' + name.replace('"', '""') + '"'
    try:
        with admin.connect() as c:
            exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        marker = datagen.read_marker(url) if exists else None
        wanted = cfg.marker()
        if marker and not regen and {k: marker.get(k) for k in wanted} == wanted:
            say(f"reusing {name}: {marker['opportunities']:,} deals, seed {marker['seed']} "
                f"(generated in {marker.get('seconds', '?')} s)")
            return url, marker
        with admin.connect() as c:
            if exists:
                say(f"{name} holds {'another dataset' if marker else 'no marked dataset'}: recreating it")
                c.execute(text(f"DROP DATABASE {quoted} WITH (FORCE)"))
            c.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    say(f"generating {cfg.opportunities:,} deals into {name} (seed {cfg.seed})")
    info = datagen.generate(url, cfg)
    return url, info


# --------------------------------------------------------------------------------------------
# Askers and the timed calls
# --------------------------------------------------------------------------------------------

@dataclass
class Asker:
    key: str
    user_id: int
    label: str
    owners: int  # how many deal owners are in the asker's scope (incl. themself)
    deals: int  # deals those owners own


def find_askers(engine, wanted: list[str]) -> dict[str, Asker]:
    """rep: the median book; manager: the team closest to 10 reps; vp / director / admin by email."""
    out: dict[str, Asker] = {}
    with engine.connect() as c:
        deals = dict(c.execute(text("SELECT owner_id, count(*) FROM opportunities GROUP BY owner_id")).all())
        managers = dict(c.execute(text("SELECT id, manager_id FROM users")).all())
        email = dict(c.execute(text("SELECT email, id FROM users")).all())
        roles = c.execute(text("SELECT user_id, role FROM user_roles")).all()
    total = sum(deals.values())

    def subtree(uid: int) -> set[int]:
        seen, stack = {uid}, [uid]
        while stack:
            top = stack.pop()
            for child, boss in managers.items():
                if boss == top and child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    reps = sorted((deals.get(uid, 0), uid) for uid, role in roles if role == "sales_rep")
    mgrs = [uid for uid, role in roles if role == "sales_manager"]
    for key in wanted:
        if key == "rep":
            n, uid = reps[len(reps) // 2]
            out[key] = Asker(key, uid, "sales rep (median book)", 1, n)
            continue
        if key == "manager":
            uid = min(mgrs, key=lambda m: (abs(len(subtree(m)) - 11), m))
        elif key in ("vp", "director", "admin"):
            uid = email[{"vp": "vp", "director": "director0", "admin": "admin0"}[key] + "@ltc-bench.example"]
        else:
            raise SystemExit(f"unknown asker {key!r}: choose from {', '.join(ASKERS)}")
        tree = subtree(uid)
        owners = len(tree & set(deals)) if key != "admin" else len(deals)
        n = total if key == "admin" else sum(deals.get(x, 0) for x in tree)
        label = {"manager": f"sales manager ({len(tree) - 1} reports)", "vp": "VP (director over everyone)",
                 "director": "regional director", "admin": "admin (sees all)"}[key]
        out[key] = Asker(key, uid, label, owners, n)
    return out


class Counter:
    """Statements sent on the engine (the bench is single-threaded)."""

    def __init__(self, engine) -> None:
        self.n = 0
        self.statements: list[tuple[str, object]] | None = None
        event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, _conn, _cur, statement, parameters, _ctx, _many) -> None:
        self.n += 1
        if self.statements is not None:
            self.statements.append((statement, parameters))


@dataclass
class Timing:
    question: str
    asker: str
    durations: list[float] = field(default_factory=list)
    queries: int = 0
    error: str | None = None
    tracemalloc_kb: float | None = None

    def p(self, pct: float) -> float:
        return percentile(self.durations, pct) * 1000.0


class Bench:
    def __init__(self, url: str, today: date, settings: dict[str, str] | None = None) -> None:
        self.engine = make_engine(url)
        if settings:  # server settings per connection, to try planner knobs without touching the server
            @event.listens_for(self.engine, "connect")
            def _set(dbapi_connection, _record) -> None:
                with dbapi_connection.cursor() as cur:
                    for k, v in settings.items():
                        cur.execute("SELECT set_config(%s, %s, false)", (k, v))
                dbapi_connection.commit()
        self.sf = session_factory(self.engine)
        self.now = datetime.combine(today, dtime(12, 0))
        self.counter = Counter(self.engine)
        from domain import analytics

        self.an = analytics

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.sf, clock=lambda: self.now)

    def call(self, service: str, kwargs: dict, user_id: int | None) -> Callable[[], object]:
        if service == "__floor__":
            def floor() -> object:
                with self.uow() as uow:
                    return uow.session.execute(text(FLOOR_SQL)).scalar_one()
            return floor
        fn = getattr(self.an, service)
        actor = Actor(user_id=user_id)

        def ask() -> object:
            with self.uow() as uow:
                return fn(**kwargs, actor=actor, uow=uow)
        return ask

    def time(self, key: str, asker: str, fn: Callable[[], object], runs: int, warmup: int) -> Timing:
        res = Timing(key, asker)
        try:
            for _ in range(warmup):
                fn()
            q0 = self.counter.n
            for _ in range(runs):
                s = time.perf_counter()
                fn()
                res.durations.append(time.perf_counter() - s)
            res.queries = round((self.counter.n - q0) / max(runs, 1))
        except Exception as e:  # noqa: BLE001 - one broken question must not hide the others
            res.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return res

    def explain(self, service: str, kwargs: dict, user_id: int) -> None:
        """Run the question once, then EXPLAIN (ANALYZE, BUFFERS) every statement it sent."""
        self.counter.statements = []
        self.call(service, kwargs, user_id)()
        captured, self.counter.statements = self.counter.statements, None
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            for k, (stmt, params) in enumerate(captured, start=1):
                print(f"\n-- statement {k}/{len(captured)} " + "-" * 60)
                print(stmt if not params else f"{stmt}\n-- params: {params}")
                if not stmt.lstrip().upper().startswith("SELECT"):
                    continue
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + stmt, params or None)
                print("\n".join(r[0] for r in cur.fetchall()))
            raw.rollback()
        finally:
            raw.close()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def verdict(t: Timing, floor_p95: float) -> tuple[float | None, bool | None]:
    if t.error or not t.durations:
        return None, None
    ratio = t.p(95) / floor_p95 if floor_p95 > 0 else None
    return ratio, t.p(95) <= AIM_MS and (ratio is None or ratio <= AIM_FLOOR_RATIO)


def print_table(results: list[Timing], floors: dict[str, Timing], askers: dict[str, Asker]) -> None:
    head = f"{'question':<22}{'asker':<10}{'p50 ms':>9}{'p95 ms':>9}{'floor p95':>11}{'×floor':>8}{'sql':>5}  aim"
    print(head)
    print("-" * len(head))
    last = None
    for t in results:
        if last is not None and t.question != last:
            pass
        last = t.question
        fl = floors[t.asker].p(95)
        if t.error:
            print(f"{t.question:<22}{t.asker:<10}  {t.error[:80]}")
            continue
        ratio, ok = verdict(t, fl)
        print(f"{t.question:<22}{t.asker:<10}{t.p(50):>9.1f}{t.p(95):>9.1f}{fl:>11.1f}"
              f"{ratio:>8.2f}{t.queries:>5}  {'ok' if ok else 'MISS'}")
    misses = [t for t in results if not t.error and not verdict(t, floors[t.asker].p(95))[1]]
    errors = [t for t in results if t.error]
    print("-" * len(head))
    print(f"{len(results) - len(misses) - len(errors)}/{len(results)} within the aim "
          f"(p95 ≤ {AIM_MS:.0f} ms and ≤ {AIM_FLOOR_RATIO:g}× the floor's p95)"
          + (f"; {len(errors)} failed" if errors else ""))
    print("askers: " + "; ".join(f"{a.key} = user {a.user_id}, {a.label}, {a.deals:,} deals in scope"
                                for a in askers.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="opportunities in the dataset")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 22))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--askers", default="rep,manager,vp", help=f"comma list of {', '.join(ASKERS)}")
    ap.add_argument("--only", default="", help="comma list of question keys (default: all)")
    ap.add_argument("--url", help="server URL (any database on it); default LTC_TEST_PG_URL / DATABASE_URL")
    ap.add_argument("--db", help="dataset database name (default ltc_bench_<n>)")
    ap.add_argument("--regen", action="store_true", help="generate the dataset again even if it matches")
    ap.add_argument("--json", nargs="?", const="-", help="write results as JSON to a file (or - for stdout)")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--no-migrate", action="store_true", help="leave the dataset's schema as it is")
    ap.add_argument("--pg-set", default="", metavar="K=V,...",
                    help="session settings for every connection, e.g. random_page_cost=1.1,jit=off")
    ap.add_argument("--explain", metavar="QUESTION[:ASKER]", help="EXPLAIN ANALYZE the SQL of one question")
    a = ap.parse_args(argv)

    cfg = datagen.Config(opportunities=a.n, seed=a.seed, users=a.users, today=a.today)
    url, info = ensure_dataset(server_url(a.url), a.db or f"ltc_bench_{short_n(a.n)}", cfg, a.regen)
    t0 = time.perf_counter()
    if not a.no_migrate:
        upgrade(url)
    if time.perf_counter() - t0 > 5:
        say(f"migrations applied ({time.perf_counter() - t0:.1f} s)")
    settings = dict(kv.split("=", 1) for kv in a.pg_set.split(",") if kv.strip())
    bench = Bench(url, a.today, settings)
    askers = find_askers(bench.engine, [k.strip() for k in a.askers.split(",") if k.strip()])
    only = {k.strip() for k in a.only.split(",") if k.strip()}
    unknown = only - {k for k, _, _ in QUESTIONS}
    if unknown:
        raise SystemExit(f"unknown question(s): {', '.join(sorted(unknown))}")
    questions = [(k, s, kw) for k, s, kw in QUESTIONS if not only or k in only]
    missing = [k for k, s, _ in questions if not hasattr(bench.an, s)]
    if missing:
        say(f"not built yet, skipped: {', '.join(missing)}")
    questions = [q for q in questions if q[0] not in missing]

    if a.explain:
        key, _, who = a.explain.partition(":")
        found = [q for q in QUESTIONS if q[0] == key]
        if not found:
            raise SystemExit(f"unknown question {key!r}")
        who = who or "vp"
        asker = askers.get(who) or find_askers(bench.engine, [who])[who]
        bench.explain(found[0][1], found[0][2], asker.user_id)
        return 0

    say(f"{len(questions)} questions × {len(askers)} askers × ({a.warmup} warm-up + {a.runs} runs)")
    floors: dict[str, Timing] = {}
    floor = bench.time("floor", "-", bench.call("__floor__", {}, None), a.runs, a.warmup)
    for k in askers:
        floors[k] = floor
    say(f"floor ({FLOOR_SQL}): p50 {floor.p(50):.1f} ms, p95 {floor.p(95):.1f} ms")
    results: list[Timing] = []
    t_run = time.perf_counter()
    for key, service, kwargs in questions:
        for asker in askers.values():
            r = bench.time(key, asker.key, bench.call(service, kwargs, asker.user_id), a.runs, a.warmup)
            results.append(r)
            say(f"{key:<22}{asker.key:<9}" + (r.error or f"p50 {r.p(50):8.1f} ms  p95 {r.p(95):8.1f} ms"))
    floor_after = bench.time("floor", "-", bench.call("__floor__", {}, None), a.runs, a.warmup)
    say(f"floor again after the questions: p50 {floor_after.p(50):.1f} ms, p95 {floor_after.p(95):.1f} ms "
        f"({time.perf_counter() - t_run:.0f} s of questions)")

    memory: dict = {"peak_rss_mb_before_tracemalloc": round(peak_rss_mb(), 1)}
    if not a.no_memory:
        tracemalloc.start()
        for key, service, kwargs in questions:
            for asker in askers.values():
                tracemalloc.reset_peak()
                try:
                    bench.call(service, kwargs, asker.user_id)()
                except Exception:  # noqa: BLE001 - reported in the timings already
                    continue
                peak = tracemalloc.get_traced_memory()[1] / 1024
                for r in results:
                    if r.question == key and r.asker == asker.key:
                        r.tracemalloc_kb = round(peak, 1)
        tracemalloc.stop()
        memory["tracemalloc_peak_kb_one_question_max"] = max(
            (r.tracemalloc_kb or 0 for r in results), default=0)
    memory["peak_rss_mb"] = round(peak_rss_mb(), 1)

    print()
    print(f"Analytics on PostgreSQL: {info['opportunities']:,} opportunities (seed {info['seed']}, "
          f"{sum(info['rows'].values()):,} rows), {a.runs} runs after {a.warmup} warm-ups, today {a.today}, "
          f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}"
          + (f", session settings {a.pg_set}" if settings else ""))
    print_table(results, floors, askers)
    print(f"floor: {FLOOR_SQL}: p50 {floor.p(50):.1f} / p95 {floor.p(95):.1f} ms (after: "
          f"{floor_after.p(50):.1f} / {floor_after.p(95):.1f} ms)")
    print("memory: peak RSS {peak_rss_mb} MB".format(**memory)
          + (f"; tracemalloc peak of the largest single question {memory['tracemalloc_peak_kb_one_question_max']:,.0f} KB"
             if "tracemalloc_peak_kb_one_question_max" in memory else ""))

    if a.json:
        doc = {
            "dataset": info, "settings": settings, "runs": a.runs, "warmup": a.warmup, "aim": {"p95_ms": AIM_MS, "x_floor": AIM_FLOOR_RATIO},
            "floor": {"sql": FLOOR_SQL, "p50_ms": round(floor.p(50), 2), "p95_ms": round(floor.p(95), 2),
                      "after_p50_ms": round(floor_after.p(50), 2), "after_p95_ms": round(floor_after.p(95), 2)},
            "askers": {k: vars(v) for k, v in askers.items()},
            "results": [{"question": r.question, "asker": r.asker, "error": r.error,
                         "p50_ms": None if r.error else round(r.p(50), 2),
                         "p95_ms": None if r.error else round(r.p(95), 2),
                         "max_ms": None if r.error else round(max(r.durations) * 1000, 2),
                         "statements": r.queries, "tracemalloc_peak_kb": r.tracemalloc_kb,
                         "x_floor": None if r.error else round(verdict(r, floor.p(95))[0] or 0, 2),
                         "meets_aim": verdict(r, floor.p(95))[1]} for r in results],
            "memory": memory,
            "env": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                    "load": "/".join(f"{x:.2f}" for x in os.getloadavg())},
        }
        text_ = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
        if a.json == "-":
            print(text_)
        else:
            Path(a.json).write_text(text_ + "\n")
            say(f"JSON written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
