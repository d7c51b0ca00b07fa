#!/usr/bin/env python
"""A realistic, internally consistent LTC dataset for analytics benchmarks.

    python -m tests.benchmarks.datagen --url URL --opportunities N [--seed 7] [--users 400]
                                       [--today 2026-11-22] [--approval-share 0.25]

Migrates the database (domain.db.migrate.upgrade), seeds the default policies, then writes
through the real schema (every CHECK / FK / UNIQUE of domain/db/tables.py holds; the database
is the judge). The database must be fresh: no opportunities, no users besides the system one.

What it writes, deterministic for a seed (rough shares; N opportunities):
  * org: one VP (director at the top), a director per region, sales managers each leading a team
    of ~10 reps, a few finance / sales_ops / legal / solution / fulfilment users and an admin;
    users.manager_id runs VP → directors → managers → reps (RBAC subtrees are real);
  * ~N/5 accounts (each owned by a rep), 30 products;
  * N opportunities created over ~3 years before "today" (25 % more each year; the younger a deal, the likelier it is still open), ids in
    creation order: ≈35 % open (qualify … negotiate), ≈25 % won, ≈30 % lost, ≈10 % abandoned;
    mostly CNY, some USD / EUR / HKD; probability from the stage (won 100, lost/abandoned 0);
  * stage_history: one row per stage passed (NULL → qualify at created_at, …, the closing stage),
    each with the spell it ends (spell_us, history_started_at: migration 0011);
  * ~1.5 N leads: ~N/2 converted into these deals, the rest new / contacted / nurturing /
    qualified / disqualified by age;
  * quotes (1–2 versions, the older superseded; 1–3 lines) for deals that reached bid, drafts
    for some in solution; a deal's amount is its current quote's total;
  * won deals: contract (signed / executing / completed), a 30/60/10 payment plan, an order,
    invoices for the milestones triggered so far, confirmed payments fully allocated (some
    accounts pay late or not at all: aging has a tail), revenue entries, contract totals;
  * approvals for a sample of deals: every gate they passed (ATI, solution review, ATB, ATC),
    discount approvals for quotes above 10 %, a few rejections, expired ones, and pending
    requests on open deals (at most one pending per subject and kind);
  * number_sequences consistent with the CT- / SO- / INV- / PAY- numbers used.

PostgreSQL: one transaction; foreign keys and secondary indexes are dropped, the rows COPied in
chunks, then indexes and foreign keys re-created from their own definitions (which validates
every row), serial sequences moved past the ids, then VACUUM ANALYZE. SQLite (small N): plain
executemany with foreign keys deferred to the commit. A row in table `ltc_datagen` records
what was generated (tests/benchmarks/bench_analytics.py reuses a matching database).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from random import Random

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import JSON, Numeric, inspect, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from domain.analytics.performance import REACHED_BIT  # noqa: E402
from domain.db import tables as t  # noqa: E402
from domain.db.engine import make_engine  # noqa: E402
from domain.db.migrate import upgrade  # noqa: E402
from domain.normalize import company_norm, person_norm  # noqa: E402
from domain.policy_defaults import STAGE_PROBABILITIES, seed_policies  # noqa: E402

VERSION = 2  # bump when the generated contents change (bench_analytics regenerates then)
MARKER = "ltc_datagen"
DAY = 86400
OPEN_STAGES = ("qualify", "initiated", "solution", "bid", "negotiate")
OPEN, WON, LOST, ABANDONED = 0, 1, 2, 3
OUTCOME_SHARES = ((OPEN, 0.35), (WON, 0.25), (LOST, 0.30), (ABANDONED, 0.10))
OPEN_STAGE_SHARES = (0.30, 0.22, 0.20, 0.16, 0.12)
LOST_AT_SHARES = (0.20, 0.20, 0.25, 0.20, 0.15)  # furthest open stage reached before losing
ABANDONED_AT_SHARES = (0.40, 0.30, 0.20, 0.07, 0.03)
CYCLE_MEDIAN_DAYS = {WON: 80.0, LOST: 55.0, ABANDONED: 45.0}
CYCLE_SIGMA = {WON: 0.6, LOST: 0.7, ABANDONED: 0.8}
GATE_OUT_OF = {"qualify": "ATI", "initiated": "solution_review", "solution": "ATB", "negotiate": "ATC"}
GATE_STEPS = {  # policy_defaults.GATES / DISCOUNT_BANDS, by kind
    "ATI": ("sales_manager",), "solution_review": ("sales_manager",),
    "ATB": ("sales_manager", "director"), "ATC": ("director", "finance"),
}
FX = {"CNY": 1.0, "USD": 7.10, "EUR": 7.70, "HKD": 0.91}  # only to size amounts; analytics use Settings
CURRENCY_SHARES = (("CNY", 0.80), ("USD", 0.10), ("EUR", 0.05), ("HKD", 0.05))
REGIONS = (("east", "East"), ("north", "North"), ("south", "South"), ("west", "West"), ("华中", "华中"))
CITIES = "上海北京深圳苏州杭州成都武汉广州南京天津重庆西安青岛宁波无锡厦门长沙郑州合肥济南"
WORDS = ("华电", "远航", "汇通", "恒泰", "新元", "中科", "启明", "天成", "宏达", "万象",
         "国信", "金桥", "瑞丰", "博远", "同创", "海纳", "东方", "长城", "星河", "安泰")
INDUSTRIES = (("制造", "Manufacturing"), ("能源", "Energy"), ("电力", "Utilities"), ("医药", "Pharma"),
              ("物流", "Logistics"), ("化工", "Chemicals"), ("汽车", "Automotive"), ("零售", "Retail"))
SURNAMES = (("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
            ("Zhao", "赵"), ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴"), ("Xu", "徐"), ("Sun", "孙"),
            ("Hu", "胡"), ("Zhu", "朱"), ("Gao", "高"), ("Lin", "林"), ("He", "何"), ("Guo", "郭"),
            ("Ma", "马"), ("Luo", "罗"))
GIVEN = (("Wei", "伟"), ("Fang", "芳"), ("Na", "娜"), ("Min", "敏"), ("Jing", "静"), ("Lei", "磊"),
         ("Yang", "洋"), ("Yong", "勇"), ("Jie", "杰"), ("Tao", "涛"), ("Ming", "明"), ("Chao", "超"),
         ("Xiuying", "秀英"), ("Hua", "华"), ("Ping", "平"), ("Gang", "刚"), ("Hui", "慧"), ("Jun", "军"),
         ("Yan", "燕"), ("Bin", "斌"))
PRODUCTS = (  # sku stem, English, Chinese, unit, list price (CNY), cost ratio
    ("MES", "MES platform licence", "MES 平台许可", "licence", 180000, 0.35),
    ("MES-ADD", "MES module add-on", "MES 扩展模块", "module", 60000, 0.30),
    ("ERP", "ERP suite licence", "ERP 套件许可", "licence", 250000, 0.40),
    ("ERP-USR", "ERP named user", "ERP 用户许可", "user", 3000, 0.20),
    ("SCADA", "SCADA server", "SCADA 服务器", "set", 120000, 0.55),
    ("HMI", "HMI panel", "HMI 操作屏", "set", 18000, 0.60),
    ("PLC", "PLC controller", "PLC 控制器", "set", 25000, 0.65),
    ("IOT-GW", "IoT gateway", "物联网网关", "set", 8000, 0.60),
    ("SENSOR", "Industrial sensor kit", "工业传感器套件", "kit", 4500, 0.62),
    ("EDGE", "Edge computing node", "边缘计算节点", "set", 36000, 0.58),
    ("DATA", "Data platform subscription", "数据平台订阅", "year", 150000, 0.25),
    ("BI", "BI dashboards", "BI 看板", "licence", 45000, 0.20),
    ("AI-QC", "AI quality inspection", "AI 质检", "line", 220000, 0.45),
    ("APS", "Advanced planning (APS)", "高级排程 APS", "licence", 160000, 0.35),
    ("WMS", "Warehouse management", "仓储管理 WMS", "licence", 140000, 0.35),
    ("TMS", "Transport management", "运输管理 TMS", "licence", 90000, 0.35),
    ("EAM", "Asset maintenance (EAM)", "设备维护 EAM", "licence", 110000, 0.35),
    ("QMS", "Quality management", "质量管理 QMS", "licence", 80000, 0.33),
    ("PLM", "Product lifecycle (PLM)", "产品生命周期 PLM", "licence", 200000, 0.40),
    ("SRM", "Supplier portal", "供应商门户", "licence", 70000, 0.30),
    ("CRM", "CRM seats", "CRM 席位", "user", 2400, 0.20),
    ("SEC", "OT security appliance", "工控安全网关", "set", 56000, 0.55),
    ("NET", "Industrial network switch", "工业交换机", "set", 9000, 0.65),
    ("SRV", "Application server", "应用服务器", "set", 48000, 0.70),
    ("STO", "Storage array", "存储阵列", "set", 85000, 0.70),
    ("IMPL", "Implementation services", "实施服务", "day", 2500, 0.55),
    ("CONS", "Consulting services", "咨询服务", "day", 4000, 0.50),
    ("TRAIN", "Training", "培训", "day", 3000, 0.45),
    ("SUP", "Premium support", "高级支持服务", "year", 60000, 0.30),
    ("HW-MNT", "Hardware maintenance", "硬件维保", "year", 30000, 0.40),
)
LOST_REASONS = ("Price too high / 价格过高", "Competitor won / 竞争对手中标", "Budget cut / 预算取消",
                "No decision / 客户未决策", "Requirements mismatch / 需求不匹配", "Lost to in-house build / 客户自研")
ABANDONED_REASONS = ("Customer project cancelled / 项目取消", "No budget this year / 今年无预算",
                     "Duplicate opportunity / 重复商机", "Not a fit / 不符合目标客户")
DISQUALIFY_REASONS = ("No budget", "Not the decision maker", "Student / research", "Competitor", "Spam")
REJECT_COMMENTS = ("Margin too thin, rework the pricing", "Delivery plan incomplete",
                   "需要补充客户决策链信息", "请先确认交付资源")
SOURCES = ("website", "trade_show", "referral", "social", "ad", "partner", "other")
TIMELINES = ("within_3_months", "within_6_months", "within_12_months", "over_12_months", "unknown")
AUTHORITIES = ("decision_maker", "influencer", "user", "unknown")
NEEDS = ("MES roll-out for two plants", "工厂数字化改造", "Replace legacy ERP", "设备联网与数据采集",
         "Warehouse automation", "质量追溯系统", None)
CHANNELS = (("slack", 0.50), ("wecom", 0.35), ("cli", 0.15))
JSON_EMPTY_LIST = "[]"
cached_company_norm = lru_cache(maxsize=65536)(company_norm)  # lead companies repeat (accounts, name stems)


# --------------------------------------------------------------------------------------------
# Configuration, random helpers
# --------------------------------------------------------------------------------------------

@dataclass
class Config:
    opportunities: int
    seed: int = 7
    users: int = 400
    today: date = date(2026, 11, 22)
    years: float = 3.0
    approval_share: float = 0.25
    chunk: int = 20_000

    def marker(self) -> dict:
        return {"opportunities": self.opportunities, "seed": self.seed, "users": self.users,
                "today": self.today.isoformat(), "years": self.years, "approval_share": self.approval_share,
                "version": VERSION}


def pick(rng: Random, shares) -> object:
    """One value of ((value, share), ...) (shares add up to 1)."""
    u = rng.random()
    for value, share in shares:
        u -= share
        if u < 0:
            return value
    return shares[-1][0]


def pick_index(rng: Random, shares: tuple[float, ...]) -> int:
    u = rng.random()
    for i, share in enumerate(shares):
        u -= share
        if u < 0:
            return i
    return len(shares) - 1


def growth_age(rng: Random, lo: float, hi: float, g: float) -> float:
    """An age in days within [lo, hi], density ∝ exp(-g·age): more recent ages more often."""
    if hi <= lo:
        return lo
    span = hi - lo
    u = rng.random()
    return lo - math.log(1.0 - u * (1.0 - math.exp(-g * span))) / g


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def pct(x: float) -> str:
    return f"{x:.2f}"


def split(rng: Random, total: float, parts: int) -> list[float]:
    """`total` split into `parts` random positive shares."""
    w = [rng.expovariate(1.0) + 0.25 for _ in range(parts)]
    s = sum(w)
    return [total * x / s for x in w]


# --------------------------------------------------------------------------------------------
# Output: PostgreSQL COPY or SQLite executemany
# --------------------------------------------------------------------------------------------

LOAD_TRIGGERS = (("opportunities", "trg_product_pipeline"), ("quotes", "trg_product_pipeline"),
                 ("quote_lines", "trg_product_pipeline"), ("stage_history", "trg_opportunity_reached"))


def _migration(name: str):
    """A migration module by file name (their names start with digits: not importable by name)."""
    import importlib.util

    path = REPO / "domain" / "db" / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"ltc_migration_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PgSink:
    """One transaction: drop FKs and secondary indexes, COPY, re-create them (validating), commit."""

    kind = "postgresql"

    def __init__(self, engine, tables: list[str], say) -> None:
        self.engine = engine
        self.tables = tables
        self.say = say
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection  # psycopg.Connection
        self.cur = self.conn.cursor()
        self.saved: dict[str, list] = {}

    def _q(self, sql: str, params=None) -> list:
        self.cur.execute(sql, params)
        return self.cur.fetchall() if self.cur.description else []

    def begin(self) -> None:
        self._q("SET maintenance_work_mem = '512MB'")
        self._q("SET synchronous_commit = off")
        names = list(self.tables)
        fks = self._q(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND (conrelid::regclass::text = ANY(%s) OR confrelid::regclass::text = ANY(%s)) "
            "ORDER BY 1, 2", (names, names))
        uniques = self._q(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2", (names,))
        indexes = self._q(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) ORDER BY 1", (names,))
        self.saved = {"fks": fks, "uniques": uniques, "indexes": indexes}
        for table, name, _ in fks:
            self._q(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for table, name, _ in uniques:
            self._q(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            self._q(f"DROP INDEX {name}")
        self.say(f"bulk load: dropped {len(fks)} foreign keys, {len(uniques)} unique constraints and "
                 f"{len(indexes)} indexes for the load (re-created from their definitions at the end)")
        # Row triggers whose tables are filled in one pass at the end instead: per COPYed row they would
        # refresh a deal while its indexes are gone (20k deals: 150 s against 21 s). reached_stages is
        # written with each deal; the product tables by migration 0012's backfill in finish().
        for table, trigger in LOAD_TRIGGERS:
            self._q(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")

    def write(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        cols = ", ".join(f'"{c}"' for c in columns)
        with self.cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)

    def finish(self, after_load) -> None:
        s = time.perf_counter()
        for _name, ddl in self.saved["indexes"]:
            self._q(ddl)
        for table, name, ddl in self.saved["uniques"]:
            self._q(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
        self.say(f"indexes and unique constraints re-created ({time.perf_counter() - s:.1f} s)")
        s = time.perf_counter()
        for table, name, ddl in self.saved["fks"]:
            self._q(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
        self.say(f"foreign keys re-created and validated ({time.perf_counter() - s:.1f} s)")
        for table in self.tables:
            if "id" in t.metadata.tables[table].c:
                self._q(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT max(id) FROM {table}), 1), (SELECT count(*) > 0 FROM {table}))")
        s = time.perf_counter()
        _migration("0012_product_pipeline_rollup").backfill(self._q, "postgresql")
        for table, trigger in LOAD_TRIGGERS:
            self._q(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        self.say(f"product pipeline tables filled, triggers back on ({time.perf_counter() - s:.1f} s)")
        after_load(self)
        self.conn.commit()
        s = time.perf_counter()
        self.conn.autocommit = True
        self._q("VACUUM (ANALYZE)")
        self.conn.autocommit = False
        self.say(f"VACUUM ANALYZE ({time.perf_counter() - s:.1f} s)")
        self.raw.close()

    def execute(self, sql: str, params=None) -> None:
        self._q(sql, params)

    def abort(self) -> None:
        try:
            self.conn.rollback()
        finally:
            self.raw.close()


class SqliteSink:
    """Small N: Core executemany in one transaction, foreign keys checked at the commit."""

    kind = "sqlite"

    def __init__(self, engine, tables: list[str], say) -> None:
        self.engine = engine
        self.say = say
        self.conn = engine.connect()
        self.tx = None

    def begin(self) -> None:
        self.tx = self.conn.begin()
        self.conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")

    def write(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        tbl = t.metadata.tables[table]
        conv = []
        for c in columns:
            typ = tbl.c[c].type
            if isinstance(typ, JSON):
                conv.append(lambda v: None if v is None else json.loads(v))
            elif isinstance(typ, Numeric):
                from decimal import Decimal
                conv.append(lambda v, D=Decimal: None if v is None else D(v))
            else:
                conv.append(None)
        dicts = [{c: (v if f is None else f(v)) for c, v, f in zip(columns, row, conv)} for row in rows]
        self.conn.execute(tbl.insert(), dicts)

    def execute(self, sql: str, params=None) -> None:
        self.conn.exec_driver_sql(sql, params or ())

    def finish(self, after_load) -> None:
        after_load(self)
        self.tx.commit()
        self.conn.close()

    def abort(self) -> None:
        try:
            if self.tx is not None:
                self.tx.rollback()
        finally:
            self.conn.close()


# --------------------------------------------------------------------------------------------
# Column lists (row tuples follow them)
# --------------------------------------------------------------------------------------------

COLS = {
    "teams": ("id", "name", "region", "manager_id"),
    "users": ("id", "email", "name_en", "name_zh", "locale", "region", "team_id", "manager_id", "active"),
    "user_roles": ("user_id", "role"),
    "products": ("id", "sku", "name_en", "name_zh", "unit", "currency", "cost", "floor_price", "active"),
    "accounts": ("id", "name", "name_norm", "industry", "region", "tier", "owner_id", "created_at", "updated_at"),
    "leads": ("id", "source", "company", "contact_name", "title", "email", "phone", "region", "need", "budget",
              "currency", "timeline", "authority", "notes", "status", "disqualify_reason", "owner_id", "score",
              "score_reasons", "email_norm", "phone_norm", "identity_norm", "account_id", "contact_id",
              "opportunity_id", "created_at", "updated_at"),
    "opportunities": ("id", "name", "account_id", "owner_id", "amount", "currency", "region",
                      "expected_close_date", "competitors", "next_step", "stage", "probability",
                      "close_reason", "lead_id", "created_at", "updated_at", "stage_changed_at", "version",
                      "reached_stages"),
    "stage_history": ("id", "opportunity_id", "from_stage", "to_stage", "probability", "changed_at",
                      "changed_by", "approval_id", "reason", "spell_us", "history_started_at"),
    "quotes": ("id", "opportunity_id", "version", "status", "total", "currency", "created_at", "list_total",
               "cost_total", "discount_pct", "margin_pct", "valid_until", "created_by", "approval_id",
               "approved_discount_pct", "approved_margin_pct", "submitted_at", "sent_at", "accepted_at"),
    "quote_lines": ("id", "quote_id", "position", "product_id", "sku", "name", "quantity", "list_price",
                    "discount_pct", "unit_cost", "floor_price"),
    "approval_requests": ("id", "kind", "subject_type", "subject_id", "title", "requested_by", "status",
                          "current_step", "from_stage", "to_stage", "context", "created_at", "expires_at",
                          "closed_at"),
    "approval_steps": ("id", "request_id", "seq", "role", "scope", "status"),
    "approval_decisions": ("id", "request_id", "step_seq", "decider_id", "outcome", "comment", "channel",
                           "via_agent", "decided_at"),
    "contracts": ("id", "number", "opportunity_id", "account_id", "quote_id", "currency", "value", "status",
                  "payment_terms_days", "invoiced_total", "paid_total", "recognised_total", "created_by",
                  "created_at", "submitted_at", "signed_at", "completed_at", "version"),
    "contract_milestones": ("id", "contract_id", "seq", "label", "pct", "amount", "trigger", "due_date",
                            "triggered_on"),
    "orders": ("id", "number", "contract_id", "status", "created_by", "created_at", "delivered_at"),
    "invoices": ("id", "number", "contract_id", "milestone_id", "account_id", "currency", "amount",
                 "paid_amount", "status", "issued_on", "due_on", "dunning_level", "last_dunned_on",
                 "created_by", "void_reason", "voided_by", "voided_at"),
    "payments": ("id", "number", "account_id", "currency", "amount", "received_on", "method", "bank_ref",
                 "status", "allocated", "unapplied", "created_by", "created_at", "confirmed_by",
                 "confirmed_at", "note", "contract_id"),
    "payment_allocations": ("id", "payment_id", "invoice_id", "currency", "amount", "allocated_at",
                            "allocated_by"),
    "revenue_entries": ("id", "contract_id", "amount", "recognised_on", "reason", "recorded_by"),
}
# Parents first (SQLite defers foreign keys anyway; PostgreSQL loads without them).
TABLE_ORDER = ("teams", "users", "user_roles", "products", "accounts", "leads", "opportunities",
               "approval_requests", "approval_steps", "approval_decisions", "stage_history", "quotes",
               "quote_lines", "contracts", "contract_milestones", "orders", "invoices", "payments",
               "payment_allocations", "revenue_entries")


@dataclass
class Person:
    id: int
    region: str
    team_id: int | None
    manager_id: int | None
    director_id: int | None


@dataclass
class Org:
    people: dict[str, list[Person]] = field(default_factory=dict)  # role key → people
    owners: list[Person] = field(default_factory=list)
    owner_cum: list[float] = field(default_factory=list)
    team_reps: dict[int, list[int]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

class Generator:
    def __init__(self, cfg: Config, first_user_id: int, say) -> None:
        self.cfg = cfg
        self.say = say
        self.now = datetime.combine(cfg.today, dtime(12, 0))
        self.ids = Counter()
        self.ids["users"] = first_user_id - 1
        self.numbers: Counter[str] = Counter()  # "CT:2026" → last number used
        self.rows = Counter()
        self.org = Org()
        self.g = math.log(1.25) / 365.0  # 25 % more deals each year
        self.span = cfg.years * 365.0

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def at(self, secs: float) -> datetime:
        """A timestamp `secs` seconds from now (negative: in the past), whole seconds."""
        return self.now + timedelta(seconds=int(secs))

    def number(self, prefix: str, when: datetime | date) -> str:
        key = f"{prefix}:{when.year}"
        self.numbers[key] += 1
        return f"{prefix}-{when.year}-{self.numbers[key]:05d}"

    # ---- org ---------------------------------------------------------------------------------
    def build_org(self, rng: Random) -> dict[str, list[tuple]]:
        u = self.cfg.users
        extras = {"admin": 1, "sales_ops": max(1, u // 200), "finance": max(2, u // 100), "legal": 1,
                  "solution_manager": max(1, u // 50), "fulfillment_manager": max(1, u // 50)}
        n_regions = len(REGIONS)
        rest = u - sum(extras.values()) - 1 - n_regions
        if rest < 2 * n_regions:
            raise SystemExit(f"--users {u} is too few: need at least {u - rest + 2 * n_regions}")
        n_managers = max(n_regions, round(rest / 11))
        n_reps = rest - n_managers
        names = [(f"{s_en} {g_en}", f"{s_zh}{g_zh}") for s_en, s_zh in SURNAMES for g_en, g_zh in GIVEN]
        rng.shuffle(names)
        out: dict[str, list[tuple]] = {"teams": [], "users": [], "user_roles": []}
        counter = [0]

        def person(role: str, region: str, team_id, manager_id, director_id, email_key: str) -> Person:
            uid = self.next_id("users")
            i = counter[0]
            counter[0] += 1
            en, zh = names[i % len(names)]
            if i >= len(names):
                en, zh = f"{en} {i // len(names) + 1}", f"{zh}{i // len(names) + 1}"
            locale = "en" if rng.random() < 0.15 else "zh"
            out["users"].append((uid, f"{email_key}@ltc-bench.example", en, zh, locale, region, team_id,
                                 manager_id, True))
            out["user_roles"].append((uid, role))
            p = Person(uid, region, team_id, manager_id, director_id)
            self.org.people.setdefault(role if role != "director" else email_key.rstrip("0123456789"), []).append(p)
            return p

        vp = person("director", "", None, None, None, "vp")
        directors = {region: person("director", region, None, vp.id, vp.id, f"director{k}")
                     for k, (region, _) in enumerate(REGIONS)}
        teams: list[tuple[int, str, Person]] = []  # (team id, region, manager)
        for k in range(n_managers):
            region, label = REGIONS[k % n_regions]
            team_id = self.next_id("teams")
            mgr = person("sales_manager", region, team_id, directors[region].id, directors[region].id,
                         f"manager{k}")
            out["teams"].append((team_id, f"{label} {k // n_regions + 1}", region, mgr.id))
            teams.append((team_id, region, mgr))
            self.org.team_reps[team_id] = []
        weights: list[float] = []
        for k in range(n_reps):
            team_id, region, mgr = teams[k % len(teams)]
            rep = person("sales_rep", region, team_id, mgr.id, directors[region].id, f"rep{k}")
            self.org.team_reps[team_id].append(rep.id)
            self.org.owners.append(rep)
            weights.append(rng.lognormvariate(0.0, 0.45))
        for _, _, mgr in teams:  # managers sell a little too
            self.org.owners.append(mgr)
            weights.append(0.15)
        for role, n in extras.items():
            for k in range(n):
                person(role, "", None, None, None, f"{role}{k}")
        self.org.owner_cum = list(accumulate(weights))
        return out

    def pick_owner(self, rng: Random) -> Person:
        cum = self.org.owner_cum
        return self.org.owners[bisect_right(cum, rng.random() * cum[-1])]

    # ---- catalog and accounts ------------------------------------------------------------------
    def products(self) -> list[tuple]:
        rows = []
        for k, (stem, en, zh, unit, list_price, cost_ratio) in enumerate(PRODUCTS, start=1):
            cents = list_price * 100
            rows.append((self.next_id("products"), f"P-{k:03d}-{stem}", en, zh, unit, "CNY",
                         money(int(cents * cost_ratio)), money(int(cents * 0.7)), True))
        return rows

    def plan_accounts(self, rng: Random) -> None:
        """Account ids, owners and names; rows are written last (created_at before their first deal)."""
        rep_ids = {r for v in self.org.team_reps.values() for r in v}
        reps = [p for p in self.org.owners if p.id in rep_ids]
        n = max(self.cfg.opportunities // 5, len(reps))
        self.acc_owner = array("l")
        self.acc_first = array("d", [0.0] * n)  # earliest use, seconds from now (negative)
        self.acc_name: list[str] = []
        self.acc_industry = array("b")
        self.acc_tier: list[str] = []
        self.by_owner: dict[int, list[int]] = {}
        seen: Counter[str] = Counter()
        rep_cum = list(accumulate(rng.lognormvariate(0.0, 0.45) for _ in reps))
        for i in range(n):
            acc_id = self.next_id("accounts")
            owner = reps[i] if i < len(reps) else reps[bisect_right(rep_cum, rng.random() * rep_cum[-1])]
            ind = rng.randrange(len(INDUSTRIES))
            stem = CITIES[2 * rng.randrange(len(CITIES) // 2):][:2] + rng.choice(WORDS) + INDUSTRIES[ind][0]
            seen[stem] += 1
            self.acc_name.append(f"{stem}{seen[stem] - 1 or ''}有限公司")
            self.acc_owner.append(owner.id)
            self.acc_industry.append(ind)
            self.acc_tier.append(pick(rng, (("strategic", 0.05), ("key", 0.20), ("standard", 0.75))))
            self.by_owner.setdefault(owner.id, []).append(acc_id)
        self.acc_region = {p.id: p.region for p in self.org.owners}
        team_accounts: dict[int, list[int]] = {}
        for p in self.org.owners:
            if p.id in self.by_owner:
                team_accounts.setdefault(p.team_id, []).extend(self.by_owner[p.id])
        for p in self.org.owners:  # managers sell to their team's accounts
            if p.id not in self.by_owner:
                self.by_owner[p.id] = team_accounts.get(p.team_id) or list(range(1, n + 1))

    def account_rows(self, rng: Random) -> list[tuple]:
        rows = []
        for i, name in enumerate(self.acc_name):
            first = self.acc_first[i] or -self.span * DAY
            created = self.at(first - rng.uniform(1, 90) * DAY)
            owner = self.acc_owner[i]
            rows.append((i + 1, name, company_norm(name), INDUSTRIES[self.acc_industry[i]][1],
                         self.acc_region.get(owner, ""), self.acc_tier[i], owner, created, created))
        return rows

    # ---- the deal plan: outcome and creation time, sorted so ids follow creation --------------
    def open_decay_days(self) -> float:
        """τ such that P(open | age) = exp(-age/τ) leaves the open share open overall (creation ∝ growth)."""
        g, span, want = self.g, self.span, dict(OUTCOME_SHARES)[OPEN]

        def share(tau: float) -> float:
            k = g + 1.0 / tau
            return ((1 - math.exp(-k * span)) / k) / ((1 - math.exp(-g * span)) / g)

        lo, hi = 1.0, 100 * span
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if share(mid) < want else (lo, mid)
        return (lo + hi) / 2

    def plan_deals(self, rng: Random) -> tuple[array, array, array]:
        """Creation times follow steady growth whatever the outcome; young deals are the open ones.

        A deal of age a is still open with probability exp(-a/τ) (so old deals are mostly closed, a few
        stale ones linger); a closed one took a cycle of lognormal length shorter than its age.
        """
        n = self.cfg.opportunities
        tau = self.open_decay_days()
        closed_shares = tuple((o, s / (1 - dict(OUTCOME_SHARES)[OPEN])) for o, s in OUTCOME_SHARES if o != OPEN)
        created, outcome, cycle = array("d"), array("b"), array("d")
        for _ in range(n):
            age = growth_age(rng, 0.0, self.span, self.g)
            if age < 1.0 or rng.random() < math.exp(-age / tau):
                o, length = OPEN, 0.0
            else:
                o = pick(rng, closed_shares)
                length = max(rng.lognormvariate(math.log(CYCLE_MEDIAN_DAYS[o]), CYCLE_SIGMA[o]), 0.5)
                if length > age - 0.5:
                    length = rng.uniform(0.3, 0.95) * (age - 0.5)
            created.append(-age * DAY)
            outcome.append(o)
            cycle.append(length * DAY)
        order = sorted(range(n), key=created.__getitem__)
        return (array("d", (created[i] for i in order)), array("b", (outcome[i] for i in order)),
                array("d", (cycle[i] for i in order)))

    # ---- one chunk of deals and everything around them -----------------------------------------
    def chunk(self, k: int, created: array, outcome: array, cycle: array, lo: int, hi: int) -> dict:
        rng = Random(self.cfg.seed * 1_000_003 + k)
        out: dict[str, list[tuple]] = {name: [] for name in COLS}
        first_opp = self.ids["opportunities"] + 1
        # Leads first (ids in creation order): converted ones a little before their deal, the rest
        # spread over the chunk's time range.
        lead_plan: list[tuple[float, int]] = []  # (created secs, deal index in chunk or -1)
        for j in range(hi - lo):
            if rng.random() < 0.5:
                lead_plan.append((created[lo + j] - rng.uniform(1, 30) * DAY, j))
        t_lo, t_hi = created[lo], created[hi - 1]
        for _ in range(hi - lo):
            lead_plan.append((rng.uniform(t_lo, t_hi), -1))
        lead_plan.sort()
        lead_of_deal: dict[int, int] = {}
        first_lead = self.ids["leads"] + 1
        for pos, (_, j) in enumerate(lead_plan):
            if j >= 0:
                lead_of_deal[j] = first_lead + pos
        self.ids["leads"] += len(lead_plan)
        deal_info: dict[int, tuple] = {}
        for j in range(hi - lo):
            deal_info[j] = self.deal(rng, out, first_opp + j, created[lo + j], outcome[lo + j], cycle[lo + j],
                                     lead_of_deal.get(j))
        for pos, (ct, j) in enumerate(lead_plan):
            out["leads"].append(self.lead(rng, first_lead + pos, ct, first_opp + j if j >= 0 else None,
                                          deal_info.get(j)))
        for name, rows in out.items():
            self.rows[name] += len(rows)
        return out

    def lead(self, rng: Random, lead_id: int, created: float, opp_id: int | None, deal) -> tuple:
        s, g = SURNAMES[lead_id % 20], GIVEN[(lead_id // 20) % 20]
        contact = f"{s[1]}{g[1]} {lead_id}" if lead_id % 3 else f"{s[0]} {g[0]} {lead_id}"
        if deal is not None:  # converted: the deal's account, owner, money
            owner_id, acc_id, region, amount_cents, currency = deal
            company = self.acc_name[acc_id - 1]
            status, reason = "converted", None
            budget = money(amount_cents)
            age = -created / DAY
        else:
            acc_id = None
            owner = self.pick_owner(rng)
            owner_id, region = owner.id, owner.region
            company = (CITIES[2 * rng.randrange(len(CITIES) // 2):][:2] + rng.choice(WORDS)
                       + rng.choice(INDUSTRIES)[0] + "有限公司")
            currency = "CNY"
            budget = money(rng.randrange(50, 5000) * 100000) if rng.random() < 0.6 else None
            age = -created / DAY
            if age < 14:
                status = pick(rng, (("new", 0.5), ("contacted", 0.35), ("qualified", 0.15)))
            elif age < 90:
                status = pick(rng, (("contacted", 0.3), ("nurturing", 0.35), ("qualified", 0.1),
                                    ("disqualified", 0.25)))
            else:
                status = pick(rng, (("nurturing", 0.3), ("disqualified", 0.7)))
            reason = rng.choice(DISQUALIFY_REASONS) if status == "disqualified" else None
            if status == "new" and rng.random() < 0.3:
                owner_id = None  # not yet assigned
        email = f"lead{lead_id}@c{lead_id % 9973}.example.cn"
        phone = f"1{3 + lead_id % 6}{lead_id:09d}" if rng.random() < 0.6 else None
        ts = self.at(created)
        updated = self.at(min(created + rng.uniform(0, 20) * DAY, 0)) if deal is None else ts
        return (lead_id, rng.choice(SOURCES), company, contact, None, email, phone, region,
                rng.choice(NEEDS), budget, currency, rng.choice(TIMELINES), rng.choice(AUTHORITIES), None,
                status, reason, owner_id, rng.randrange(0, 101), JSON_EMPTY_LIST, email, phone,
                f"{cached_company_norm(company)}|{person_norm(contact)}", acc_id, None, opp_id, ts, max(ts, updated))

    def deal(self, rng: Random, out: dict, opp_id: int, created: float, o: int, length: float,
             lead_id: int | None) -> tuple:
        self.ids["opportunities"] = opp_id
        owner = self.pick_owner(rng)
        accounts = self.by_owner[owner.id]
        acc_id = accounts[rng.randrange(len(accounts))]
        first = created - (31 * DAY if lead_id else 0)  # its lead may come up to 30 days earlier
        if first < self.acc_first[acc_id - 1]:
            self.acc_first[acc_id - 1] = first
        # Path through the stages and the time of each entry (seconds from now).
        if o == OPEN:
            s = pick_index(rng, OPEN_STAGE_SHARES)
            path = list(OPEN_STAGES[: s + 1])
            age = -created
            times = [created]
            if s:
                for spell in split(rng, age * rng.uniform(0.15, 0.85), s):
                    times.append(times[-1] + spell)
        else:
            if o == WON:
                path = [*OPEN_STAGES, "won"]
            else:
                r = pick_index(rng, LOST_AT_SHARES if o == LOST else ABANDONED_AT_SHARES)
                path = [*OPEN_STAGES[: r + 1], "lost" if o == LOST else "abandoned"]
            times = [created]
            for spell in split(rng, length, len(path) - 1):
                times.append(times[-1] + spell)
        for i in range(1, len(times)):  # strictly increasing, whole seconds, never after now
            times[i] = max(float(int(times[i])), times[i - 1] + 60)
        times[-1] = min(times[-1], -60.0)
        for i in range(len(times) - 2, -1, -1):
            times[i] = min(times[i], times[i + 1] - 60)
        stage = path[-1]
        reached = max(OPEN_STAGES.index(p) for p in path if p in OPEN_STAGES)

        currency = pick(rng, CURRENCY_SHARES)
        cny = min(max(rng.lognormvariate(math.log(400_000), 1.0), 20_000), 60_000_000)
        amount_cents = max(int(cny / FX[currency] / 100) * 10000, 10000)
        # Quotes: deals that reached bid; a draft for some in solution.
        quote_ids: list[int] = []
        current_quote = None
        if reached >= 3 or (o == OPEN and stage == "solution" and rng.random() < 0.4):
            current_quote, amount_cents = self.quotes(rng, out, opp_id, owner, path, times, o, stage, currency,
                                                      amount_cents)
            quote_ids.append(current_quote[0])
        # Approvals (a sample of deals) → approval ids per gate transition.
        gate_approval: dict[int, int] = {}
        if rng.random() < self.cfg.approval_share:
            gate_approval = self.approvals(rng, out, opp_id, owner, path, times, o, current_quote)
        for i, st in enumerate(path):  # with the spell each row ends, as the domain writes it (migration 0011)
            out["stage_history"].append((self.next_id("stage_history"), opp_id, path[i - 1] if i else None, st,
                                         STAGE_PROBABILITIES[st], self.at(times[i]), owner.id,
                                         gate_approval.get(i), None,
                                         (self.at(times[i]) - self.at(times[i - 1])) // timedelta(microseconds=1)
                                         if i else None,
                                         self.at(times[0])))
        # Expected close date.
        if o == OPEN:
            if rng.random() < 0.03:
                expected = None
            elif rng.random() < 0.2:
                expected = self.cfg.today - timedelta(days=rng.randrange(1, 180))
            else:
                expected = self.cfg.today + timedelta(days=min(int(rng.expovariate(1 / 75.0)), 400))
        else:
            expected = self.at(times[-1]).date() + timedelta(days=int(rng.gauss(0, 20)))
        close_reason = (rng.choice(LOST_REASONS) if stage == "lost"
                        else rng.choice(ABANDONED_REASONS) if stage == "abandoned" else None)
        changed = self.at(times[-1])
        acc_name = self.acc_name[acc_id - 1]
        name = f"{acc_name.removesuffix('有限公司')} · {PRODUCTS[opp_id % len(PRODUCTS)][2]}"
        out["opportunities"].append((
            opp_id, name, acc_id, owner.id, money(amount_cents), currency, owner.region, expected,
            JSON_EMPTY_LIST, "Follow up with the customer" if o == OPEN and rng.random() < 0.5 else None,
            stage, STAGE_PROBABILITIES[stage], close_reason, lead_id, self.at(times[0]), changed, changed, 1,
            sum({REACHED_BIT[p] for p in path})))  # what migration 0015's triggers keep: a bit per stage passed
        if o == WON:
            self.contract(rng, out, opp_id, acc_id, owner, currency, amount_cents, current_quote, times[-1])
        return (owner.id, acc_id, owner.region, amount_cents, currency)

    def quotes(self, rng: Random, out: dict, opp_id: int, owner: Person, path, times, o, stage, currency,
               amount_cents: int):
        """1–2 versions; returns (current quote id, status, created secs, discount pct) and the deal amount."""
        versions = 2 if rng.random() < 0.4 and len(path) > 3 else 1
        sol = times[2]
        after_sol = times[3] if len(times) > 3 else -60.0
        cur = None
        for v in range(1, versions + 1):
            if v == 1:
                qt = sol + rng.uniform(0.2, 0.9) * (after_sol - sol)
            else:
                nxt = times[4] if len(times) > 4 else -60.0
                qt = after_sol + rng.uniform(0.1, 0.8) * (nxt - after_sol)
            last = v == versions
            if not last:
                status = "superseded"
            elif stage == "won":
                status = "accepted"
            elif stage == "negotiate":
                status = "accepted" if rng.random() < 0.6 else "sent"
            elif stage == "bid":
                status = "sent" if rng.random() < 0.7 else "approved"
            elif stage == "solution":
                status = "draft" if rng.random() < 0.6 else "pending_approval"
            elif stage == "lost":
                status = pick(rng, (("sent", 0.5), ("expired", 0.3), ("rejected", 0.2)))
            else:
                status = "expired"
            target = amount_cents if last else int(amount_cents * rng.uniform(1.02, 1.12))
            qid = self.next_id("quotes")
            disc = pick(rng, ((0, 0.25), (5, 0.25), (10, 0.2), (15, 0.15), (20, 0.1), (25, 0.05)))
            total = list_total = cost_total = 0
            n_lines = rng.randint(1, 3)
            for pos, share in enumerate(split(rng, target, n_lines), start=1):
                pid = rng.randrange(len(PRODUCTS))
                stem, en, zh, unit, _, cost_ratio = PRODUCTS[pid]
                qty = rng.randint(1, 40) if unit in ("user", "day", "set", "kit") else rng.randint(1, 4)
                d = min(max(disc + rng.choice((-5, 0, 0, 5)), 0), 30)
                unit_list = max(int(share / (qty * (100 - d) / 100)), 1)
                net = (qty * unit_list * (100 - d) + 50) // 100
                unit_cost = int(unit_list * cost_ratio)
                total += net
                list_total += qty * unit_list
                cost_total += qty * unit_cost
                out["quote_lines"].append((self.next_id("quote_lines"), qid, pos, pid + 1, f"P-{pid + 1:03d}-{stem}",
                                           en, f"{qty}.00", money(unit_list), pct(d), money(unit_cost),
                                           money(int(unit_list * 0.7))))
            qdisc = (list_total - total) * 100 / list_total if list_total else 0.0
            margin = (total - cost_total) * 100 / total if total else None
            created = self.at(qt)
            sent = self.at(min(qt + rng.uniform(0.2, 3) * DAY, -30)) if status in ("sent", "accepted", "expired",
                                                                                     "superseded") else None
            accepted = self.at(min(qt + rng.uniform(3, 10) * DAY, -20)) if status == "accepted" else None
            if sent is not None and sent < created:
                sent = created
            if accepted is not None and sent is not None and accepted < sent:
                accepted = sent
            submitted = created if status != "draft" else None
            out["quotes"].append((qid, opp_id, v, status, money(total), currency, created, money(list_total),
                                  money(cost_total), pct(qdisc), None if margin is None else pct(margin),
                                  (created + timedelta(days=30)).date(), owner.id, None, None, None, submitted,
                                  sent, accepted))
            if last:
                cur = (qid, status, qt, qdisc, total)
                amount_cents = total
        return cur, amount_cents

    def approvals(self, rng: Random, out: dict, opp_id: int, owner: Person, path, times, o,
                  current_quote) -> dict[int, int]:
        """Requests for the gates this deal passed (+ a few rejected first), a pending one maybe."""
        linked: dict[int, int] = {}
        finance = self.org.people["finance"]
        chain_mgr = owner.manager_id if owner.manager_id != owner.director_id else None
        ref = f"OPP-{opp_id:05d}"

        def decider(role: str) -> int:
            if role == "sales_manager":
                return chain_mgr or owner.director_id
            if role == "director":
                return owner.director_id
            return finance[rng.randrange(len(finance))].id

        def request(kind: str, subject_type: str, subject_id: int, frm, to, start: float, end: float | None,
                    status: str, steps_done: int | None = None) -> int:
            rid = self.next_id("approval_requests")
            roles = GATE_STEPS.get(kind) or (("sales_manager",) if kind == "discount" and
                                              current_quote and current_quote[3] <= 20 else ("director", "finance"))
            created = self.at(start)
            closed = self.at(end) if end is not None else None
            cur_step = 1
            for seq, role in enumerate(roles, start=1):
                scope = "any" if role == "finance" else "chain"
                if status == "approved":
                    st = "approved"
                elif status == "rejected":
                    st = "approved" if seq < len(roles) and seq < (steps_done or 1) else (
                        "rejected" if seq == (steps_done or 1) else "skipped")
                elif status in ("expired", "cancelled"):
                    st = "skipped"
                else:  # pending
                    done = steps_done or 0
                    st = "approved" if seq <= done else "pending" if seq == done + 1 else "waiting"
                out["approval_steps"].append((self.next_id("approval_steps"), rid, seq, role, scope, st))
                if st in ("approved", "rejected"):
                    at = start + (seq / len(roles)) * ((end if end is not None else -60.0) - start)
                    if st == "rejected" or (status == "approved" and seq == len(roles)):
                        at = end  # the last decision closes the request
                    outcome = "approve" if st == "approved" else pick(rng, (("reject", 0.6), ("revise", 0.4)))
                    out["approval_decisions"].append((
                        self.next_id("approval_decisions"), rid, seq, decider(role), outcome,
                        None if outcome == "approve" else rng.choice(REJECT_COMMENTS), pick(rng, CHANNELS),
                        rng.random() < 0.4, self.at(at)))
                    cur_step = seq
                if st == "pending":
                    cur_step = seq
            title = f"{kind}: {ref}" if subject_type == "opportunity" else f"{kind}: Q-{subject_id:05d} ({ref})"
            out["approval_requests"].append((
                rid, kind, subject_type, subject_id, title, owner.id, status, cur_step, frm, to,
                json.dumps({"opportunity_ref": ref}), created, created + timedelta(hours=72), closed))
            return rid

        for i in range(1, len(path)):
            frm, to = path[i - 1], path[i]
            kind = GATE_OUT_OF.get(frm)
            if kind is None or to in ("lost", "abandoned") or (kind == "ATC") != (to == "won"):
                continue
            lo, hi = times[i - 1], times[i]
            start = hi - min(rng.uniform(0.05, 0.5) * (hi - lo), rng.uniform(2, 120) * 3600)
            if rng.random() < 0.08 and start - lo > 4 * 3600:  # turned down once, asked again
                r0 = lo + rng.uniform(0.1, 0.5) * (start - lo)
                request(kind, "opportunity", opp_id, frm, to, r0, r0 + rng.uniform(0.1, 0.9) * (start - r0),
                        "rejected", rng.randint(1, len(GATE_STEPS[kind])))
            elif rng.random() < 0.03 and start - lo > 4 * 3600:
                r0 = lo + rng.uniform(0.1, 0.5) * (start - lo)
                request(kind, "opportunity", opp_id, frm, to, r0, min(r0 + 72 * 3600, start - 60), "expired")
            linked[i] = request(kind, "opportunity", opp_id, frm, to, start, hi, "approved")
        if current_quote is not None and current_quote[3] > 10 and current_quote[1] != "draft":
            qid, qstatus, qt, _disc, _ = current_quote
            end = None if qstatus == "pending_approval" else min(qt + rng.uniform(2, 48) * 3600, -60.0)
            request("discount", "quote", qid, None, None, qt, end,
                    "pending" if qstatus == "pending_approval" else "rejected" if qstatus == "rejected"
                    else "approved")
        if o == OPEN and path[-1] in GATE_OUT_OF and rng.random() < 0.35:
            kind = GATE_OUT_OF[path[-1]]
            nxt = "won" if kind == "ATC" else OPEN_STAGES[OPEN_STAGES.index(path[-1]) + 1]
            age_h = rng.uniform(1, 70) if rng.random() < 0.8 else rng.uniform(72, 500)
            start = max(-age_h * 3600, times[-1] + 60)
            if start < -60:
                steps = GATE_STEPS[kind]
                done = 1 if len(steps) > 1 and rng.random() < 0.3 else 0
                request(kind, "opportunity", opp_id, path[-1], nxt, start, None, "pending", done)
        return linked

    def contract(self, rng: Random, out: dict, opp_id: int, acc_id: int, owner: Person, currency: str,
                 value_cents: int, quote, won_at: float) -> None:
        cid = self.next_id("contracts")
        finance = self.org.people["finance"]
        fin = finance[rng.randrange(len(finance))].id
        signed = self.at(won_at)
        today = self.cfg.today
        created = self.at(won_at - rng.uniform(3, 20) * DAY)
        delivery_on = signed.date() + timedelta(days=rng.randint(30, 150))
        final_on = delivery_on + timedelta(days=rng.randint(60, 200))
        triggers = [signed.date(), delivery_on if delivery_on <= today else None,
                    final_on if final_on <= today else None]
        status = ("completed" if triggers[2] else "executing" if (today - signed.date()).days > 7 else "signed")
        plan = (("Advance on signing / 预付款", 30, "signing"),
                ("On delivery acceptance / 到货验收款", 60, "delivery_acceptance"),
                ("On final acceptance / 终验款", 10, "final_acceptance"))
        amounts = [value_cents * 30 // 100, value_cents * 60 // 100]
        amounts.append(value_cents - sum(amounts))
        slow_payer = acc_id % 20 == 0  # ~5 % of accounts pay late or never: aging has a tail
        invoiced = paid = 0
        for seq, ((label, p, trig), amt, on) in enumerate(zip(plan, amounts, triggers), start=1):
            mid = self.next_id("contract_milestones")
            out["contract_milestones"].append((mid, cid, seq, label, pct(p), money(amt), trig, None, on))
            if on is None or amt <= 0:
                continue
            issued = min(on + timedelta(days=rng.randint(0, 5)), today)
            if rng.random() < 0.01:  # issued wrongly, voided, issued again
                out["invoices"].append((self.next_id("invoices"), self.number("INV", issued), cid, mid, acc_id,
                                        currency, money(amt), "0.00", "void", issued, issued + timedelta(days=30),
                                        0, None, fin, "Wrong billing address", fin,
                                        min(datetime.combine(issued, dtime(16, 0)), self.now)))
            inv_id = self.next_id("invoices")
            due = issued + timedelta(days=30)
            delay = rng.lognormvariate(math.log(60 if slow_payer else 28), 0.5)
            if slow_payer and rng.random() < 0.5:
                delay = 10_000
            received = issued + timedelta(days=int(delay))
            pay = 0
            if received <= today:
                pay = amt if rng.random() < 0.92 else amt // 2
            status_inv = "paid" if pay == amt else "partially_paid" if pay else "issued"
            overdue = (today - due).days
            dunning = 0 if pay == amt or overdue <= 0 else min(4, 1 + overdue // 30)
            out["invoices"].append((inv_id, self.number("INV", issued), cid, mid, acc_id, currency, money(amt),
                                    money(pay), status_inv, issued, due, dunning,
                                    today - timedelta(days=overdue % 30) if dunning else None, fin,
                                    None, None, None))
            invoiced += amt
            if pay:
                paid += pay
                pay_id = self.next_id("payments")
                at = min(datetime.combine(received, dtime(8, 0)) + timedelta(minutes=rng.randrange(600)),
                         self.now - timedelta(hours=2))
                conf = min(at + timedelta(hours=rng.uniform(0.5, 30)), self.now)
                out["payments"].append((pay_id, self.number("PAY", at), acc_id, currency, money(pay), received,
                                        "bank_transfer" if rng.random() < 0.9 else "acceptance_bill",
                                        f"B{received:%Y%m%d}{pay_id:09d}", "confirmed", money(pay), "0.00",
                                        fin, at, fin, conf, None, cid))
                out["payment_allocations"].append((self.next_id("payment_allocations"), pay_id, inv_id,
                                                   currency, money(pay), conf, fin))
        recognised = 0
        if triggers[1]:
            recognised = value_cents * 70 // 100
            out["revenue_entries"].append((self.next_id("revenue_entries"), cid, money(recognised), triggers[1],
                                           "Delivery accepted / 到货验收", fin))
        if triggers[2]:
            rest = value_cents - recognised
            recognised += rest
            out["revenue_entries"].append((self.next_id("revenue_entries"), cid, money(rest), triggers[2],
                                           "Final acceptance / 终验", fin))
        out["contracts"].append((cid, self.number("CT", signed), opp_id, acc_id, quote[0], currency,
                                 money(value_cents), status, 30, money(invoiced), money(paid), money(recognised),
                                 owner.id, created, created + timedelta(days=1), signed,
                                 min(datetime.combine(triggers[2], dtime(18, 0)), self.now) if triggers[2] else None,
                                 1))
        order_at = min(signed + timedelta(days=rng.uniform(0.5, 5)), self.now)
        out["orders"].append((self.next_id("orders"), self.number("SO", order_at), cid,
                              "delivered" if triggers[1] else "open", owner.id, order_at,
                              min(datetime.combine(triggers[1], dtime(15, 0)), self.now) if triggers[1] else None))


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def _say(msg: str) -> None:
    print(f"[datagen] {msg}", file=sys.stderr, flush=True)


def read_marker(url: str) -> dict | None:
    """What a previous run generated into this database, or None."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            if MARKER not in inspect(c).get_table_names():
                return None
            row = c.execute(text(f"SELECT info FROM {MARKER} ORDER BY id DESC LIMIT 1")).scalar()
            return json.loads(row) if row else None
    finally:
        engine.dispose()


