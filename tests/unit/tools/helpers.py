"""Small helpers the tool tests share: call a tool through the runner, insist it went well, references."""
from __future__ import annotations

from tools import runner


def call(ctx, tool: str, **args):
    return runner.invoke(tool, args, ctx)


def ok(outcome):
    assert outcome.status == "ok", outcome.text
    return outcome


def opp_ref(opp_id: int) -> str:
    return f"OPP-{opp_id:05d}"
