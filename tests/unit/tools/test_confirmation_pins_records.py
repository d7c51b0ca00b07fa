"""A confirmed proposal acts on the record its summary named, even when a name would now resolve elsewhere."""
from __future__ import annotations

from tests import builders
from tests.unit.tools.helpers import call, ok, opp_ref
from tools import runner


def test_a_confirmed_quote_goes_to_the_deal_the_summary_named(deal, tool_ctx, store, uow_factory, org):
    builders.seed_catalog(uow_factory, org)
    opp = deal()
    ctx = tool_ctx("rep")
    out = call(ctx, "generate_quote", opportunity="Customer 1",  # a fuzzy name: today it means OPP-00001 only
               lines=[{"product": "MES-LIC", "quantity": "10", "discount_pct": "15"}])
    assert out.status == "needs_confirmation" and opp_ref(opp) in out.proposal.summary
    account = store.get("opportunities", opp).account_id
    # Before the yes, a deal named exactly "Customer 1" appears: the name would now pick it.
    ok(call(ctx, "create_opportunity", account=f"ACC-{account:05d}", name="Customer 1", amount="1000"))

    ok(runner.confirm(out.proposal.token, ctx))

    [quote] = store.rows("quotes")
    assert quote.opportunity_id == opp
