"""Alembic migrations: empty → head → base → head, the schema equals the models, seeds exist."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect, select, text

from domain.db import tables as t
from domain.db.engine import make_engine
from alembic.script import ScriptDirectory

from domain.db.migrate import alembic_config, downgrade, upgrade
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory
from domain.policy_defaults import GATES, STAGE_PROBABILITIES, SYSTEM_EMAIL, seed_policies

MODEL_TABLES = set(t.metadata.tables)



def _table_names(url: str) -> set[str]:
    eng = make_engine(url)
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def _schema_diffs(url: str) -> list:
    """compare_metadata with the options env.py uses, plus server defaults; dialect noise removed."""
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diffs = compare_metadata(ctx, t.metadata)
            return [d for d in diffs if not _sqlite_empty_string_default(eng.dialect.name, d)]
    finally:
        eng.dispose()


def _sqlite_empty_string_default(dialect: str, diff) -> bool:
    """A false positive of Alembic's SQLite default comparison, filtered precisely.

    ``server_default=""`` is created as ``region VARCHAR(50) DEFAULT '' NOT NULL`` (exactly the
    model). Alembic's SQLite comparison reflects that default as the text ``('')`` and compares
    it with the model's empty string, which renders as nothing, so every such column is reported
    as ``modify_default``. Only that case is dropped: SQLite, ``modify_default``, model default
    ``''`` and a reflected default that is the quoted empty string.
    """
    if dialect != "sqlite" or not isinstance(diff, list) or len(diff) != 1:
        return False
    op = diff[0]
    if op[0] != "modify_default":
        return False
    _, _, table, column, _, reflected, model = op
    reflected_text = str(getattr(reflected.arg, "text", reflected.arg))
    return (getattr(model, "arg", None) == "" and reflected_text in ("''", "('')")
            and t.metadata.tables[table].c[column].server_default.arg == "")


def test_upgrade_downgrade_upgrade_round_trip(empty_db_url):
    assert _table_names(empty_db_url) == set()

    upgrade(empty_db_url)
    assert _table_names(empty_db_url) == MODEL_TABLES | {"alembic_version"}

    downgrade(empty_db_url, "base")
    # Alembic keeps its bookkeeping table (now empty); every table of ours is gone.
    assert _table_names(empty_db_url) == {"alembic_version"}
    eng = make_engine(empty_db_url)
    try:
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 0
            if eng.dialect.name == "postgresql":
                left = conn.execute(text(
                    "SELECT relname, relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND relname NOT LIKE 'alembic_version%'")).all()
                assert left == [], f"downgrade left relations behind: {left}"
            else:
                left = conn.execute(text(
                    "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                    "AND tbl_name <> 'alembic_version'")).all()
                assert left == [], f"downgrade left objects behind: {left}"
    finally:
        eng.dispose()

    upgrade(empty_db_url)
    assert _table_names(empty_db_url) == MODEL_TABLES | {"alembic_version"}
    eng = make_engine(empty_db_url)
    try:
        with eng.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    finally:
        eng.dispose()


def test_migrated_schema_matches_models(db_url, request):
    assert _schema_diffs(db_url) == []


def test_migrated_foreign_keys_match_models(db_url, request):
    """Names of every FK, table by table (the precise form of the diff above)."""
    eng = make_engine(db_url)
    try:
        insp = inspect(eng)
        for name, table in t.metadata.tables.items():
            want = {(tuple(fk.column_keys), fk.referred_table.name) for fk in table.foreign_key_constraints}
            have = {(tuple(fk["constrained_columns"]), fk["referred_table"]) for fk in insp.get_foreign_keys(name)}
            assert have == want, f"{name}: missing {want - have}, extra {have - want}"
    finally:
        eng.dispose()


def test_migrated_check_constraints_match_models(db_url):
    """compare_metadata does not look at CHECK constraints; compare their names directly."""
    eng = make_engine(db_url)
    try:
        insp = inspect(eng)
        for name, table in t.metadata.tables.items():
            want = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
            have = {c["name"] for c in insp.get_check_constraints(name)}
            assert have == want, f"{name}: missing {sorted(want - have)}, not in the models {sorted(have - want)}"
    finally:
        eng.dispose()


def test_seed_policies_writes_stage_probabilities_gates_and_system_user(db_url):
    eng = make_engine(db_url)
    sf = session_factory(eng)
    try:
        with SqlAlchemyUnitOfWork(sf) as uow:
            assert seed_policies(uow) is True
            uow.commit()
        with SqlAlchemyUnitOfWork(sf) as uow:
            assert seed_policies(uow) is False  # idempotent: nothing left to write
            uow.commit()
        with eng.connect() as conn:
            stages = dict(conn.execute(select(t.stage_policies.c.stage, t.stage_policies.c.probability)).all())
            assert stages == STAGE_PROBABILITIES
            gates = {r.kind: r for r in conn.execute(select(t.gate_policies))}
            assert set(gates) == {g["kind"] for g in GATES}
            for g in GATES:
                row = gates[g["kind"]]
                assert (row.from_stage, row.to_stage) == (g["from_stage"], g["to_stage"])
                assert row.preconditions == g["preconditions"]
                assert row.steps == g["steps"]
                assert row.active is True
            system = conn.execute(select(t.users).where(t.users.c.email == SYSTEM_EMAIL)).one()
            roles = conn.execute(select(t.user_roles.c.role).where(t.user_roles.c.user_id == system.id)).scalars().all()
            assert roles == ["admin"]
            assert system.active is True
            assert conn.execute(select(t.users)).all() == [system]
    finally:
        eng.dispose()


def test_quotes_written_before_cpq_survive_the_cpq_migration(empty_db_url):
    """0001 → 0002 adds columns to quotes: rows that exist keep their values and get defaults."""
    upgrade(empty_db_url, "0001")
    eng = make_engine(empty_db_url)
    try:
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO users (id, email, name_en, locale, region, active) "
                              "VALUES (1, 'a@x.com', 'A', 'en', 'east', true)"))
            conn.execute(text("INSERT INTO accounts (id, name, name_norm, region, tier, owner_id, created_at, "
                              "updated_at) VALUES (1, 'Acme', 'acme', 'east', 'standard', 1, :t, :t)"),
                         {"t": "2026-01-01 00:00:00"})
            conn.execute(text("INSERT INTO opportunities (id, name, account_id, owner_id, amount, currency, region, "
                              "competitors, stage, probability, created_at, updated_at, stage_changed_at, version) "
                              "VALUES (1, 'Deal', 1, 1, 100, 'CNY', 'east', '[]', 'solution', 40, :t, :t, :t, 1)"),
                         {"t": "2026-01-01 00:00:00"})
            conn.execute(text("INSERT INTO quotes (opportunity_id, version, status, total, currency, created_at) "
                              "VALUES (1, 1, 'approved', 100, 'CNY', :t)"), {"t": "2026-01-01 00:00:00"})
        eng.dispose()
        upgrade(empty_db_url)
        with eng.connect() as conn:
            row = conn.execute(select(t.quotes)).one()
        assert (row.status, row.total, row.list_total, row.discount_pct, row.price_book_id) == (
            "approved", 100, 0, 0, None)
        with SqlAlchemyUnitOfWork(session_factory(eng)) as uow:
            assert uow.quotes.has_approved(1)  # ATB still sees it
    finally:
        eng.dispose()


# ------------------------------------------------------------------------------ 0003: contract execution


def _rows_by_table(url: str, tables: set[str]) -> dict[str, list]:
    """Every row of every table, as column → value in a stable order (the data a migration must keep)."""
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return {name: sorted((dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{name}"'))),
                                 key=lambda row: repr(sorted(row.items())))
                    for name in sorted(tables)}
    finally:
        eng.dispose()


def _gate_preconditions(url: str) -> dict[str, list[str]]:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return {r.kind: list(r.preconditions) for r in conn.execute(select(t.gate_policies))}
    finally:
        eng.dispose()


def _incentive_plans(url: str) -> list:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(select(
                t.incentive_plans.c.name, t.incentive_plans.c.pool_pct, t.incentive_plans.c.ar_pct,
                t.incentive_plans.c.sr_pct, t.incentive_plans.c.fr_pct, t.incentive_plans.c.active))]
    finally:
        eng.dispose()


def _seed_0002(url: str) -> tuple[int, int]:
    """What a live 0002 database holds: seeded policies (ATC as it was then, plus an admin's own
    precondition), the system user, a rep, and a deal in negotiate with an approved quote.
    Returns (the rep's user id, the deal's id)."""
    from datetime import datetime

    from domain.policy_defaults import DISCOUNT_BANDS

    at = datetime(2026, 3, 1, 9, 0)
    eng = make_engine(url)
    try:
        with eng.begin() as conn:
            system = conn.execute(t.users.insert().returning(t.users.c.id).values(
                email=SYSTEM_EMAIL, name_en="LTC system", locale="en", region="east", active=True)).scalar_one()
            rep = conn.execute(t.users.insert().returning(t.users.c.id).values(
                email="rita@x.example", name_en="Rita Rep", locale="en", region="east", active=True)).scalar_one()
            conn.execute(t.user_roles.insert(), [{"user_id": system, "role": "admin"},
                                                 {"user_id": rep, "role": "sales_rep"}])
            conn.execute(t.stage_policies.insert(), [{"stage": s, "probability": p}
                                                     for s, p in STAGE_PROBABILITIES.items()])
            gates = []
            for g in GATES:
                pre = [p for p in g["preconditions"] if p != "contract_under_review"]
                if g["kind"] == "ATC":  # an admin had added one of their own
                    pre.append("approved_quote")
                gates.append({**g, "preconditions": pre})
            conn.execute(t.gate_policies.insert(), gates)
            conn.execute(t.discount_bands.insert(), [
                {"priority": b["priority"], "label": b["label"], "max_discount_pct": b["max_discount_pct"],
                 "max_amount": b["max_amount"], "min_margin_pct": b["min_margin_pct"], "steps": b["steps"]}
                for b in DISCOUNT_BANDS])
            account = conn.execute(t.accounts.insert().returning(t.accounts.c.id).values(
                name="Acme Machining", name_norm="acme machining", region="east", owner_id=rep, created_at=at,
                updated_at=at)).scalar_one()
            opp = conn.execute(t.opportunities.insert().returning(t.opportunities.c.id).values(
                name="Line 3 MES", account_id=account, owner_id=rep, amount=500000, currency="CNY", region="east",
                competitors=[], stage="negotiate", probability=80, deliverability_signed_by=rep,
                deliverability_signed_at=at, created_at=at, updated_at=at, stage_changed_at=at,
                version=1)).scalar_one()
            conn.execute(t.quotes.insert().values(opportunity_id=opp, version=1, status="approved", total=500000,
                                                  list_total=500000, currency="CNY", created_at=at))
        return rep, opp
    finally:
        eng.dispose()


def test_contracts_migration_keeps_seeded_policies_and_data(empty_db_url):
    """0002 → 0003 on a database in use: nothing is lost, ATC also needs the contract under review,
    the default incentive plan is there; 0003 → 0002 → 0003 again changes nothing twice."""
    from decimal import Decimal

    from domain.actor import Actor
    from domain.errors import ValidationFailed
    from domain.policy_defaults import INCENTIVE_PLAN
    from domain.services import approvals

    url = empty_db_url
    upgrade(url, "0002")
    tables_0002 = _table_names(url) - {"alembic_version"}
    assert not tables_0002 & {"contracts", "invoices", "payments", "incentive_plans"}

    # An unseeded database gets no plan from the migration (seed_policies writes it with the rest).
    upgrade(url)
    assert _incentive_plans(url) == []
    downgrade(url, "0002")
    assert _table_names(url) - {"alembic_version"} == tables_0002

    rep, opp = _seed_0002(url)
    before = _rows_by_table(url, tables_0002)
    assert _gate_preconditions(url)["ATC"] == ["deliverability_signed", "approved_quote"]
    plan = (INCENTIVE_PLAN["name"], Decimal("2.00"), Decimal("40.00"), Decimal("30.00"), Decimal("30.00"), True)

    def assert_at_head() -> None:
        assert _table_names(url) == MODEL_TABLES | {"alembic_version"}
        pre = _gate_preconditions(url)
        assert pre["ATC"] == ["deliverability_signed", "approved_quote", "contract_under_review"]
        assert {k: v for k, v in pre.items() if k != "ATC"} == {
            g["kind"]: g["preconditions"] for g in GATES if g["kind"] != "ATC"}
        assert _incentive_plans(url) == [plan]
        after = _rows_by_table(url, tables_0002)
        gate_rows = "gate_policies"
        # Columns added later (with their defaults) are not data the older schema had: compare the old ones.
        kept = {k: sorted(({c: row[c] for c in (rows_before[0] if rows_before else {})} for row in after[k]),
                          key=lambda row: repr(sorted(row.items())))
                for k, rows_before in before.items() if k != gate_rows}
        assert kept == {k: v for k, v in before.items() if k != gate_rows}
        assert len(after[gate_rows]) == len(before[gate_rows])

    upgrade(url)
    assert_at_head()
    eng = make_engine(url)
    try:
        sf = session_factory(eng)
        with SqlAlchemyUnitOfWork(sf) as uow:  # the migrated database is as seeded as a fresh one
            assert seed_policies(uow) is False
        # ... and the gate policy is live: ATC on the deal now waits for its contract.
        with SqlAlchemyUnitOfWork(sf) as uow:
            try:
                approvals.request_gate(opp, "ATC", actor=Actor(rep, "cli"), uow=uow)
            except ValidationFailed as exc:
                assert exc.missing == ["a contract drafted from the accepted quote and submitted for review"]
            else:
                raise AssertionError("ATC was requested without a contract under review")
    finally:
        eng.dispose()

    downgrade(url, "0002")
    assert _table_names(url) - {"alembic_version"} == tables_0002
    assert _rows_by_table(url, tables_0002) == before  # ATC's preconditions as they were, too
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0002"
    finally:
        eng.dispose()

    upgrade(url)
    assert_at_head()  # appended once, one plan: the second upgrade repeats nothing


def test_the_pipeline_rollup_triggers_exist_at_head(db_url):
    """A later migration that rebuilds `opportunities` on SQLite drops its triggers: it must make them again."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                names = set(conn.scalars(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'opportunities'::regclass "
                                              "AND NOT tgisinternal")))
                assert {"trg_pipeline_rollup"} <= names
            else:
                names = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                              "AND tbl_name = 'opportunities'")))
                assert {"trg_pipeline_rollup_insert", "trg_pipeline_rollup_update",
                        "trg_pipeline_rollup_delete"} <= names
    finally:
        engine.dispose()
