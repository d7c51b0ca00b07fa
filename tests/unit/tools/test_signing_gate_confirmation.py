"""Moving a deal into won asks for the ATC: the same confirmation as requesting it directly."""
from __future__ import annotations

from tests import builders
from tools import runner


def test_advance_stage_into_won_proposes_the_atc_and_runs_it_only_after_yes(negotiating, uow_factory, org,
                                                                           tool_ctx, store):
    deal = negotiating()
    builders.contract_under_review(uow_factory, org, deal.opp)
    ctx = tool_ctx("rep")
    before = store.count("approvals")
    out = runner.invoke("advance_stage", {"opportunity": f"OPP-{deal.opp:05d}", "to_stage": "won"}, ctx)
    assert out.status == "needs_confirmation" and "ATC" in out.proposal.summary
    assert store.count("approvals") == before
    assert runner.confirm(out.proposal.token, tool_ctx("rep2")).error.error == "permission_denied"
    done = runner.confirm(out.proposal.token, ctx)
    assert done.status == "ok"
    request = store.rows("approvals")[-1]
    assert (request.kind, request.status) == ("ATC", "pending")
    assert store.get("opportunities", deal.opp).stage == "negotiate"  # ATC decides; asking moves nothing


def test_advance_stage_to_an_earlier_gate_asks_at_once(deal, tool_ctx, store):
    opp = deal("qualify")
    out = runner.invoke("advance_stage", {"opportunity": f"OPP-{opp:05d}"}, tool_ctx("rep"))
    assert out.status == "ok" and store.rows("approvals")[-1].kind == "ATI"


def test_the_proposal_says_how_long_it_may_be_confirmed(accepted, tool_ctx):
    deal = accepted()
    ctx = tool_ctx("rep", confirm_ttl_minutes=3)
    runner.invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}"}, ctx)
    contract = runner.invoke("payment_status", {"of": f"OPP-{deal.opp:05d}"}, ctx)
    assert contract.status == "ok" and "status" in contract.for_model()
    assert contract.for_model()["status"] == "ok"  # the call's status, not the record's
    out = runner.invoke("submit_contract", {"contract": f"OPP-{deal.opp:05d}"}, ctx)
    assert out.status == "needs_confirmation" and out.proposal.minutes == 3
    assert "3 minutes" in out.text and out.for_model()["minutes"] == 3
