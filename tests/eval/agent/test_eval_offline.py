"""The agent eval in CI: every task with the offline command model (CI gate: ≥ 90 % of the
command-language tasks pass), the task set's shape, and the prompt-size report (printed, not gated).

The pass-rate table and the prompt tokens are printed even when everything passes, so a CI log shows
them; a failure lists each failing task with why.
"""
from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.eval.agent import report
from tests.eval.agent.databases import open_app
from tests.eval.agent.harness import CATEGORIES, Harness, load_tasks

GATE = 0.9


@pytest.fixture(scope="module")
def tasks():
    return load_tasks()


@pytest.fixture(scope="module")
def run(tasks):
    started = time.perf_counter()
    with Harness(model="offline") as h:
        results = h.run(tasks)
        app = open_app(h.template_url)
        limit = app.settings.agent_max_tools
        try:
            sizes = report.prompt_sizes(app, report.representative(tasks), limit=limit)
        finally:
            app.close()
    return results, sizes, limit, time.perf_counter() - started


def test_the_task_set_covers_every_area_in_both_languages(tasks):
    tags = Counter(t for task in tasks for t in task.tags)
    command = [t for t in tasks if "command-language" in t.tags]
    assert len(tasks) >= 70
    assert len(command) >= 45
    assert sum("zh" in t.tags for t in command) >= 20
    assert sum("en" in t.tags for t in command) >= 20
    assert tags["safety"] >= 8
    assert sum(t.multi_turn for t in tasks) >= 5
    assert {t.category for t in tasks} == set(CATEGORIES)
    # every task judges something: the database, or at least the reply
    assert [t.id for t in tasks if not t.expect and not t.reply and not any(s.reply for s in t.steps)] == []


def test_offline_model_passes_the_command_language_tasks(run, capsys):
    results, sizes, limit, seconds = run
    with capsys.disabled():
        print("\n" + report.summary(results, model="offline", seconds=seconds))
        print(report.prompt_report(sizes, limit=limit))
    gated = [r for r in results if "command-language" in r.task.tags]
    passed = sum(r.passed for r in gated)
    failing = [r for r in gated if not r.passed]
    assert passed / len(gated) >= GATE, (
        f"{passed}/{len(gated)} command-language tasks pass ({100 * passed / len(gated):.1f} %, gate "
        f"{100 * GATE:.0f} %); failing:\n" + report.failures(failing))
