"""A tool that answers with a chart, registered only while a chart test runs, and a scripted model
that calls it: the chat surfaces' chart path end to end without depending on the wording of the
analytics tools. The chart is built from the real pipeline service over the rig's database.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel

from domain import analytics as an
from tests.scripted_model import ScriptedChatModel, call, say
from tools.charts import Chart, pipeline_chart
from tools.context import ToolContext
from tools.registry import ALL, REGISTRY, ToolResult, tool

NAME = "chart_probe"
ASK = "chartprobe, please"  # its keyword binds the probe for the scripted model (and no other tool)
ANSWER = "Pipeline by stage: see the chart."


class ProbeArgs(BaseModel):
    pass


class ProbeResult(ToolResult):
    chart: Chart | None = None
    amounts: list[float]


def _probe(args: ProbeArgs, ctx: ToolContext) -> ProbeResult:
    """Pipeline by stage with a chart (test probe)."""
    with ctx.uow() as uow:
        view = an.pipeline(by="stage", actor=ctx.actor, uow=uow)
    return ProbeResult(text=ANSWER, chart=pipeline_chart(view, ctx.locale),
                       amounts=[float(r.amount) for r in view.rows])


_probe.__name__ = NAME


@contextmanager
def chart_turns(agent, turns: int = 1) -> Iterator[ScriptedChatModel]:
    """Register the probe and make `agent` answer `turns` messages by calling it, then saying ANSWER."""
    tool(audience=(ALL,), keywords=("chartprobe",))(_probe)
    model = ScriptedChatModel(script=[m for _ in range(turns) for m in (call(NAME), say(ANSWER))])
    before = agent.model_factory
    agent.model_factory = lambda today, locale: model
    try:
        yield model
    finally:
        agent.model_factory = before
        REGISTRY.pop(NAME, None)
