"""The schema. The database backs every invariant it can: CHECK, UNIQUE, FK."""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

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
    one_of("to_stage", values(Stage), name="to_stage_valid"),
    CheckConstraint(
        "from_stage IS NULL OR from_stage IN ({})".format(", ".join(f"'{s}'" for s in values(Stage))),
        name="from_stage_valid",
    ),
    Index("ix_stage_history_opportunity_changed", "opportunity_id", "changed_at"),
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
    CheckConstraint("outcome <> 'reject' OR comment IS NOT NULL", name="reject_has_reason"),
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
