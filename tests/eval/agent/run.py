"""Run the agent eval and print pass rates, costs and the prompt-size report.

    .venv/bin/python -m tests.eval.agent.run                       # offline command model, SQLite
    .venv/bin/python -m tests.eval.agent.run --tag zh --tag safety # tasks with any of these tags
    .venv/bin/python -m tests.eval.agent.run --model llm           # the LLM_* endpoint (not in CI)
    .venv/bin/python -m tests.eval.agent.run --db-url postgresql://…/ltc   # on PostgreSQL

Exit status 0 when ≥ 90 % of the selected command-language tasks pass (or none were selected).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from tests.eval.agent import report
from tests.eval.agent.databases import open_app
from tests.eval.agent.harness import Harness, load_tasks

GATE = 0.9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.eval.agent.run", description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("offline", "llm", "oracle"), default="offline",
                   help="oracle: make each step's intended call, to check the tasks themselves")
    p.add_argument("--tag", action="append", default=[], help="only tasks with this tag (repeatable)")
    p.add_argument("--category", action="append", default=[], help="only this category (repeatable)")
    p.add_argument("--id", action="append", default=[], help="only this task (repeatable)")
    p.add_argument("--db-url", help="SQLite file or PostgreSQL server database to seed the template into")
    p.add_argument("--playbooks", choices=("keyword", "settings"), default="keyword",
                   help="playbook search: BM25 over the library (default, instant) or hybrid with the configured "
                        "embedder (indexes the library first)")
    p.add_argument("--no-tokens", action="store_true", help="skip the prompt-size report")
    p.add_argument("-v", "--verbose", action="store_true", help="print each task as it finishes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    tasks = load_tasks(tags=tuple(args.tag), categories=tuple(args.category), ids=tuple(args.id))
    if not tasks:
        print("no tasks match", file=sys.stderr)
        return 2
    started = time.perf_counter()

    def progress(r) -> None:
        if args.verbose:
            print(f"{'ok  ' if r.passed else 'FAIL'} {r.task.id} ({r.seconds:.2f} s)", flush=True)

    with Harness(model=args.model, db_url=args.db_url, playbooks=args.playbooks) as h:
        results = h.run(tasks, progress=progress)
        print(report.summary(results, model=args.model, seconds=time.perf_counter() - started))
        print(f"(seeding the demo and loading the playbooks: {h.setup_seconds:.1f} s of that)")
        fails = report.failures(results)
        if fails:
            print("\n" + fails)
        if not args.no_tokens:
            app = open_app(h.template_url)
            try:
                sizes = report.prompt_sizes(app, report.representative(load_tasks()),
                                            limit=app.settings.agent_max_tools)
            finally:
                app.close()
            print("\n" + report.prompt_report(sizes, limit=app.settings.agent_max_tools))
    gated = [r for r in results if "command-language" in r.task.tags]
    rate = sum(r.passed for r in gated) / len(gated) if gated else 1.0
    return 0 if rate >= GATE else 1


if __name__ == "__main__":
    sys.exit(main())
