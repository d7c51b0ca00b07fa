#!/usr/bin/env python
"""The Slack HTTP endpoint under load: signed `app_mention` events through the real FastAPI + Bolt stack.

    .venv/bin/python -m tests.benchmarks.bench_slack [--events 500 --concurrency 50 --retry-share 0.1]
    .venv/bin/python -m tests.benchmarks.bench_slack --pg postgresql+psycopg://postgres@127.0.0.1:54329/ltc_test
    .venv/bin/python -m tests.benchmarks.bench_slack --rate 20      # paced: 20 events/s instead of flat out
    .venv/bin/python -m tests.benchmarks.bench_slack --profile      # where the server's threads spend time

Two processes, as in production. This one is LTC Copilot: a migrated SQLite file (or, with --pg, a
throw-away PostgreSQL database) holding the builders org and a few deals, the offline command
model, and `bot.server.create_server(app, bolt)` under uvicorn on a free loopback port. A child
process is "Slack": the mock Web API (tests/bot/slack_mock.py) and the load generator, so the
client's CPU does not compete with the server for its GIL.

Slack sends every event once (distinct event_ids; a mix of lead creation, deal lists, approvals,
overdue lists, help and phrases the offline model does not know, in English and Chinese, from
six users, one of them known only by the email of their Slack profile), `--concurrency` requests
in flight; a share of the events is sent again with `X-Slack-Retry-Num` right after its ack, as
Slack does when an ack was late; and a share of the requests are Cancel clicks (`block_actions`)
on stale proposals, which people do while others chat: their listener is not auto-acked. It prints:

  ack latency       HTTP response time (what Slack's 3 s timeout measures): all requests, then
                    first deliveries, retries and clicks; plus Bolt's dispatch alone (wall, CPU)
  end-to-end        first send → the mock receives the answer in the thread: chat.postMessage
                    with thread_ts = the event's ts (mentions), chat.postEphemeral (clicks)
  replies           answers per event: missing and duplicates (aim: 0 duplicates)
  throughput        requests acked per second; replies per second (first send → last reply)
  server            slack_events rows, leads created, retries skipped, log warnings/errors

Aim: p99 ack < 100 ms. A few warm-up events (Bolt's auth.test, first imports) are not counted.
Not part of CI.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import pstats
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.benchmarks.bench_core import percentile, postgres_database  # noqa: E402

SECRET = "bench-signing-secret"
CHANNELS = ("C0SALES", "C0EAST", "C0DEALS")
# Slack user → builders key; rep2 has no stored Slack id: found by the email of the Slack profile.
SLACK_IDS = {"U0REP": "rep", "U0MGR": "manager", "U0DIR": "director", "U0FIN": "finance", "U0REPW": "rep_w"}
BY_EMAIL = {"U0REP2": "rep2"}
# (weight, Slack user, text): {i} makes created leads unique. "my leads" / "我的线索" are what
# people type; the offline model answers them with its command list (they still get a reply).
MIX = [
    (14, "U0REP", "new lead Bench Robotics {i} from trade show, contact Li Wei, budget 2M"),
    (8, "U0REP2", "新线索 基准电力{i} 来源 展会 联系人 王芳"),
    (4, "U0REPW", "new lead Westwind Mining {i} from referral, contact Ana Ruiz"),
    (12, "U0REP", "my deals"),
    (8, "U0REP2", "我的商机"),
    (8, "U0MGR", "pipeline"),
    (8, "U0REP", "my leads"),
    (6, "U0REP2", "我的线索"),
    (8, "U0MGR", "my approvals"),
    (4, "U0DIR", "我的待审批"),
    (6, "U0FIN", "overdue"),
    (4, "U0REP", "find Customer"),
    (5, "U0REPW", "help"),
    (5, "U0REP2", "帮助"),
]


@dataclass(frozen=True)
class Planned:
    event_id: str
    ts: str  # the message's ts: the thread the answer must land in
    channel: str
    user: str
    text: str
    retries: int = 0  # extra deliveries with X-Slack-Retry-Num 1..retries
    click: bool = False  # a Cancel click on a stale proposal instead of a mention
    warmup: bool = False

    @property
    def creates_lead(self) -> bool:
        return not self.click and self.text.startswith(("new lead", "新线索"))


def plan(n: int, warmup: int, retry_share: float, click_share: float, seed: int) -> list[Planned]:
    rnd = random.Random(seed)
    weights, users, texts = zip(*MIX)
    out = []
    for i in range(warmup + n):
        ts, channel = f"{1700000000 + i}.{i % 1000000:06d}", rnd.choice(CHANNELS)
        if i >= warmup and rnd.random() < click_share:
            out.append(Planned(f"Click{i:05d}", ts, channel, "U0REP", f"stale-token-{i}", click=True))
            continue
        k = rnd.choices(range(len(MIX)), weights=weights)[0]
        retries = 0 if i < warmup or rnd.random() >= retry_share else rnd.choice((1, 1, 2))
        out.append(Planned(f"EvBench{i:05d}", ts, channel, users[k], texts[k].format(i=i), retries,
                           warmup=i < warmup))
    return out


def request(e: Planned, retry: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers Slack would send, signed now."""
    if e.click:
        payload = {"type": "block_actions", "team": {"id": "T0LTC"}, "user": {"id": e.user}, "api_app_id": "A0LTC",
                   "token": "x", "trigger_id": "1.2.3", "channel": {"id": e.channel},
                   "container": {"type": "message", "message_ts": e.ts, "channel_id": e.channel},
                   "message": {"type": "message", "ts": e.ts, "thread_ts": e.ts, "text": "..."},
                   "actions": [{"type": "button", "action_id": "ltc_cancel", "block_id": "b", "value": e.text,
                                "action_ts": str(time.time())}]}
        body, kind = urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    else:
        body = json.dumps({"token": "x", "team_id": "T0LTC", "api_app_id": "A0LTC", "type": "event_callback",
                           "event_id": e.event_id, "event_time": int(time.time()),
                           "event": {"type": "app_mention", "user": e.user, "text": f"<@U0BOT> {e.text}",
                                     "ts": e.ts, "event_ts": e.ts, "channel": e.channel}}, ensure_ascii=False)
        kind = "application/json"
    headers = {"Content-Type": kind, **_sign(body)}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return body.encode(), headers