def generate(url: str, cfg: Config, say=_say) -> dict:
    """Migrate, seed, write the dataset. Returns the marker info (rows per table, seconds)."""
    t0 = time.perf_counter()
    say(f"migrating {make_url(url).render_as_string(hide_password=True)}")
    upgrade(url)
    engine = make_engine(url)
    from domain.db.uow import SqlAlchemyUnitOfWork, session_factory

    with SqlAlchemyUnitOfWork(session_factory(engine)) as uow:
        seed_policies(uow)
        uow.commit()
    with engine.connect() as c:
        busy = c.execute(text("SELECT (SELECT count(*) FROM opportunities) + (SELECT count(*) FROM leads) "
                              "+ (SELECT count(*) FROM accounts) + (SELECT count(*) FROM teams)")).scalar()
        users = c.execute(text("SELECT count(*), coalesce(max(id), 0) FROM users")).one()
    if busy or users[0] > 1:
        engine.dispose()
        raise SystemExit("the database already holds business data: generate into a fresh database")
    gen = Generator(cfg, users[1] + 1, say)
    rng = Random(cfg.seed)
    sink_cls = PgSink if engine.dialect.name == "postgresql" else SqliteSink
    sink = sink_cls(engine, list(TABLE_ORDER), say)
    sink.begin()
    try:
        for name, rows in gen.build_org(rng).items():
            sink.write(name, COLS[name], rows)
            gen.rows[name] += len(rows)
        rows = gen.products()
        sink.write("products", COLS["products"], rows)
        gen.rows["products"] += len(rows)
        gen.plan_accounts(rng)
        created, outcome, cycle = gen.plan_deals(rng)
        say(f"planned {cfg.opportunities:,} deals, {len(gen.acc_name):,} accounts, "
            f"{len(gen.org.owners):,} owners ({time.perf_counter() - t0:.1f} s)")
        n, step = cfg.opportunities, max(1, cfg.chunk)
        t_load = time.perf_counter()
        last_say = 0.0
        for k, lo in enumerate(range(0, n, step)):
            hi = min(n, lo + step)
            out = gen.chunk(k, created, outcome, cycle, lo, hi)
            for name in TABLE_ORDER:
                if name in out:
                    sink.write(name, COLS[name], out[name])
            now = time.perf_counter()
            if now - last_say > 2.0 or hi == n:
                last_say = now
                done = hi / n
                rate = hi / (now - t_load)
                say(f"opportunities {hi:,}/{n:,} ({done:.0%})  rows {sum(gen.rows.values()):,}  "
                    f"{rate:,.0f} deals/s  elapsed {now - t0:.0f} s  eta {(n - hi) / rate:.0f} s")
        rows = gen.account_rows(rng)
        sink.write("accounts", COLS["accounts"], rows)
        gen.rows["accounts"] += len(rows)
        info = {**cfg.marker(), "rows": dict(sorted(gen.rows.items()))}

        def after_load(s) -> None:
            for key, value in sorted(gen.numbers.items()):
                s.execute("INSERT INTO number_sequences (name, value) VALUES (%s, %s)" if s.kind == "postgresql"
                          else "INSERT INTO number_sequences (name, value) VALUES (?, ?)", (key, value))
            s.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (id INTEGER PRIMARY KEY, info TEXT NOT NULL)")
            info["seconds"] = round(time.perf_counter() - t0, 1)
            s.execute(f"INSERT INTO {MARKER} (id, info) VALUES (1, %s)" if s.kind == "postgresql"
                      else f"INSERT INTO {MARKER} (id, info) VALUES (1, ?)", (json.dumps(info),))

        say(f"rows written ({time.perf_counter() - t0:.1f} s); finishing")
        sink.finish(after_load)
    except BaseException:
        sink.abort()
        raise
    finally:
        engine.dispose()
    info["seconds"] = round(time.perf_counter() - t0, 1)
    say("rows per table: " + ", ".join(f"{k} {v:,}" for k, v in info["rows"].items()))
    say(f"done in {info['seconds']:.1f} s")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="SQLAlchemy URL of a fresh database (migrated here)")
    ap.add_argument("--opportunities", "-n", type=int, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 22))
    ap.add_argument("--approval-share", type=float, default=0.25, help="share of deals with approval records")
    ap.add_argument("--chunk", type=int, default=20_000, help="deals per COPY batch")
    a = ap.parse_args(argv)
    cfg = Config(opportunities=a.opportunities, seed=a.seed, users=a.users, today=a.today,
                 approval_share=a.approval_share, chunk=a.chunk)
    info = generate(a.url, cfg)
    print(json.dumps(info, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
