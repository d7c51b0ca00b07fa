#!/usr/bin/env python
"""Agent turn latency with the offline command model, on the demo company in a SQLite file.

    .venv/bin/python tests/benchmarks/bench_agent.py [--n 20]

Each command runs N times on fresh conversation threads, as the demo's first sales rep (or the
finance / manager users for their commands); it prints p50 / p95 per command and overall, the
tool it called and the estimated prompt tokens. Writes (new leads) use unique names per run.
Not part of CI.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.agent.runtime import Agent  # noqa: E402
from bot.context import AppContext  # noqa: E402
from domain.actor import Channel  # noqa: E402
from domain.demo import seed_demo  # noqa: E402
from domain.settings import Settings  # noqa: E402

COMMANDS = [
    ("rep", "new lead Bench Robotics {i} from trade show, contact Li Wei, budget 2M"),
    ("rep", "新线索 基准电力{i} 来源 展会 联系人 王芳"),
    ("rep", "my deals"),
    ("rep", "我的商机"),
    ("manager", "my approvals"),
    ("finance", "overdue"),
    ("rep", "help"),
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = AppContext.from_settings(Settings(database_url=f"sqlite:///{tmp}/bench.db", chroma_path=f"{tmp}/chroma"))
        app.migrate()
        seed_demo(app.uow)
        by_role = {"rep": "sales_rep", "manager": "sales_manager", "finance": "finance"}
        with app.uow() as uow:
            users = sorted((u for u in uow.users.all() if u.active), key=lambda u: u.id)
            people = {k: next(u.email for u in users if any(r.value == v for r in u.roles))
                      for k, v in by_role.items()}
        agent = Agent(app)
        agent.reply(actor=app.actor_for_email(people["rep"], Channel.CLI), text="help", thread_id="warm-up")
        print(f"{'command':<72} {'tool':<18} {'p50 ms':>8} {'p95 ms':>8} {'tokens*':>7}")
        everything: list[float] = []
        for who, command in COMMANDS:
            actor = app.actor_for_email(people[who], Channel.CLI)
            times, tool, tokens = [], "-", 0
            for i in range(args.n):
                started = time.perf_counter()
                result = agent.reply(actor=actor, text=command.format(i=i), thread_id=f"bench-{who}-{i}-{command[:8]}")
                times.append((time.perf_counter() - started) * 1000)
                tool, tokens = ",".join(result.tool_calls) or "-", result.input_tokens
            everything += times
            print(f"{command.format(i=0)[:72]:<72} {tool:<18} {pct(times, .5):8.1f} {pct(times, .95):8.1f} {tokens:7d}")
        print(f"{'all turns':<72} {'':<18} {pct(everything, .5):8.1f} {pct(everything, .95):8.1f}")
        print(f"mean {statistics.mean(everything):.1f} ms over {len(everything)} turns")
        print("* estimated input tokens summed over the turn's model calls; the offline model binds every tool of the "
              "role (an LLM gets the selected subset: see python -m tests.eval.agent.run)")
        app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