def _sign(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}


# ============================================================================================
# The Slack side (child process): mock Web API + load generator
# ============================================================================================

def slack_side(conn, events: list[Planned], concurrency: int, rate: float, timeout: float, settle: float) -> None:
    from tests.bot.slack_mock import SlackMock

    class TimedSlackMock(SlackMock):
        """Also notes when each threaded reply arrives (same clock as the sender: this process)."""

        def __init__(self, users):
            super().__init__(users=users)
            self.replies: dict[str, list[float]] = defaultdict(list)

        def _answer(self, method, args, ts):
            if method in ("chat.postMessage", "chat.postEphemeral") and args.get("thread_ts"):
                at = time.perf_counter()
                with self._lock:
                    self.replies[args["thread_ts"]].append(at)
            return super()._answer(method, args, ts)

    users = {sid: f"{key}@example.com" for sid, key in {**SLACK_IDS, **BY_EMAIL}.items()}
    with TimedSlackMock(users) as mock:
        conn.send(("mock", mock.port))
        server_port = conn.recv()
        url = f"http://127.0.0.1:{server_port}/slack/events"
        warm = [e for e in events if e.warmup]
        measured = [e for e in events if not e.warmup]
        asyncio.run(_send_all(url, warm, 1, 0.0, {}, []))
        _wait_replies(mock, warm, timeout)
        sent_at: dict[str, float] = {}
        requests: list[dict] = []
        started = time.perf_counter()
        asyncio.run(_send_all(url, measured, concurrency, rate, sent_at, requests))
        acked = time.perf_counter()
        _wait_replies(mock, measured, timeout)
        time.sleep(settle)  # late duplicates would land here
        with mock._lock:
            replies = {k: list(v) for k, v in mock.replies.items()}
            methods = Counter(c.method for c in mock.calls)
            reacted = {c.args.get("timestamp") for c in mock.calls if c.method == "reactions.add"}
        conn.send({"reacted": sorted(reacted), "started": started, "acked": acked, "sent_at": sent_at,
                   "requests": requests, "replies": replies, "methods": dict(methods)})


