"""Whatever arguments a model sends, every tool answers with an outcome: never a crash.

Hypothesis draws argument objects for each registered tool: the tool's own field names with
values of any JSON type (and some unknown keys), as a confused or adversarial model would send.
Every call must come back as ok / error / needs_confirmation, and an error must be one the model
can act on (a named code with a message), never the `internal` fallback that hides a bug.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools import runner
from tools.registry import all_tools

# The analytics tools read SQL aggregates, which the in-memory fakes do not have: they are fuzzed on SQLite
# and PostgreSQL in tests/integration/test_analytics_tools.py.
SPECS = sorted((s for s in all_tools().values() if s.fn.__module__ != "tools.analytics"), key=lambda s: s.name)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                      st.sampled_from(["OPP-1", "OPP-99999", "APR-1", "Q-1", "CT-2026-00001", "INV-2026-00001",
                                       "me", "我", "华东", "2026-02-30", "-5", "1e9", "approve", "won"]))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=6)


def arguments(spec):
    names = list(spec.args.model_fields)
    known = st.fixed_dictionaries({}, optional={n: JSON for n in names}) if names else st.just({})
    return st.tuples(known, st.dictionaries(st.sampled_from(["x", "actor", "user_id"]), JSON, max_size=1)).map(
        lambda pair: {**pair[0], **pair[1]})


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_any_arguments_give_an_outcome_never_a_crash(spec, tool_ctx, org):
    ctx = tool_ctx("admin" if spec.audience & {"finance", "approver", "delivery"} else "rep")

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(args=arguments(spec))
    def check(args):
        out = runner.invoke(spec.name, args, ctx)
        assert out.status in ("ok", "error", "needs_confirmation")
        if out.status == "error":
            assert out.error.error != "internal", f"{spec.name}({args!r}) hit a bug: see the log"
            assert out.error.message

    check()


def test_the_acting_user_cannot_be_smuggled_in_as_an_argument(tool_ctx, org, store):
    out = runner.invoke("create_lead", {"company": "Smuggle Co", "contact_name": "Wu", "actor": {"user_id": 1},
                                        "user_id": org["admin"]}, tool_ctx("rep"))
    assert out.status == "error" and out.error.error == "bad_arguments"
    assert out.error.field == "actor" and "company" in out.error.allowed
    assert not [lead for lead in store.rows("leads") if lead.company == "Smuggle Co"]


def test_names_that_match_nothing_are_reported_in_the_users_language(tool_ctx):
    en = runner.invoke("what_next", {"opportunity": "Nonexistent Widgets"}, tool_ctx("rep"))
    zh = runner.invoke("what_next", {"opportunity": "不存在的项目"}, tool_ctx("rep", locale="zh"))
    assert en.error.error == zh.error.error == "not_found"
    assert en.text.startswith("No deal I can see matches 'Nonexistent Widgets'")
    assert zh.text.startswith("在您可见的商机中没有找到与“不存在的项目”匹配的记录")
