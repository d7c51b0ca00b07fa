"""Every mutation on the contract side leaves audit rows naming the entity, the action and who acted."""
from __future__ import annotations

import inspect

import pytest

from domain.services import (billing, collections, contracts, delivery, incentives, payments, quotes, reconciliation,
                             revenue)
from tests.unit.test_rbac_matrix import CASES, L2C_STATE, Env, _build_state

# use case → (who does it, the audit rows (entity, action, id key in the state) it must add)
AUDITED = {
    "create_contract": ("rep", [("contract", "create", None)]),
    "update_contract": ("rep", [("contract", "update", "contract")]),
    "submit_contract": ("rep", [("contract", "submit", "contract")]),
    "withdraw_contract": ("rep", [("contract", "withdraw", "contract")]),
    "request_change_order": ("rep", [("approval", "request", None), ("contract", "request_change", "contract")]),
    "close_contract": ("finance", [("contract", "close", "contract")]),
    "create_order": ("fr", [("order", "create", None), ("contract", "execute", "contract")]),
    "mark_delivered": ("fr", [("order", "done:1", "order")]),
    "accept_milestone": ("fr", [("order", "accept:1", "order"), ("contract", "recognise_revenue", "contract")]),
    "issue_invoice": ("finance", [("invoice", "issue", None), ("contract", "invoice", "contract")]),
    "void_invoice": ("finance", [("invoice", "void", "invoice"), ("contract", "void_invoice", "contract")]),
    "record_payment": ("finance", [("invoice", "payment", "invoice"), ("payment", "record", None)]),
    "propose_payment": ("rep", [("payment", "propose", None)]),
    "confirm_payment": ("finance", [("invoice", "payment", "invoice"), ("payment", "confirm", "payment")]),
    "reject_payment": ("finance", [("payment", "reject", "payment")]),
    "allocate_payment": ("finance", [("invoice", "payment", "invoice"), ("payment", "allocate", "payment")]),
    "record_promise": ("rep", [("invoice", "promise_to_pay", "invoice")]),
    "record_contribution": ("manager", [("contract", "contribution:SR", "contract")]),
}
# Daily jobs: audited per invoice/quote they touch (tests in test_invoices, test_collections, test_quotes).
JOBS = {"bill_due_milestones", "run_dunning", "expire_quotes"}
READS = {"get_contract", "contract_for_opportunity", "list_contracts", "get_order", "order_for_contract",
         "get_invoice", "list_invoices", "get_payment", "payments_for_account", "aging_report", "revenue_schedule",
         "reconcile_contract", "reconcile_opportunity", "incentive_split"}
ROLE_OF = {"rep": "sales_rep", "finance": "finance", "fr": "fulfillment_manager", "manager": "sales_manager"}


def test_every_contract_side_service_is_either_audited_here_a_job_or_a_read():
    public = {name for module in (contracts, delivery, billing, payments, collections, revenue, reconciliation,
                                  incentives)
              for name, fn in vars(module).items()
              if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_")
              and "actor" in inspect.signature(fn).parameters}
    assert public | {"expire_quotes"} == set(AUDITED) | JOBS | READS
    assert not set(AUDITED) & READS and "expire_quotes" in vars(quotes)


@pytest.mark.parametrize("case", sorted(AUDITED))
def test_each_mutation_writes_its_audit_rows(case, run, org, uow_factory, store, cached):
    who, expected = AUDITED[case]
    state = L2C_STATE[case]
    ids = cached(("rbac", state), lambda f: _build_state(f, org, state))
    env = Env(run, org, uow_factory, store, ROLE_OF[who], dict(ids))
    mark = store.count("audit")
    CASES[case](env)
    new = store.rows("audit")[mark:]
    assert new, f"{case} wrote no audit row"
    assert {e.actor_id for e in new} == {org[who]}
    assert len({e.request_id for e in new}) == 1  # one request, one trail
    for entity, action, key in expected:
        rows = [e for e in new if (e.entity, e.action) == (entity, action)]
        assert rows, f"{case}: no ({entity}, {action}) audit row in {[(e.entity, e.action) for e in new]}"
        if key is not None:
            assert ids[key] in {e.entity_id for e in rows}, (case, entity, action)
        assert all(e.after for e in rows), (case, entity, action)  # says what it changed to
