"""The schema. The database backs every invariant it can: CHECK, UNIQUE, FK."""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from domain.model.confirmations import ACTION_STATUSES
from domain.model.opportunities import CLOSED_STAGES
from domain.model.vocab import (
    CURRENCIES,
    ActivityKind,
    ApprovalKind,
    ApprovalStatus,
    ApproverScope,
    Authority,
    DecisionChainRole,
    LeadSource,
    LeadStatus,
    Locale,
    MemberRole,
    Outcome,
    Role,
    Stage,
    StepStatus,
    Tier,
    Timeline,
    values,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def one_of(column: str, allowed: list[str] | tuple[str, ...], name: str | None = None) -> CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in allowed)
    return CheckConstraint(f"{column} IN ({quoted})", name=name or f"{column}_valid")


MONEY = Numeric(18, 2)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("region", String(50), nullable=False),
    Column("manager_id", Integer, ForeignKey("users.id", use_alter=True), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(200), nullable=False, unique=True),
    Column("name_en", String(100), nullable=False),
    Column("name_zh", String(100)),
    Column("locale", String(5), nullable=False, server_default="zh"),
    Column("region", String(50), nullable=False, server_default=""),
    Column("team_id", Integer, ForeignKey("teams.id")),
    Column("manager_id", Integer, ForeignKey("users.id")),
    Column("slack_user_id", String(50), unique=True),
    Column("wecom_userid", String(64), unique=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    one_of("locale", values(Locale)),
    CheckConstraint("manager_id IS NULL OR manager_id <> id", name="not_own_manager"),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(30), primary_key=True),
    one_of("role", values(Role)),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("name_norm", String(200), nullable=False, unique=True),
    Column("industry", String(100)),
    Column("region", String(50), nullable=False, server_default=""),
    Column("tier", String(20), nullable=False, server_default="standard"),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    one_of("tier", values(Tier)),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("title", String(100)),
    Column("email", String(200)),
    Column("phone", String(50)),
    Column("decision_role", String(30), nullable=False),
    Column("relationship", Integer, nullable=False, server_default="2"),
    Column("created_at", DateTime, nullable=False),
    one_of("decision_role", values(DecisionChainRole)),
    CheckConstraint("relationship BETWEEN 1 AND 5", name="relationship_range"),
)