async def _send_all(url: str, events: list[Planned], concurrency: int, rate: float,
                    sent_at: dict[str, float], requests: list[dict]) -> None:
    # aiohttp, not httpx: httpx's AsyncClient managed ~150 requests/s with p99 1.5 s at 50 in
    # flight against an endpoint that does nothing, which measured the client, not the server.
    import aiohttp

    queue: asyncio.Queue = asyncio.Queue()
    for k, e in enumerate(events):
        queue.put_nowait((k, e))
    t0 = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:

        async def one(e: Planned, retry: int) -> None:
            body, headers = request(e, retry)
            began = time.perf_counter()
            if not retry:
                sent_at[e.ts] = began
            status, error = 0, None
            try:
                async with client.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            requests.append({"ts": e.ts, "retry": retry, "click": e.click, "status": status, "error": error,
                             "ms": (time.perf_counter() - began) * 1000})

        async def worker() -> None:
            while not queue.empty():
                k, e = queue.get_nowait()
                if rate > 0:  # open loop: event k leaves at t0 + k / rate
                    await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
                await one(e, 0)
                for retry in range(1, e.retries + 1):
                    await one(e, retry)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _wait_replies(mock, events: list[Planned], timeout: float) -> None:
    wanted = {e.ts for e in events}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with mock._lock:
            if wanted <= mock.replies.keys():
                return
        time.sleep(0.05)


# ============================================================================================
# The LTC Copilot side (this process)
# ============================================================================================

