"""schemathesis over the whole OpenAPI document of create_api: no operation answers 5xx.

The operations are enumerated from the schema at run time, so routes other modules add are
covered without editing this file. The database is seeded (builders org, catalog, a few deals,
one taken all the way to cash) and the key has scope `*` as the admin, so calls get past auth
into the services. Positive cases (valid by the schema) and a few negative ones per operation;
`max_examples` is shared out so the whole file stays within about a minute and a half.
"""
from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, settings

import schemathesis
from bot.api.app import create_api
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from tests import builders
from tests.api.conftest import UNLIMITED, bearer

BUDGET = 700  # examples per backend, shared by the operations
PER_OP = (4, 25)  # at least / at most, per operation and mode


def _seed(uow_factory, org) -> None:
    builders.seed_catalog(uow_factory, org)
    deals = [builders.make_deal(uow_factory, org, n=n) for n in range(1, 4)]
    builders.make_deal(uow_factory, org, n=9, owner="rep_w", region="west")
    builders.lead_to_cash(uow_factory, org, deals[0])


def test_no_operation_answers_a_server_error(ctx, org, uow_factory, make_key):
    _seed(uow_factory, org)
    headers = bearer(make_key("*", user="admin"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_api(ctx, rate_per_minute=UNLIMITED))
    operations = [result.ok() for result in schema.get_all_operations()]
    n = max(PER_OP[0], min(PER_OP[1], BUDGET // max(1, len(operations))))
    failures, statuses = [], {}
    for operation in operations:
        for mode, examples in ((GenerationMode.POSITIVE, n), (GenerationMode.NEGATIVE, max(2, n // 4))):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                response = case.call(headers=headers)
                if mode is GenerationMode.POSITIVE:  # negative cases also drop the key on purpose
                    statuses.setdefault(operation.label, set()).add(response.status_code)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Exception as exc:  # keep going: one report naming every failing operation
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:600]}")
    assert operations and not failures, "\n\n".join(failures)
    # Valid cases carried an accepted key, so the services themselves were exercised: no 401, and
    # every collection answered 2xx (random ids and states rarely satisfy the rest, by design).
    keyed = {op.label for op in operations if op.definition.raw.get("security")}
    assert not [label for label in keyed if 401 in statuses.get(label, ())]
    collections = {op.label for op in operations if op.method.upper() == "GET" and "{" not in op.path}
    assert collections and not [label for label in collections
                                if not any(200 <= c < 300 for c in statuses.get(label, ()))]
