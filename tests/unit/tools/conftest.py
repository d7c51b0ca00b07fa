"""Tool tests: the tools layer over the unit fakes, through tools.runner like every chat edge.

`tool_ctx("rep")` → a ToolContext for that user of the standard org (tests/builders.py), in English
by default (`tool_ctx("manager", locale="zh")`), with the confirmation rule of the default settings.
Build it after any cached state (`negotiating`, `signed`, …): it only closes over the store.
"""
from __future__ import annotations

import pytest

from domain.settings import Settings
from tools.context import ToolContext

CONFIRM_TOOLS = frozenset(Settings().confirm_tools)


@pytest.fixture
def tool_ctx(uow_factory, org):
    def make(name: str, locale: str = "en", **overrides) -> ToolContext:
        return ToolContext(actor=org.actor(name, channel="cli", via_agent=True), uow=uow_factory, locale=locale,
                           confirm_tools=overrides.pop("confirm_tools", CONFIRM_TOOLS), **overrides)
    return make