leads = Table(
    "leads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(20), nullable=False),
    Column("company", String(200), nullable=False),
    Column("contact_name", String(100), nullable=False),
    Column("title", String(100)),
    Column("email", String(200)),
    Column("phone", String(50)),
    Column("region", String(50), nullable=False, server_default=""),
    Column("need", Text),
    Column("budget", MONEY),
    Column("currency", String(3), nullable=False),
    Column("timeline", String(20), nullable=False, server_default="unknown"),
    Column("authority", String(20), nullable=False, server_default="unknown"),
    Column("notes", Text),
    Column("status", String(20), nullable=False, server_default="new"),
    Column("disqualify_reason", Text),
    Column("owner_id", Integer, ForeignKey("users.id"), index=True),
    Column("score", Integer, nullable=False, server_default="0"),
    Column("score_reasons", JSON, nullable=False),
    # Normalised identities back de-duplication: two leads can never share one.
    Column("email_norm", String(200), unique=True),
    Column("phone_norm", String(30), unique=True),
    Column("identity_norm", String(300), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id")),
    Column("contact_id", Integer, ForeignKey("contacts.id")),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id", use_alter=True)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    one_of("source", values(LeadSource)),
    one_of("status", values(LeadStatus)),
    one_of("timeline", values(Timeline)),
    one_of("authority", values(Authority)),
    one_of("currency", CURRENCIES),
    CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
    CheckConstraint("budget IS NULL OR budget >= 0", name="budget_positive"),
    CheckConstraint(
        "(status = 'disqualified') = (disqualify_reason IS NOT NULL)", name="disqualify_reason"
    ),
    CheckConstraint(
        "status <> 'converted' OR opportunity_id IS NOT NULL", name="converted_has_opportunity"
    ),
    Index("ix_leads_owner_status", "owner_id", "status"),
)

_closed = ", ".join(f"'{s.value}'" for s in CLOSED_STAGES)

opportunities = Table(
    "opportunities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("region", String(50), nullable=False, server_default=""),
    Column("expected_close_date", Date),
    Column("competitors", JSON, nullable=False),
    Column("next_step", Text),
    Column("customer_need", Text),
    Column("budget", MONEY),
    Column("solution_summary", Text),
    Column("delivery_plan", Text),
    Column("deliverability_signed_by", Integer, ForeignKey("users.id")),
    Column("deliverability_signed_at", DateTime),
    Column("stage", String(20), nullable=False, server_default="qualify"),
    Column("probability", Integer, nullable=False),
    Column("close_reason", Text),
    Column("lead_id", Integer, ForeignKey("leads.id")),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("stage_changed_at", DateTime, nullable=False),
    Column("version", Integer, nullable=False),
    # A bit per stage the deal has history for; kept by triggers on stage_history (migration 0015).
    Column("reached_stages", Integer, nullable=False, server_default="0"),
    one_of("stage", values(Stage)),
    one_of("currency", CURRENCIES),
    CheckConstraint("amount >= 0", name="amount_positive"),
    CheckConstraint("budget IS NULL OR budget >= 0", name="budget_positive"),
    CheckConstraint("probability BETWEEN 0 AND 100", name="probability_range"),
    CheckConstraint(
        "stage NOT IN ('lost', 'abandoned') OR close_reason IS NOT NULL", name="close_reason"
    ),
    CheckConstraint(
        f"stage NOT IN ({_closed}) OR probability IN (0, 100)", name="closed_probability"
    ),
    Index("ix_opportunities_stage_owner", "stage", "owner_id"),
)

opportunity_members = Table(
    "opportunity_members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("role", String(30), nullable=False),
    one_of("role", values(MemberRole)),
    UniqueConstraint("opportunity_id", "user_id", "role"),
    # One SR and one FR seat per deal.
    Index(
        "uq_opportunity_members_triangle_seat",
        "opportunity_id",
        "role",
        unique=True,
        sqlite_where=text("role IN ('SR', 'FR')"),
        postgresql_where=text("role IN ('SR', 'FR')"),
    ),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id", ondelete="CASCADE"), nullable=False),
    Column("from_stage", String(20)),
    Column("to_stage", String(20), nullable=False),
    Column("probability", Integer, nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Column("changed_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("approval_id", Integer, ForeignKey("approval_requests.id")),
    Column("reason", Text),
    # The spell this row ends (migration 0011): microseconds since the deal's previous row in
    # (changed_at, id) order, i.e. in from_stage; NULL on a deal's first row.
    Column("spell_us", BigInteger),
    # The changed_at of the deal's first row (its own on the first row): days to win from the won row.
    Column("history_started_at", DateTime),
    one_of("to_stage", values(Stage), name="to_stage_valid"),
    CheckConstraint(
        "from_stage IS NULL OR from_stage IN ({})".format(", ".join(f"'{s}'" for s in values(Stage))),
        name="from_stage_valid",
    ),
    Index("ix_stage_history_opportunity_changed", "opportunity_id", "changed_at"),
    # Spells that ended in a period, per stage (cycle time); the deal for the owner filter.
    Index("ix_stage_history_spells", "from_stage", "changed_at", postgresql_include=["spell_us", "opportunity_id"],
          sqlite_where=text("spell_us IS NOT NULL"), postgresql_where=text("spell_us IS NOT NULL")),
    # Deals won in a period with when their history started (days to win).
    Index("ix_stage_history_won", "changed_at", postgresql_include=["opportunity_id", "history_started_at"],
          sqlite_where=text("to_stage = 'won'"), postgresql_where=text("to_stage = 'won'")),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("lead_id", Integer, ForeignKey("leads.id"), index=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True),
    Column("contact_id", Integer, ForeignKey("contacts.id")),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id"), index=True),
    one_of("kind", values(ActivityKind)),
    CheckConstraint(
        "lead_id IS NOT NULL OR account_id IS NOT NULL OR opportunity_id IS NOT NULL",
        name="has_subject",
    ),
)

stage_policies = Table(
    "stage_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("stage", String(20), nullable=False, unique=True),
    Column("probability", Integer, nullable=False),
    one_of("stage", values(Stage)),
    CheckConstraint("probability BETWEEN 0 AND 100", name="probability_range"),
)

gate_policies = Table(
    "gate_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("from_stage", String(20), nullable=False),
    Column("to_stage", String(20), nullable=False),
    Column("preconditions", JSON, nullable=False),
    Column("steps", JSON, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    one_of("kind", values(ApprovalKind)),
    one_of("from_stage", values(Stage), name="from_stage_valid"),
    one_of("to_stage", values(Stage), name="to_stage_valid"),
    UniqueConstraint("from_stage", "to_stage"),
    UniqueConstraint("kind"),
)

assignment_rules = Table(
    "assignment_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("priority", Integer, nullable=False),
    Column("region", String(50), nullable=False, server_default="*"),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False),
    Column("max_open_leads", Integer, nullable=False),
    Column("last_assigned_user_id", Integer, ForeignKey("users.id")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    CheckConstraint("max_open_leads > 0", name="cap_positive"),
)

approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("subject_type", String(30), nullable=False),
    Column("subject_id", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("requested_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("current_step", Integer, nullable=False),
    Column("from_stage", String(20)),
    Column("to_stage", String(20)),
    Column("context", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime),
    Column("closed_at", DateTime),
    one_of("kind", values(ApprovalKind)),
    one_of("status", values(ApprovalStatus)),
    CheckConstraint("(status = 'pending') = (closed_at IS NULL)", name="closed_when_decided"),
    Index("ix_approval_requests_subject", "subject_type", "subject_id"),
    Index("ix_approval_requests_status", "status"),
    # At most one open request of a kind per subject.
    Index(
        "uq_approval_requests_one_pending",
        "subject_type",
        "subject_id",
        "kind",
        unique=True,
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

approval_steps = Table(
    "approval_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("approval_requests.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role", String(30), nullable=False),
    Column("scope", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    one_of("role", values(Role)),
    one_of("scope", values(ApproverScope)),
    one_of("status", values(StepStatus)),
    UniqueConstraint("request_id", "seq"),
)

approval_decisions = Table(
    "approval_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("approval_requests.id", ondelete="CASCADE"), nullable=False),
    Column("step_seq", Integer, nullable=False),
    Column("decider_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("comment", Text),
    Column("channel", String(10), nullable=False),
    Column("via_agent", Boolean, nullable=False),
    Column("decided_at", DateTime, nullable=False),
    one_of("outcome", values(Outcome)),
    # Exactly one decision per step, however many clicks race for it.
    UniqueConstraint("request_id", "step_seq"),
    CheckConstraint("outcome NOT IN ('reject', 'revise') OR comment IS NOT NULL", name="reject_has_reason"),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sku", String(40), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("unit", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("cost", MONEY, nullable=False),
    Column("floor_price", MONEY, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    one_of("currency", CURRENCIES),
    CheckConstraint("cost >= 0", name="cost_positive"),
    CheckConstraint("floor_price >= 0", name="floor_positive"),
)

price_books = Table(
    "price_books",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("region", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    one_of("currency", CURRENCIES),
    UniqueConstraint("region", "currency"),
)

price_book_entries = Table(
    "price_book_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("price_book_id", Integer, ForeignKey("price_books.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("list_price", MONEY, nullable=False),
    CheckConstraint("list_price >= 0", name="list_price_positive"),
    UniqueConstraint("price_book_id", "product_id"),
)

discount_bands = Table(
    "discount_bands",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("priority", Integer, nullable=False),
    Column("label", String(100), nullable=False, server_default=""),
    Column("max_discount_pct", Numeric(5, 2), nullable=False),
    Column("max_amount", MONEY),
    Column("min_margin_pct", Numeric(6, 2)),
    Column("steps", JSON, nullable=False),
    CheckConstraint("max_discount_pct BETWEEN 0 AND 100", name="discount_range"),
)

QUOTE_STATUSES = ["draft", "pending_approval", "approved", "rejected", "sent", "accepted", "expired", "superseded"]

quotes = Table(
    "quotes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("total", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("price_book_id", Integer, ForeignKey("price_books.id")),
    Column("list_total", MONEY, nullable=False, server_default="0"),
    Column("cost_total", MONEY, nullable=False, server_default="0"),
    Column("discount_pct", Numeric(5, 2), nullable=False, server_default="0"),
    Column("margin_pct", Numeric(7, 2)),
    Column("valid_until", Date),
    Column("created_by", Integer, ForeignKey("users.id")),
    Column("approval_id", Integer, ForeignKey("approval_requests.id")),
    Column("approved_discount_pct", Numeric(5, 2)),
    Column("approved_margin_pct", Numeric(7, 2)),
    Column("submitted_at", DateTime),
    Column("sent_at", DateTime),
    Column("accepted_at", DateTime),
    one_of("status", QUOTE_STATUSES),
    one_of("currency", CURRENCIES),
    UniqueConstraint("opportunity_id", "version"),
    CheckConstraint("total >= 0 AND list_total >= 0 AND cost_total >= 0", name="totals_positive"),
    CheckConstraint("discount_pct BETWEEN 0 AND 100", name="discount_range"),
    CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
)

quote_lines = Table(
    "quote_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("quote_id", Integer, ForeignKey("quotes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("sku", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("quantity", Numeric(12, 2), nullable=False),
    Column("list_price", MONEY, nullable=False),
    Column("discount_pct", Numeric(5, 2), nullable=False),
    Column("unit_cost", MONEY, nullable=False),
    Column("floor_price", MONEY, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("discount_pct BETWEEN 0 AND 100", name="discount_range"),
    CheckConstraint("list_price >= 0", name="list_price_positive"),
    UniqueConstraint("quote_id", "position"),
)

CONTRACT_STATUSES = ["draft", "under_review", "signed", "executing", "completed", "closed"]
TRIGGERS = ["signing", "delivery_acceptance", "final_acceptance", "date"]

# A per-name counter for gap-free human numbers (contracts, orders, invoices, payments).
number_sequences = Table(
    "number_sequences",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", Integer, nullable=False),
)

contracts = Table(
    "contracts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id"), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("quote_id", Integer, ForeignKey("quotes.id"), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("value", MONEY, nullable=False),
    Column("status", String(20), nullable=False),
    Column("payment_terms_days", Integer, nullable=False),
    Column("invoiced_total", MONEY, nullable=False, server_default="0"),
    Column("paid_total", MONEY, nullable=False, server_default="0"),
    Column("recognised_total", MONEY, nullable=False, server_default="0"),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("submitted_at", DateTime),
    Column("signed_at", DateTime),
    Column("completed_at", DateTime),
    Column("closed_at", DateTime),
    Column("version", Integer, nullable=False, server_default="1"),
    one_of("status", CONTRACT_STATUSES),
    one_of("currency", CURRENCIES),
    CheckConstraint("value > 0", name="value_positive"),
    # paid ≤ invoiced ≤ contract value, held by the database whatever the code does.
    CheckConstraint("paid_total >= 0 AND paid_total <= invoiced_total AND invoiced_total <= value",
                    name="paid_le_invoiced_le_value"),
    CheckConstraint("recognised_total >= 0 AND recognised_total <= value", name="recognised_range"),
    CheckConstraint("payment_terms_days BETWEEN 0 AND 365", name="terms_range"),
    CheckConstraint("status IN ('draft', 'under_review') OR signed_at IS NOT NULL", name="signed_has_time"),
    # Target of the (id, currency) foreign keys: one currency per contract, down to every invoice.
    UniqueConstraint("id", "currency", name="uq_contracts_id_currency"),
)

contract_milestones = Table(
    "contract_milestones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("contract_id", Integer, ForeignKey("contracts.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("label", String(100), nullable=False),
    Column("pct", Numeric(5, 2), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("trigger", String(30), nullable=False),
    Column("due_date", Date),
    Column("triggered_on", Date),
    one_of("trigger", TRIGGERS),
    CheckConstraint("pct > 0 AND pct <= 100", name="pct_range"),
    CheckConstraint("amount >= 0", name="amount_positive"),
    CheckConstraint("trigger <> 'date' OR due_date IS NOT NULL", name="date_trigger_has_date"),
    UniqueConstraint("contract_id", "seq"),
)

change_orders = Table(
    "change_orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("contract_id", Integer, ForeignKey("contracts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("old_value", MONEY, nullable=False),
    Column("new_value", MONEY, nullable=False),
    Column("old_plan", JSON, nullable=False),
    Column("new_plan", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("requested_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("approval_id", Integer, ForeignKey("approval_requests.id")),
    Column("decided_at", DateTime),
    one_of("status", ["pending", "approved", "rejected", "cancelled"]),
    CheckConstraint("new_value > 0", name="value_positive"),
    Index("uq_change_orders_one_pending", "contract_id", unique=True,
          sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime),
    one_of("status", ["open", "delivered"]),
)

delivery_milestones = Table(
    "delivery_milestones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("planned_date", Date, nullable=False),
    Column("revenue_pct", Numeric(5, 2), nullable=False),
    Column("status", String(20), nullable=False),
    Column("done_on", Date),
    Column("accepted_on", Date),
    Column("certificate_ref", String(100)),
    one_of("kind", ["delivery", "final_acceptance"]),
    one_of("status", ["planned", "done", "accepted"]),
    CheckConstraint("revenue_pct >= 0 AND revenue_pct <= 100", name="revenue_pct_range"),
    CheckConstraint("status = 'planned' OR done_on IS NOT NULL", name="done_has_date"),
    CheckConstraint("status <> 'accepted' OR (accepted_on IS NOT NULL AND certificate_ref IS NOT NULL)",
                    name="accepted_has_certificate"),
    CheckConstraint("accepted_on IS NULL OR accepted_on >= done_on", name="accepted_after_done"),
    UniqueConstraint("order_id", "seq"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("contract_id", Integer, nullable=False, index=True),
    Column("milestone_id", Integer, ForeignKey("contract_milestones.id"), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("paid_amount", MONEY, nullable=False, server_default="0"),
    Column("status", String(20), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("dunning_level", Integer, nullable=False, server_default="0"),
    Column("last_dunned_on", Date),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("void_reason", Text),
    Column("voided_by", Integer, ForeignKey("users.id")),
    Column("voided_at", DateTime),
    # The owner (AR) of the deal behind the contract: a copy kept exact by triggers (migration 0013),
    # so receivables questions need no join to contracts and opportunities. Never written by the code.
    Column("owner_id", Integer),
    one_of("status", ["issued", "partially_paid", "paid", "void"]),
    ForeignKeyConstraint(["contract_id", "currency"], ["contracts.id", "contracts.currency"],
                         name="fk_invoices_contract_currency"),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("paid_amount >= 0 AND paid_amount <= amount", name="paid_le_amount"),
    CheckConstraint("due_on >= issued_on", name="due_after_issue"),
    CheckConstraint("dunning_level BETWEEN 0 AND 4", name="dunning_range"),
    CheckConstraint(
        "(status = 'issued' AND paid_amount = 0) OR (status = 'partially_paid' AND paid_amount > 0 "
        "AND paid_amount < amount) OR (status = 'paid' AND paid_amount = amount) "
        "OR (status = 'void' AND paid_amount = 0 AND void_reason IS NOT NULL)", name="status_matches_paid"),
    UniqueConstraint("id", "currency", name="uq_invoices_id_currency"),
    # One live invoice per payment-plan milestone; a voided one may be issued again.
    Index("uq_invoices_one_per_milestone", "milestone_id", unique=True,
          sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    # Receivables analytics (migration 0013): open balances per AR, issued and due in a period (by date
    # for everyone's numbers, by owner then date for a team's).
    Index("ix_invoices_owner_open", "owner_id", "due_on",
          postgresql_include=["currency", "amount", "paid_amount", "issued_on"],
          sqlite_where=text("status <> 'void' AND amount > paid_amount"),
          postgresql_where=text("status <> 'void' AND amount > paid_amount")),
    Index("ix_invoices_issued_owner", "issued_on", postgresql_include=["owner_id", "currency", "amount"],
          sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    Index("ix_invoices_owner_issued", "owner_id", "issued_on", postgresql_include=["currency", "amount"],
          sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    Index("ix_invoices_due_owner", "due_on", postgresql_include=["owner_id", "currency", "amount", "paid_amount"],
          sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    Index("ix_invoices_owner_due", "owner_id", "due_on", postgresql_include=["currency", "amount", "paid_amount"],
          sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("received_on", Date, nullable=False),
    Column("method", String(20), nullable=False),
    Column("bank_ref", String(100), nullable=False),  # normalised: trimmed, upper case
    Column("status", String(20), nullable=False),
    Column("allocated", MONEY, nullable=False, server_default="0"),
    Column("unapplied", MONEY, nullable=False, server_default="0"),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("confirmed_by", Integer, ForeignKey("users.id")),
    Column("confirmed_at", DateTime),
    Column("note", Text),
    Column("contract_id", Integer, ForeignKey("contracts.id")),  # the contract the payer meant, if said
    one_of("status", ["proposed", "confirmed", "rejected"]),
    one_of("method", ["bank_transfer", "acceptance_bill", "check", "card", "cash", "other"]),
    one_of("currency", CURRENCIES),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("allocated >= 0 AND unapplied >= 0", name="parts_positive"),
    # Σ allocations + unapplied credit = amount once the money is confirmed; nothing before.
    # (ABS < half a cent: SQLite compares these as floating point.)
    CheckConstraint("(status = 'confirmed' AND ABS(allocated + unapplied - amount) < 0.005) "
                    "OR (status <> 'confirmed' AND allocated = 0 AND unapplied = 0)", name="parts_add_up"),
    UniqueConstraint("id", "currency", name="uq_payments_id_currency"),
    # One live payment per bank line; a rejected proposal frees its reference for the real posting.
    Index("uq_payments_bank_ref", "bank_ref", unique=True,
          sqlite_where=text("status <> 'rejected'"), postgresql_where=text("status <> 'rejected'")),
)

payment_allocations = Table(
    "payment_allocations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payment_id", Integer, nullable=False),
    Column("invoice_id", Integer, nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("allocated_at", DateTime, nullable=False),
    Column("allocated_by", Integer, ForeignKey("users.id"), nullable=False),
    # Copies kept exact by triggers (migration 0013), never written by the code: the invoice's
    # owner_id, and the payment's received_on while it is confirmed (NULL otherwise).
    Column("owner_id", Integer),
    Column("collected_on", Date),
    # Same currency on both ends, by construction.
    ForeignKeyConstraint(["payment_id", "currency"], ["payments.id", "payments.currency"],
                         name="fk_payment_allocations_payment_currency", ondelete="CASCADE"),
    ForeignKeyConstraint(["invoice_id", "currency"], ["invoices.id", "invoices.currency"],
                         name="fk_payment_allocations_invoice_currency"),
    CheckConstraint("amount > 0", name="amount_positive"),
    UniqueConstraint("payment_id", "invoice_id"),
    # Collected in a period (migration 0013): by date for everyone's numbers, by owner then date for a team's.
    Index("ix_payment_allocations_collected_on", "collected_on", postgresql_include=["owner_id", "currency", "amount"]),
    Index("ix_payment_allocations_owner_collected", "owner_id", "collected_on",
          postgresql_include=["currency", "amount"]),
)

promises_to_pay = Table(
    "promises_to_pay",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("promised_on", Date, nullable=False),
    Column("paid_before", MONEY, nullable=False),
    Column("recorded_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("note", Text),
    CheckConstraint("amount > 0", name="amount_positive"),
)

revenue_entries = Table(
    "revenue_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("recognised_on", Date, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("recorded_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("delivery_milestone_id", Integer, ForeignKey("delivery_milestones.id")),
    Column("change_order_id", Integer, ForeignKey("change_orders.id")),
)

# Sales targets per person or team and period (amount in the reporting currency).
targets = Table(
    "targets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id")),
    Column("team_id", Integer, ForeignKey("teams.id")),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),  # exclusive
    Column("label", String(20), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("set_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("set_at", DateTime, nullable=False),
    CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="one_holder"),
    CheckConstraint("period_end > period_start", name="period_order"),
    CheckConstraint("amount >= 0", name="amount_positive"),
    # One target per holder and period: setting it again replaces the amount.
    Index("uq_targets_user_period", "user_id", "period_start", "period_end", unique=True,
          sqlite_where=text("user_id IS NOT NULL"), postgresql_where=text("user_id IS NOT NULL")),
    Index("uq_targets_team_period", "team_id", "period_start", "period_end", unique=True,
          sqlite_where=text("team_id IS NOT NULL"), postgresql_where=text("team_id IS NOT NULL")),
)

# Rollup of opportunities for analytics, kept by database triggers on every insert, update and
# delete (migration 0009), so a company-wide pipeline question reads thousands of rows, not
# millions. month = expected close month for open stages ("" when none), close month for closed.
pipeline_rollup = Table(
    "pipeline_rollup",
    metadata,
    Column("owner_id", Integer, primary_key=True),
    Column("stage", String(20), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("region", String(50), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("amount", Numeric(20, 2), nullable=False),
    Column("weighted", Numeric(24, 4), nullable=False),  # Σ amount × probability / 100, in the deal currency
)

# The open pipeline by product (migration 0012; triggers on opportunities, quotes and quote_lines
# keep both exact). One row per open deal and product of its current quote (product_id 0: the deal
# has no current quote, its own amount counts under "—"): what the deal adds, in the quote's currency.
product_pipeline_deals = Table(
    "product_pipeline_deals",
    metadata,
    Column("opportunity_id", Integer, primary_key=True),
    Column("product_id", Integer, primary_key=True),
    Column("owner_id", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("month", String(7), nullable=False),  # of expected_close_date, "" when none
    Column("amount", Numeric(32, 8), nullable=False),  # Σ quantity × list_price × (1 − discount_pct / 100)
    Column("weighted", Numeric(34, 10), nullable=False),  # amount × probability / 100
    Index("ix_product_pipeline_deals_owner_id", "owner_id"),
)

# The same summed over every owner, in 16 stripes (owner_id % 16): writers of a month wait per stripe.
product_pipeline_rollup = Table(
    "product_pipeline_rollup",
    metadata,
    Column("stripe", Integer, primary_key=True),
    Column("product_id", Integer, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("n", Integer, nullable=False),  # deals
    Column("amount", Numeric(32, 8), nullable=False),
    Column("weighted", Numeric(34, 10), nullable=False),
)

incentive_plans = Table(
    "incentive_plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("pool_pct", Numeric(5, 2), nullable=False),
    Column("ar_pct", Numeric(5, 2), nullable=False),
    Column("sr_pct", Numeric(5, 2), nullable=False),
    Column("fr_pct", Numeric(5, 2), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    CheckConstraint("pool_pct >= 0 AND pool_pct <= 100", name="pool_range"),
    CheckConstraint("ar_pct >= 0 AND sr_pct >= 0 AND fr_pct >= 0 AND ABS(ar_pct + sr_pct + fr_pct - 100) < 0.005",
                    name="weights_add_up"),
)

contributions = Table(
    "contributions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("role", String(2), nullable=False),
    Column("share_pct", Numeric(5, 2), nullable=False),
    Column("recorded_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("note", Text),
    one_of("role", ["AR", "SR", "FR"]),
    CheckConstraint("share_pct > 0 AND share_pct <= 100", name="share_range"),
    UniqueConstraint("contract_id", "user_id", "role"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("via_agent", Boolean, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("entity", String(40), nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("action", String(60), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    one_of("channel", ["slack", "wecom", "api", "cli", "system"]),
    Index("ix_audit_log_entity", "entity", "entity_id"),
)

pending_actions = Table(
    "pending_actions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("tool", String(60), nullable=False),
    Column("args", JSON, nullable=False),
    Column("summary", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("status", String(12), nullable=False, server_default="pending"),
    Column("decided_at", DateTime),
    one_of("status", ACTION_STATUSES),
    CheckConstraint("expires_at > created_at", name="expiry_after_creation"),
    CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"),
)

# LangGraph checkpoints (conversation memory per chat thread), on the app database.
agent_checkpoints = Table(
    "agent_checkpoints",
    metadata,
    Column("thread_id", String(200), primary_key=True),
    Column("checkpoint_ns", String(200), primary_key=True, server_default=""),
    Column("checkpoint_id", String(64), primary_key=True),
    Column("parent_checkpoint_id", String(64)),
    Column("type", String(40), nullable=False),
    Column("checkpoint", LargeBinary, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

agent_checkpoint_writes = Table(
    "agent_checkpoint_writes",
    metadata,
    Column("thread_id", String(200), primary_key=True),
    Column("checkpoint_ns", String(200), primary_key=True, server_default=""),
    Column("checkpoint_id", String(64), primary_key=True),
    Column("task_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("channel", String(200), nullable=False),
    Column("type", String(40), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("task_path", String(400), nullable=False, server_default=""),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("topic", String(60), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("available_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("dispatched_at", DateTime),
    Column("last_error", Text),
    Index("ix_outbox_pending", "dispatched_at", "available_at"),
)

# Slack event ids already taken in: retries and duplicate deliveries are processed once, across replicas.
slack_events = Table(
    "slack_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("received_at", DateTime, nullable=False),
)

# WeCom callbacks already taken in (MsgId, or TaskId + EventKey, or sender + time for events): WeCom
# retries a callback it got no answer for within 5 s.
wecom_callbacks = Table(
    "wecom_callbacks",
    metadata,
    Column("dedup_key", String(200), primary_key=True),
    Column("received_at", DateTime, nullable=False),
)

CHAT_SURFACES = ("slack", "wecom")

# Approval cards posted to people in chat, one per approver (or escalation manager) per surface:
# when the request is decided or closed, every copy is updated in place.
chat_cards = Table(
    "chat_cards",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("surface", String(10), nullable=False),
    Column("approval_id", Integer, ForeignKey("approval_requests.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("channel", String(64), nullable=False),  # Slack: the DM channel; WeCom: the userid
    Column("message_id", String(128), nullable=False),  # Slack: the message ts; WeCom: the card's task id
    Column("posted_at", DateTime, nullable=False),
    # WeCom only: the unused code that lets us update this card once (from the send or the latest click).
    Column("response_code", String(255)),
    one_of("surface", CHAT_SURFACES),
    UniqueConstraint("surface", "approval_id", "user_id"),
    Index("ix_chat_cards_approval", "approval_id"),
)

# Where a deal lives in chat: its iron-triangle channel, and the thread it was last worked in
# (the requester hears of a decision there).
deal_conversations = Table(
    "deal_conversations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("surface", String(10), nullable=False),
    Column("opportunity_id", Integer, ForeignKey("opportunities.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("thread_ts", String(64)),
    Column("updated_at", DateTime, nullable=False),
    one_of("surface", CHAT_SURFACES),
    one_of("kind", ("channel", "thread")),
    CheckConstraint("kind <> 'thread' OR thread_ts IS NOT NULL", name="thread_has_ts"),
    UniqueConstraint("surface", "opportunity_id", "kind"),
)

# Chat notices already delivered (outbox key + recipient): the outbox delivers at least once,
# people are told once.
chat_notices = Table(
    "chat_notices",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("sent_at", DateTime, nullable=False),
)

# A Reject / Request changes click on a surface without forms (WeCom) waits for the reason as the
# person's next message: one open question per person, until it is answered or expires.
approval_reason_prompts = Table(
    "approval_reason_prompts",
    metadata,
    Column("surface", String(10), primary_key=True),
    Column("chat_user", String(64), primary_key=True),
    Column("approval_id", Integer, ForeignKey("approval_requests.id", ondelete="CASCADE"), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("expires_at", DateTime, nullable=False),
    one_of("surface", CHAT_SURFACES),
    one_of("outcome", ("reject", "revise")),
)
# -- website lead capture (issue 9, migration 0018) -------------------------------------------
# A public form posts leads in with its own secret (only its SHA-256 is kept: the secret is a
# random token, so no salt is needed). Each submission is logged with its outcome, the lead it
# made or joined and a keyed hash of the sender's address (flood checks), never the fields.
web_forms = Table(
    "web_forms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(60), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("source", String(20), nullable=False, server_default="website"),
    Column("region", String(50), nullable=False, server_default=""),  # leads' region when the visitor gives none
    Column("allowed_origins", JSON, nullable=False),  # browser origins allowed to post; [] = any
    Column("redirect_url", String(500)),  # a plain HTML form's visitor is sent here (303) after posting
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("secret_rotated_at", DateTime),
    one_of("source", values(LeadSource)),
)

web_form_submissions = Table(
    "web_form_submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("form_id", Integer, ForeignKey("web_forms.id", ondelete="CASCADE"), nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("lead_id", Integer, ForeignKey("leads.id")),
    Column("reason", String(300)),
    Column("remote_hash", String(32)),
    one_of("outcome", ("created", "merged", "spam", "rejected")),
    CheckConstraint("outcome NOT IN ('created', 'merged') OR lead_id IS NOT NULL", name="lead_when_accepted"),
    Index("ix_web_form_submissions_form_remote", "form_id", "remote_hash", "received_at"),
    Index("ix_web_form_submissions_form_received", "form_id", "received_at"),
)

# --- outbound webhooks (issue 9, migration 0017) -----------------------------------------------
# An ERP/billing receiver subscribed to public event types ("invoice.issued", or "*" for all). The
# secret signs every request (HMAC-SHA256); it is kept in clear because signing needs it, and is
# shown once, when the endpoint is created.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("events", JSON, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("description", String(200)),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# One event for one endpoint: written by the outbox sink (at most once per endpoint and event id,
# however often the outbox delivers), sent by the webhook deliverer with retries and backoff.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(12), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime),
    one_of("status", ["pending", "delivered", "failed"]),
    CheckConstraint("status <> 'pending' OR next_attempt_at IS NOT NULL", name="pending_has_due"),
    CheckConstraint("(status = 'delivered') = (delivered_at IS NOT NULL)", name="delivered_when_done"),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_deliveries_due", "next_attempt_at",
          sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
)

# Every HTTP attempt of a delivery (the delivery log): a replay keeps the earlier attempts.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("attempted_at", DateTime, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
)

# --- Integration API (issue 9): keys and idempotency (migration 0016) --------------------------

# An integration's key: it acts as `user_id` (a service user) within `scopes`. Only the SHA-256 of
# the secret is stored; `prefix` (unique) finds the row and tells keys apart in listings.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
)

# One row per Idempotency-Key of a key: the unique pair arbitrates concurrent duplicates; the
# answer (status, body) is filled in when the first request finishes (NULL = still running).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("api_key_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("status_code", Integer),
    Column("content_type", String(200)),
    Column("response_body", LargeBinary),
    Column("completed_at", DateTime),
    UniqueConstraint("api_key_id", "key"),
    CheckConstraint("(status_code IS NULL) = (completed_at IS NULL)", name="completed_with_status"),
)

# --- Monthly rollups for period over period (issue 8, migration 0019) ------------------------------

# Per (month, owner, currency), kept exact by triggers on opportunities (migration 0019), never
# written by the code: deals created that month (count, Σ amount) and won / lost that month (close
# time = stage_changed_at; won: count, Σ amount; lost: count). Amounts in the deal's currency.
deal_monthly_rollup = Table(
    "deal_monthly_rollup",
    metadata,
    Column("month", String(7), primary_key=True),  # YYYY-MM
    Column("owner_id", Integer, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("created_n", Integer, nullable=False),
    Column("created_amount", Numeric(20, 2), nullable=False),
    Column("won_n", Integer, nullable=False),
    Column("won_amount", Numeric(20, 2), nullable=False),
    Column("lost_n", Integer, nullable=False),
)

# Per (month, owner, currency), kept exact by triggers on invoices and payment_allocations (migration
# 0019), never written by the code: Σ non-void invoices issued that month; Σ allocations collected that
# month (payment_allocations.collected_on: the confirmed payment's received_on). The owner: the 0013 copies.
receivables_monthly = Table(
    "receivables_monthly",
    metadata,
    Column("month", String(7), primary_key=True),  # YYYY-MM
    Column("owner_id", Integer, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("invoiced", Numeric(20, 2), nullable=False),
    Column("collected", Numeric(20, 2), nullable=False),
)

import domain.analytics.indexes  # noqa: E402,F401  (analytics indexes, migration 0010: after every table)
