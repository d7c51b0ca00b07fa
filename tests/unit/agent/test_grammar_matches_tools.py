"""The command language and the tools agree: every call the grammar makes is valid for its tool."""
from __future__ import annotations

from datetime import date

import pytest

from bot.agent.offline import grammar
from tests.unit.agent.test_offline_grammar import EN, ZH
from tools.registry import all_tools

TODAY = date(2026, 11, 22)
ROWS = [row[0] for row in EN + ZH]


@pytest.mark.parametrize("text", ROWS)
def test_each_parsed_command_validates_against_its_tools_arguments(text):
    command = grammar.parse(text, today=TODAY)
    assert command is not None
    spec = all_tools().get(command.tool)
    assert spec is not None, f"{text!r} calls {command.tool}, which is no tool"
    spec.args.model_validate(command.args)


def test_every_tool_is_reachable_by_a_command_in_both_languages():
    for table in (EN, ZH):
        reached = {grammar.parse(row[0], today=TODAY).tool for row in table}
        assert reached == set(all_tools()), sorted(set(all_tools()) ^ reached)