class LogCounter(logging.Handler):
    """Warnings and errors the server logs, and how many deliveries it skipped as duplicates."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.problems: list[str] = []
        self.skipped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            first = (record.getMessage().splitlines() or [""])[0]
            self.problems.append(f"{record.name} {record.levelname}: {first[:160]}")
        elif record.name == "ltc.slack" and "duplicate Slack event" in record.getMessage():
            self.skipped += 1


class Sampler(threading.Thread):
    """Wall-clock sampling of the executor threads (sys._current_frames), where lazy listeners run.

    Sampling shows time spent blocked too (the SQLite write lock, the GIL, I/O), which cProfile
    of one thread would not attribute.
    """

    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(daemon=True, name="sampler")
        self.interval = interval
        self.samples = 0
        self.inclusive: Counter = Counter()
        self.leaf: Counter = Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            workers = {t.ident for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")}
            for ident, frame in sys._current_frames().items():
                if ident not in workers:
                    continue
                self.samples += 1
                seen, leaf = set(), None
                while frame is not None:
                    where = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
                    leaf = leaf or f"{where}:{frame.f_lineno}"
                    seen.add(where)
                    frame = frame.f_back
                self.leaf[leaf] += 1
                self.inclusive.update(seen)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def report(self, top: int = 16) -> None:
        print(f"\nExecutor threads (Bolt's lazy listeners, LangGraph's background writes): {self.samples} samples, "
              f"every {self.interval * 1000:.0f} ms; idle ones wait in thread.py:_worker")
        print("  inclusive share of their wall time")
        for where, k in self.inclusive.most_common(top):
            print(f"    {k / self.samples:6.1%}  {where}")
        print("  innermost frame")
        for where, k in self.leaf.most_common(top // 2):
            print(f"    {k / self.samples:6.1%}  {where}")


class Timed:
    """Wall and CPU time of Bolt's dispatch per request (wraps the Bolt app's `dispatch`).

    The FastAPI route runs the synchronous dispatch on the event loop, so while it runs no other
    request moves; wall much above CPU means the loop thread was waiting (GIL, lock, sleep).
    With a profiler, the first dispatch turns it on for the event-loop thread: everything that
    thread runs afterwards (uvicorn, Starlette, FastAPI, Bolt) is counted.
    """

    def __init__(self, bolt, profiler: cProfile.Profile | None = None) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        dispatch = bolt.dispatch

        def timed(request):
            nonlocal profiler
            if profiler is not None:
                profiler.enable()  # cProfile follows the thread that enables it: the event loop's
                profiler = None
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return dispatch(request)
            finally:
                self.cpu.append((time.thread_time() - cpu) * 1000)
                self.wall.append((time.perf_counter() - wall) * 1000)

        bolt.dispatch = timed


def print_loop_profile(profiler: cProfile.Profile, top: int = 22) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print("\nEvent-loop thread (acks), cProfile: own time by function, then inclusive:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip() and "Ordered by" not in line))


@contextmanager
def database(pg_url: str | None):
    with tempfile.TemporaryDirectory(prefix="ltc_bench_slack_") as tmp:
        if pg_url:
            with postgres_database(pg_url, f"ltc_bench_slack_{os.getpid()}") as db:
                yield db.url, f"PostgreSQL {db.label}", tmp
        else:
            yield f"sqlite:///{tmp}/bench.db", f"SQLite {tmp}/bench.db", tmp


def build_app(url: str, tmp: str):
    """A migrated database with the builders org, a few deals to list, and Slack ids for most users."""
    from bot.context import AppContext
    from domain.settings import Settings
    from tests import builders

    settings = Settings(_env_file=None, database_url=url, chroma_path=f"{tmp}/chroma", llm_base_url=None,
                        llm_model=None, slack_bot_token="xoxb-bench", slack_signing_secret=SECRET)
    app = AppContext.from_settings(settings)
    app.migrate()
    org = builders.build_org(app.uow)
    for owner, n in (("rep", 6), ("rep2", 4), ("rep_w", 3)):
        for k in range(1, n + 1):
            builders.make_deal(app.uow, org, n=k, owner=owner, region="west" if owner == "rep_w" else "east")
    with app.uow() as uow:
        for slack_id, key in SLACK_IDS.items():
            uow.users.get(org[key]).slack_user_id = slack_id
        uow.commit()
    return settings, app


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"p50 {percentile(values, 50):7.1f}  p95 {percentile(values, 95):7.1f}  "
            f"p99 {percentile(values, 99):7.1f}  max {max(values):7.1f}")


def report(args, label: str, events: list[Planned], result: dict, app, logs: LogCounter, timed: Timed) -> bool:
    from sqlalchemy import func, or_, select

    from domain.db import tables as t

    measured = [e for e in events if not e.warmup]
    reqs = result["requests"]
    failed = [r for r in reqs if r["status"] != 200]
    acks = [r["ms"] for r in reqs]
    e2e: dict[bool, list[float]] = {False: [], True: []}  # by click
    per_event: Counter = Counter()
    last_reply = result["started"]
    for e in measured:
        got = result["replies"].get(e.ts, [])
        per_event[len(got)] += 1
        if got:
            e2e[e.click].append((got[0] - result["sent_at"][e.ts]) * 1000)
            last_reply = max(last_reply, max(got))
    duplicates = sum((n - 1) * k for n, k in per_event.items() if n > 1)
    missing = per_event.get(0, 0)
    send_s = result["acked"] - result["started"]
    reply_s = last_reply - result["started"]
    mentions = [e for e in measured if not e.click]
    retries = sum(e.retries for e in measured)
    with app.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(t.slack_events)).scalar_one()
        leads = conn.execute(select(func.count()).where(or_(*(t.leads.c.company.like(f"{name}%") for name in (
            "Bench Robotics ", "基准电力", "Westwind Mining "))))).scalar_one()
    p99 = percentile(acks, 99)
    print(f"\nSlack endpoint: {len(mentions)} signed app_mention events + {retries} retry deliveries + "
          f"{len(measured) - len(mentions)} Cancel clicks, {args.concurrency} in flight"
          f"{f', paced {args.rate:g}/s' if args.rate else ''}; {label}; offline model; "
          f"load average before {args.load}")
    print(f"  requests      {len(reqs)} sent, {len(reqs) - len(failed)} × 200, {len(failed)} failed"
          + (f" (e.g. {failed[0]['status']} {failed[0]['error'] or ''})" if failed else ""))
    print(f"  ack ms        {summary(acks)}   aim p99 < 100: {'met' if p99 < 100 else 'NOT met'}")
    print(f"    mentions    {summary([r['ms'] for r in reqs if not r['retry'] and not r['click']])}")
    print(f"    retries     {summary([r['ms'] for r in reqs if r['retry']])}")
    print(f"    clicks      {summary([r['ms'] for r in reqs if r['click']])}")
    print(f"    dispatch    {summary(timed.wall[-len(reqs):])}   (Bolt's dispatch alone, on the event loop: wall)")
    print(f"    its CPU     {summary(timed.cpu[-len(reqs):])}   (the same: CPU time)")
    print(f"  end-to-end ms {summary(e2e[False])}   (mention → threaded chat.postMessage)")
    print(f"    clicks      {summary(e2e[True])}   (click → chat.postEphemeral)")
    print("  replies       answers per event: " + ", ".join(f"{n} × {k}" for n, k in sorted(per_event.items()))
          + f"; missing {missing}; duplicates {duplicates}")
    print(f"  throughput    {len(reqs) / send_s:.0f} requests/s acked ({send_s:.2f} s); "
          f"{sum(map(len, e2e.values())) / max(reply_s, 1e-9):.1f} replies/s "
          f"(first send → last reply {reply_s:.1f} s)")
    print(f"  server        slack_events rows {rows}/{sum(not e.click for e in events)} (warm-up included); "
          f"leads created {leads}/{sum(e.creates_lead for e in events)}; "
          f"retry deliveries skipped {logs.skipped}/{retries}; warnings/errors logged {len(logs.problems)}")
    for line, n in Counter(logs.problems).most_common(5):
        print(f"    {n} × {line}")
    reacted = set(result["reacted"])
    for e in [e for e in measured if not result["replies"].get(e.ts)][:5]:
        print(f"    no answer: {e.event_id} ts {e.ts} {e.user} {e.text!r}, retries {e.retries}, "
              f"{'reacted 👀' if e.ts in reacted else 'no reaction'}")
    print(f"  Web API calls {', '.join(f'{m} {n}' for m, n in sorted(result['methods'].items()))}")
    return not failed and not duplicates and not missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--retry-share", type=float, default=0.1, help="share of events Slack re-sends")
    parser.add_argument("--click-share", type=float, default=0.05, help="share of requests that are button clicks")
    parser.add_argument("--rate", type=float, default=0.0, help="events per second (0 = as fast as acked)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL server; a throw-away database is created on it")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all replies")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to keep listening for duplicates")
    parser.add_argument("--profile", action="store_true",
                        help="profile the event loop (acks) and sample the worker threads")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.load = " ".join(f"{x:.1f}" for x in os.getloadavg())  # other work on the machine skews the figures

    from slack_sdk import WebClient

    from bot.agent.runtime import Agent
    from bot.server import create_server
    from bot.slack.app import SlackServices, create_app
    from tests.loopback import serve

    logs = LogCounter()
    logging.getLogger().addHandler(logs)
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("httpx", "slack_sdk", "slack_bolt", "uvicorn", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    events = plan(args.events, args.warmup, args.retry_share, args.click_share, args.seed)
    with database(args.pg) as (url, label, tmp):
        settings, app = build_app(url, tmp)
        ctx = mp.get_context("spawn")
        here, there = ctx.Pipe()
        slack = ctx.Process(target=slack_side, name="slack",
                            args=(there, events, args.concurrency, args.rate, args.timeout, args.settle))
        slack.start()
        _, mock_port = here.recv()
        client = WebClient(token="xoxb-bench", base_url=f"http://127.0.0.1:{mock_port}/api/")
        bolt = create_app(settings, SlackServices(app, Agent(app)), client=client)
        profiler = cProfile.Profile() if args.profile else None
        timed = Timed(bolt, profiler)
        server, thread, port = serve(create_server(app, bolt), "ltc-http")
        sampler = Sampler() if args.profile else None
        here.send(port)
        if sampler:
            sampler.start()
        result = here.recv()
        if sampler:
            sampler.stop()
        slack.join(timeout=30)
        server.should_exit = True
        thread.join(timeout=10)
        good = report(args, label, events, result, app, logs, timed)
        if sampler:
            print_loop_profile(profiler)
            sampler.report()
        app.close()
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
