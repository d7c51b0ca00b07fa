"""Registry tools as LangChain tools, bound to one user's ToolContext for one turn.

The model sees each tool's name, first docstring line and argument schema; the acting user and
unit of work are closed over here, never arguments. Every call goes through tools.runner, so
validation errors, domain errors and proposals come back as structured content the model can
act on; the full outcome (with a proposal's token) travels as the artifact, for the chat surface.
"""
from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from tools import runner
from tools.context import ToolContext
from tools.errors import from_validation
from tools.registry import ToolSpec


def to_langchain(spec: ToolSpec, ctx: ToolContext, sink: list[runner.ToolOutcome] | None = None) -> StructuredTool:
    def call(**kwargs: Any) -> tuple[str, dict]:
        outcome = runner.invoke(spec.name, kwargs, ctx)
        if sink is not None:
            sink.append(outcome)  # the surface gets proposals (with tokens) from here, not from memory
        # The artifact is kept in conversation memory: never the token.
        artifact = outcome.model_dump(mode="json", exclude={"proposal": {"token"}})
        return json.dumps(outcome.for_model(), ensure_ascii=False, default=str), artifact

    def bad_arguments(error: ValidationError) -> str:
        err = from_validation(error, spec.args)
        return json.dumps({"status": "error", **err.model_dump(exclude_none=True)}, ensure_ascii=False)

    return StructuredTool.from_function(
        func=call, name=spec.name, description=spec.description, args_schema=spec.args,
        response_format="content_and_artifact", handle_validation_error=bad_arguments)


def toolkit(specs: list[ToolSpec], ctx: ToolContext,
            sink: list[runner.ToolOutcome] | None = None) -> list[StructuredTool]:
    return [to_langchain(s, ctx, sink) for s in specs]
