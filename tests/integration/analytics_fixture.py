"""A varied, deterministic company for the analytics tests, written straight into the tables.

`build_dataset(engine, org)` inserts ~250 opportunities across both regions' owners (and one
owner without a team), in CNY/USD/EUR, at every stage, with stage-history chains (some with
equal timestamps, ids deliberately out of time order), quotes with superseded versions and lines
over several products, leads, approval requests of every kind and status, contracts with
milestones, invoices (void, partly paid, due in and out of the periods), payments (confirmed,
proposed, rejected) with allocations, and sales targets per user and team.

Rows go in with SQLAlchemy Core and explicit ids (PostgreSQL sequences are moved past them), so
nothing here runs a service: the oracle (analytics_oracle.py) and the services read the same rows.

Each test module declares its own module-scoped `analytics_db` fixture with
`analytics_database` (one database per backend per module): the dataset is built once and only
read afterwards. Every unit of work it hands out runs on the fixed
clock NOW.
"""
from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Engine, insert, select, text

from domain.db import tables as t
from domain.db.engine import make_engine
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory
from tests import builders
from tests.integration.conftest import _require_pg

NOW = datetime(2026, 11, 22, 10, 0)
TODAY = NOW.date()
SEED = 20261122

OPEN = ("qualify", "initiated", "solution", "bid", "negotiate")
KINDS = ("ATI", "solution_review", "ATB", "ATC", "discount", "contract_change")
# Who owns deals, and how often (sales_ops has no team: the "—" team group).
OWNER_WEIGHTS = {"rep": 6, "rep2": 4, "manager": 2, "director": 1, "rep_w": 6, "manager_w": 2,
                 "director_w": 1, "sales_ops": 1}
PRODUCTS = [  # sku, name, cost, floor
    ("MES-LIC", "MES licence", "300", "500"),
    ("MES-SVC", "Implementation services", "600", "800"),
    ("EDGE-GW", "Edge gateway", "2000", "2600"),
    ("CLOUD-SUB", "Cloud subscription", "100", "150"),
    ("TRAIN", "Training day", "1500", "1800"),
]
CENT = Decimal("0.01")


def money(x) -> Decimal:
    return Decimal(x).quantize(CENT, ROUND_HALF_UP)


@dataclass
class Planted:
    """Deals placed on purpose for edge tests (ids)."""

    usd_commit: int = 0  # rep, negotiate, USD 100,000.00, closes on 2026-10-01 (Q4's first day)
    eur_on_end: int = 0  # rep, bid, EUR 50,000.00, closes on 2027-01-01 (Q4's end: excluded)
    west_big: int = 0  # rep_w, negotiate, CNY 8,888,888.88, closes 2026-11-30
    won_on_start: int = 0  # rep, won at 2026-10-01 00:00:00 (in Q4)
    won_before_start: int = 0  # rep2, won at 2026-09-30 23:59:59 (in Q3)
    stuck_exact: int = 0  # rep2, last change exactly 30 days before NOW
    past_close: int = 0  # rep, expected close yesterday, moved last week
    closes_today: int = 0  # rep, expected close today (not past), moved last week
    no_quote: int = 0  # rep2, open, no close date, no quote
    all_superseded: list[int] = field(default_factory=list)  # current quote: none
    top_superseded: int = 0  # v3 superseded, v2 current
    foreign_quote: int = 0  # CNY deal quoted in USD


@dataclass
class Dataset:
    planted: Planted
    counts: dict[str, int]


class _Ids:
    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def next(self, table: str) -> int:
        self.n[table] = self.n.get(table, 0) + 1
        return self.n[table]


def _at(d: date, rng: random.Random, *, before_ten: bool = False) -> datetime:
    hour = rng.randint(0, 9) if before_ten else rng.randint(0, 23)
    return datetime.combine(d, time(hour, rng.randint(0, 59), rng.randint(0, 59)))


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def build_dataset(engine: Engine, org: builders.Org, seed: int = SEED) -> Dataset:
    rng = random.Random(seed)
    ids = _Ids()
    rows: dict[str, list[dict]] = {name: [] for name in (
        "accounts", "products", "opportunities", "stage_history", "quotes", "quote_lines", "leads",
        "approval_requests", "contracts", "contract_milestones", "invoices", "payments",
        "payment_allocations", "targets")}
    planted = Planted()
    admin = org["admin"]
    with engine.connect() as conn:
        user_rows = {r.id: r for r in conn.execute(select(t.users))}
    region_of = {k: user_rows[org[k]].region for k in OWNER_WEIGHTS}

    # ------------------------------------------------------------------ accounts, products
    owners = list(OWNER_WEIGHTS)
    weights = [OWNER_WEIGHTS[k] for k in owners]
    accounts_by_owner: dict[str, list[int]] = {k: [] for k in owners}
    account_name: dict[int, str] = {}
    for i in range(30):
        key = owners[i % len(owners)]
        aid = ids.next("accounts")
        name = f"Customer {i:02d} {'华东' if region_of[key] == 'east' else 'West'} Ltd"
        account_name[aid] = name
        accounts_by_owner[key].append(aid)
        rows["accounts"].append(dict(id=aid, name=name, name_norm=name.lower(), industry="manufacturing",
                                     region=region_of[key], tier="standard", owner_id=org[key],
                                     created_at=datetime(2024, 6, 1), updated_at=datetime(2024, 6, 1)))
    product_ids = {}
    for sku, name, cost, floor in PRODUCTS:
        pid = ids.next("products")
        product_ids[sku] = pid
        rows["products"].append(dict(id=pid, sku=sku, name_en=name, name_zh=name, unit="unit", currency="CNY",
                                     cost=Decimal(cost), floor_price=Decimal(floor)))

    # ------------------------------------------------------------------ opportunities + history
    history_specs: list[tuple[int, list[tuple[str | None, str, int, datetime]]]] = []
    opp_info: dict[int, dict] = {}

    def add_opp(owner: str, *, stage: str, currency: str, amount: Decimal, created: datetime,
                times: list[datetime], ecd: date | None, region: str | None = None,
                probability: int | None = None, lost_after: int | None = None) -> int:
        """`times`: one timestamp per history row (qualify first). Closed stages need `lost_after`
        (index of the last open stage reached) for lost/abandoned."""
        oid = ids.next("opportunities")
        if stage == "won":
            path = [*OPEN, "won"]
        elif stage in ("lost", "abandoned"):
            path = [*OPEN[: (lost_after or 0) + 1], stage]
        else:
            path = list(OPEN[: OPEN.index(stage) + 1])
        assert len(times) == len(path), (oid, path, times)
        default_p = {"qualify": 10, "initiated": 20, "solution": 40, "bid": 60, "negotiate": 80,
                     "won": 100, "lost": 0, "abandoned": 0}
        prob = probability if probability is not None else default_p[stage]
        if probability is None and stage in OPEN and rng.random() < 0.3:
            prob = max(5, min(95, prob + rng.choice((-5, 5, 10, -10, 15))))
        changed = max(times)
        rows["opportunities"].append(dict(
            id=oid, name=f"Deal {oid:03d} {stage}", account_id=rng.choice(accounts_by_owner[owner]),
            owner_id=org[owner], amount=amount, currency=currency,
            region=region_of[owner] if region is None else region, expected_close_date=ecd,
            competitors=[], stage=stage, probability=prob,
            close_reason="budget cut" if stage in ("lost", "abandoned") else None,
            created_at=created, updated_at=changed, stage_changed_at=changed, version=1))
        chain = []
        prev = None
        for to, at in zip(path, times):
            chain.append((prev, to, default_p[to], at))
            prev = to
        history_specs.append((oid, chain))
        opp_info[oid] = dict(owner=owner, stage=stage, currency=currency, amount=amount, created=created,
                             closed=changed if stage in ("won", "lost", "abandoned") else None)
        return oid

    def chain_times(start: datetime, end: datetime, n: int, *, ties: bool = True) -> list[datetime]:
        """n timestamps from start to end inclusive, ascending; sometimes two equal ones."""
        if n == 1:
            return [start]
        span = int((end - start).total_seconds())
        inner = sorted(rng.randint(0, span) for _ in range(n - 2))
        out = [start, *(start + timedelta(seconds=s) for s in inner), end]
        if ties and n >= 3 and rng.random() < 0.25:
            # Equal timestamps: the id decides the order. The last one keeps its time (an open
            # deal's last change is before ten o'clock: see random_deal).
            k = rng.randint(1, n - 1)
            if k == n - 1:
                out[k - 1] = out[k]
            else:
                out[k] = out[k - 1]
        return out

    def random_deal(i: int) -> None:
        owner = rng.choices(owners, weights)[0]
        currency = rng.choices(("CNY", "USD", "EUR"), (6, 3, 2))[0]
        amount = Decimal(rng.randint(50_000_00, 3_000_000_00)) / 100
        if currency != "CNY":
            amount = (amount / 7).quantize(CENT)
        roll = rng.random()
        region = None if roll < 0.8 else ("" if roll < 0.9 else "north")
        created_day = _day(rng, date(2025, 1, 1), date(2026, 11, 20))
        created = _at(created_day, rng)
        stage = rng.choices((*OPEN, "won", "lost", "abandoned"), (10, 9, 9, 9, 9, 16, 10, 6))[0]
        latest = NOW - timedelta(minutes=5)
        if stage in OPEN:
            n = OPEN.index(stage) + 1
            end_day = _day(rng, created_day, TODAY)
            end = _at(end_day, rng, before_ten=True)  # days in stage: same in whole days and dates
            if end < created:
                end = created if created.time() < time(10) else datetime.combine(created_day, time(9, 59, 59))
                if end < created:  # created after ten on its day: move the change to the next morning
                    end = datetime.combine(created_day + timedelta(days=1), time(8, 0))
                    if end > latest:
                        end = datetime.combine(TODAY, time(9, 0))
            lost_after = None
        else:
            lost_after = rng.randint(0, 4) if stage != "won" else None
            n = 6 if stage == "won" else lost_after + 2
            end = created + timedelta(seconds=rng.randint(3600, max(3601, int((latest - created).total_seconds()))))
        if created > end:
            created = end
        times = chain_times(created, end, n)
        times[0] = created
        if rng.random() < 0.15:
            ecd = None
        elif rng.random() < 0.45:
            ecd = _day(rng, date(2026, 10, 1), date(2026, 12, 31))
        else:
            ecd = _day(rng, date(2025, 6, 1), date(2027, 6, 30))
        add_opp(owner, stage=stage, currency=currency, amount=amount, created=created, times=times, ecd=ecd,
                region=(None if region is None else region), lost_after=lost_after)

    # Planted deals first (their ids are small and stable).
    def t5(start: datetime, end: datetime) -> list[datetime]:
        return chain_times(start, end, 5, ties=False)

    planted.usd_commit = add_opp("rep", stage="negotiate", currency="USD", amount=Decimal("100000.00"),
                                 created=datetime(2026, 8, 3, 9), ecd=date(2026, 10, 1), probability=80,
                                 times=t5(datetime(2026, 8, 3, 9), datetime(2026, 11, 2, 9, 30)))
    planted.eur_on_end = add_opp("rep", stage="bid", currency="EUR", amount=Decimal("50000.00"),
                                 created=datetime(2026, 9, 1, 9), ecd=date(2027, 1, 1), probability=60,
                                 times=chain_times(datetime(2026, 9, 1, 9), datetime(2026, 11, 10, 8), 4,
                                                   ties=False))
    planted.west_big = add_opp("rep_w", stage="negotiate", currency="CNY", amount=Decimal("8888888.88"),
                               created=datetime(2026, 7, 1, 9), ecd=date(2026, 11, 30), probability=75,
                               times=t5(datetime(2026, 7, 1, 9), datetime(2026, 11, 20, 9)))
    planted.won_on_start = add_opp("rep", stage="won", currency="CNY", amount=Decimal("1234567.89"),
                                   created=datetime(2026, 5, 5, 9), ecd=date(2026, 9, 30),
                                   times=[*t5(datetime(2026, 5, 5, 9), datetime(2026, 9, 20, 9)),
                                          datetime(2026, 10, 1, 0, 0, 0)])
    planted.won_before_start = add_opp("rep2", stage="won", currency="EUR", amount=Decimal("76543.21"),
                                       created=datetime(2026, 4, 4, 9), ecd=date(2026, 9, 30),
                                       times=[*t5(datetime(2026, 4, 4, 9), datetime(2026, 9, 1, 9)),
                                              datetime(2026, 9, 30, 23, 59, 59)])
    planted.stuck_exact = add_opp("rep2", stage="solution", currency="CNY", amount=Decimal("300000.00"),
                                  created=datetime(2026, 9, 1, 8), ecd=date(2026, 12, 15),
                                  times=[datetime(2026, 9, 1, 8), datetime(2026, 9, 20, 8), NOW - timedelta(days=30)])
    planted.past_close = add_opp("rep", stage="initiated", currency="CNY", amount=Decimal("222222.22"),
                                 created=datetime(2026, 11, 1, 8), ecd=TODAY - timedelta(days=1),
                                 times=[datetime(2026, 11, 1, 8), datetime(2026, 11, 15, 9)])
    planted.closes_today = add_opp("rep", stage="initiated", currency="CNY", amount=Decimal("333333.33"),
                                   created=datetime(2026, 11, 1, 8), ecd=TODAY,
                                   times=[datetime(2026, 11, 1, 8), datetime(2026, 11, 15, 9)])
    planted.no_quote = add_opp("rep2", stage="qualify", currency="CNY", amount=Decimal("45678.90"),
                               created=datetime(2026, 10, 20, 8), ecd=None, times=[datetime(2026, 10, 20, 8)])
    for i in range(240):
        random_deal(i)

    # Stage history ids: shuffled, so id order is not time order (only ties need the id).
    all_history = [(oid, row) for oid, chain in history_specs for row in chain]
    hist_ids = list(range(1, len(all_history) + 1))
    rng.shuffle(hist_ids)
    for hid, (oid, (frm, to, p, at)) in zip(hist_ids, all_history):
        rows["stage_history"].append(dict(id=hid, opportunity_id=oid, from_stage=frm, to_stage=to, probability=p,
                                          changed_at=at, changed_by=org[opp_info[oid]["owner"]]))
    # What the domain writes with each row and migration 0011 backfills: microseconds since the previous
    # row and the first row's changed_at, in (changed_at, id) order (equal times + shuffled ids: not chain order).
    by_deal: dict[int, list[dict]] = {}
    for r in rows["stage_history"]:
        by_deal.setdefault(r["opportunity_id"], []).append(r)
    for deal_rows in by_deal.values():
        deal_rows.sort(key=lambda r: (r["changed_at"], r["id"]))
        for prev, r in zip([None, *deal_rows], deal_rows):
            r.update(spell_us=(r["changed_at"] - prev["changed_at"]) // timedelta(microseconds=1) if prev else None,
                     history_started_at=deal_rows[0]["changed_at"])
    rows["stage_history"].sort(key=lambda r: r["id"])

    # ------------------------------------------------------------------ quotes and lines
    current_quote: dict[int, dict] = {}
    opp_ids = sorted(opp_info)
    quoted = [o for o in opp_ids if o != planted.no_quote
              and rng.random() < (0.95 if opp_info[o]["stage"] == "won" else 0.65)]
    quoted += [o for o in (planted.usd_commit, planted.west_big, planted.won_on_start) if o not in quoted]
    quoted.sort()
    specials = [o for o in quoted if o > planted.no_quote and opp_info[o]["stage"] in OPEN]
    planted.all_superseded = specials[:2]
    planted.top_superseded = specials[2]
    planted.foreign_quote = next(o for o in specials[3:] if opp_info[o]["currency"] == "CNY")
    for oid in quoted:
        info = opp_info[oid]
        versions = rng.choice((1, 1, 2, 2, 3))
        if oid == planted.top_superseded:
            versions = 3
        q_currency = "USD" if oid == planted.foreign_quote else info["currency"]
        for v in range(1, versions + 1):
            latest = v == versions
            if oid in planted.all_superseded or (not latest and not (oid == planted.top_superseded and v == 2)):
                status = "superseded"
            elif oid == planted.top_superseded and v == 3:
                status = "superseded"
            elif info["stage"] == "won":
                status = "accepted"
            else:
                status = rng.choice(("draft", "pending_approval", "approved", "sent", "accepted", "rejected",
                                     "expired"))
            qid = ids.next("quotes")
            lines = []
            skus = [rng.choice(PRODUCTS)[0] for _ in range(rng.randint(1, 4))]  # repeats allowed
            for pos, sku in enumerate(skus, 1):
                qty = Decimal(rng.randint(1, 400)) if rng.random() < 0.7 else Decimal(rng.randint(1, 4000)) / 10
                price = Decimal(rng.randint(100_00, 9_000_000)) / 100
                disc = Decimal(rng.choice(("0", "5", "10", "12.5", "15", "33.33", "7.25")))
                lines.append(dict(id=ids.next("quote_lines"), quote_id=qid, position=pos,
                                  product_id=product_ids[sku], sku=sku,
                                  name=next(p[1] for p in PRODUCTS if p[0] == sku), quantity=qty,
                                  list_price=price, discount_pct=disc, unit_cost=Decimal("100"),
                                  floor_price=Decimal("50")))
            # Prices scaled so the quote is worth about the deal (in the deal's currency when the
            # quote's differs: the foreign quote is then simply a different number).
            raw = sum((ln["quantity"] * ln["list_price"] * (1 - ln["discount_pct"] / 100) for ln in lines),
                      Decimal(0))
            factor = info["amount"] / raw * Decimal(rng.randint(80, 110)) / 100
            for ln in lines:
                ln["list_price"] = max(money(ln["list_price"] * factor), CENT)
            net = sum((ln["quantity"] * ln["list_price"] * (1 - ln["discount_pct"] / 100) for ln in lines),
                      Decimal(0))
            lst = sum((ln["quantity"] * ln["list_price"] for ln in lines), Decimal(0))
            created = info["created"] + timedelta(days=v)
            row = dict(id=qid, opportunity_id=oid, version=v, status=status, total=money(net),
                       currency=q_currency, created_at=created, list_total=money(lst),
                       cost_total=money(sum((ln["quantity"] * 100 for ln in lines), Decimal(0))),
                       discount_pct=Decimal("0"), created_by=org[info["owner"]],
                       sent_at=created if status in ("sent", "accepted") else None,
                       accepted_at=created if status == "accepted" else None)
            rows["quotes"].append(row)
            rows["quote_lines"].extend(lines)
            if status != "superseded":
                current_quote[oid] = row

    # ------------------------------------------------------------------ contracts, invoices, payments
    number = {"contracts": 0, "invoices": 0, "payments": 0}

    def next_number(kind: str, prefix: str) -> str:
        number[kind] += 1
        return f"{prefix}-{number[kind]:05d}"

    bank_refs = 0
    for oid in quoted:
        info = opp_info[oid]
        q = current_quote.get(oid)
        if q is None or q["total"] <= 0:
            continue
        if info["stage"] == "won":
            if rng.random() < 0.15:
                continue  # won without any contract
            status = rng.choices(("signed", "executing", "completed", "closed", "draft", "under_review"),
                                 (4, 4, 2, 1, 1, 1))[0]
        elif info["stage"] == "negotiate" and rng.random() < 0.3:
            status = "draft"
        else:
            continue
        cid = ids.next("contracts")
        value = q["total"]
        signed = status not in ("draft", "under_review")
        signed_at = (info["closed"] or NOW) - timedelta(hours=2) if signed else None
        terms = rng.choice((0, 15, 30, 45, 60, 90))
        account = next(r["account_id"] for r in rows["opportunities"] if r["id"] == oid)
        contract = dict(id=cid, number=next_number("contracts", "CT"), opportunity_id=oid, account_id=account,
                        quote_id=q["id"], currency=q["currency"], value=value, status=status,
                        payment_terms_days=terms, invoiced_total=Decimal(0), paid_total=Decimal(0),
                        recognised_total=Decimal(0), created_by=org[info["owner"]],
                        created_at=(signed_at or NOW) - timedelta(days=3), signed_at=signed_at, version=1)
        rows["contracts"].append(contract)
        n_ms = rng.randint(1, 3)
        pcts = {1: [Decimal(100)], 2: [Decimal(30), Decimal(70)], 3: [Decimal(30), Decimal(60), Decimal(10)]}[n_ms]
        amounts = [money(value * p / 100) for p in pcts[:-1]]
        amounts.append(value - sum(amounts, Decimal(0)))
        for seq, (pct, amt) in enumerate(zip(pcts, amounts), 1):
            mid = ids.next("contract_milestones")
            rows["contract_milestones"].append(dict(id=mid, contract_id=cid, seq=seq, label=f"M{seq}", pct=pct,
                                                    amount=amt, trigger="signing"))
            if not signed or amt <= 0 or rng.random() < 0.15:
                continue
            start = max(signed_at.date(), date(2025, 6, 1))
            issued = _day(rng, start, TODAY) if start <= TODAY else TODAY
            if rng.random() < 0.1:
                issued = TODAY  # issued today: inside the 90 days, in no bucket but current
            due = issued + timedelta(days=terms)
            kind = rng.choices(("paid", "partially_paid", "issued", "void"), (4, 2, 3, 1))[0]
            if kind == "void":
                rows["invoices"].append(dict(
                    id=ids.next("invoices"), number=next_number("invoices", "INV"), contract_id=cid,
                    milestone_id=mid, account_id=account, currency=contract["currency"], amount=amt,
                    paid_amount=Decimal(0), status="void", issued_on=issued, due_on=due, created_by=admin,
                    void_reason="wrong address", voided_by=admin, voided_at=datetime.combine(issued, time(12))))
                kind = rng.choice(("issued", "paid", "skip"))  # reissued (or not)
                if kind == "skip":
                    continue
            paid = {"paid": amt, "issued": Decimal(0),
                    "partially_paid": money(amt * Decimal(rng.choice(("0.3", "0.5", "0.75"))))}[kind]
            if kind == "partially_paid" and not (0 < paid < amt):
                kind, paid = "issued", Decimal(0)
            inv_id = ids.next("invoices")
            rows["invoices"].append(dict(
                id=inv_id, number=next_number("invoices", "INV"), contract_id=cid, milestone_id=mid,
                account_id=account, currency=contract["currency"], amount=amt, paid_amount=paid, status=kind,
                issued_on=issued, due_on=due, created_by=admin))
            contract["invoiced_total"] += amt
            contract["paid_total"] += paid
            if paid > 0:
                parts = [paid] if rng.random() < 0.7 or paid < 1 else [money(paid / 2), paid - money(paid / 2)]
                for part in parts:
                    bank_refs += 1
                    pay_id = ids.next("payments")
                    extra = money(Decimal(rng.randint(0, 500))) if rng.random() < 0.2 else Decimal(0)
                    received = _day(rng, issued, TODAY)
                    rows["payments"].append(dict(
                        id=pay_id, number=next_number("payments", "PAY"), account_id=account,
                        currency=contract["currency"], amount=part + extra, received_on=received,
                        method="bank_transfer", bank_ref=f"REF{bank_refs:06d}", status="confirmed",
                        allocated=part, unapplied=extra, created_by=admin,
                        created_at=datetime.combine(received, time(11)), confirmed_by=org["finance"],
                        confirmed_at=datetime.combine(received, time(15))))
                    rows["payment_allocations"].append(dict(
                        id=ids.next("payment_allocations"), payment_id=pay_id, invoice_id=inv_id,
                        currency=contract["currency"], amount=part,
                        allocated_at=datetime.combine(received, time(15)), allocated_by=org["finance"]))
            elif rng.random() < 0.3:
                # Money the AR says arrived, not confirmed yet: its allocation must not count as collected.
                bank_refs += 1
                pay_id = ids.next("payments")
                received = _day(rng, issued, TODAY)
                part = money(amt / 3)
                status = rng.choice(("proposed", "rejected"))
                rows["payments"].append(dict(
                    id=pay_id, number=next_number("payments", "PAY"), account_id=account,
                    currency=contract["currency"], amount=part, received_on=received, method="bank_transfer",
                    bank_ref=f"REF{bank_refs:06d}", status=status, allocated=Decimal(0),
                    unapplied=Decimal(0), created_by=org[info["owner"]],
                    created_at=datetime.combine(received, time(11))))
                rows["payment_allocations"].append(dict(
                    id=ids.next("payment_allocations"), payment_id=pay_id, invoice_id=inv_id,
                    currency=contract["currency"], amount=part,
                    allocated_at=datetime.combine(received, time(11)), allocated_by=org[info["owner"]]))
        if signed:
            contract["recognised_total"] = money(value * Decimal(rng.choice(("0", "0.3", "0.6", "1"))))

    # ------------------------------------------------------------------ leads
    lead_owners = [*owners, None]
    converted_pool = [o for o in opp_ids if rng.random() < 0.5]
    for i in range(160):
        owner = rng.choices(lead_owners, [*weights, 2])[0]
        created = _at(_day(rng, date(2025, 6, 1), TODAY), rng, before_ten=True)
        status = rng.choices(("new", "contacted", "nurturing", "qualified", "converted", "disqualified"),
                             (3, 2, 1, 2, 4, 2))[0]
        opp = None
        if status == "converted":
            if not converted_pool:
                status = "qualified"
            else:
                opp = converted_pool.pop()
        if status == "converted" and owner is None:
            owner = opp_info[opp]["owner"]
        rows["leads"].append(dict(
            id=ids.next("leads"), source="referral", company=f"Lead Co {i}", contact_name=f"Contact {i}",
            region="east", currency="CNY", status=status,
            disqualify_reason="no budget" if status == "disqualified" else None,
            owner_id=org[owner] if owner else None, score=50, score_reasons=[],
            email_norm=f"lead{i}@example.com", identity_norm=f"lead co {i}|contact {i}", opportunity_id=opp,
            created_at=created, updated_at=created))
    # Period edges for leads: created on the quarter's first second and on its last day.
    for i, created in enumerate((datetime(2026, 10, 1, 0, 0), datetime(2026, 9, 30, 23, 59, 59))):
        rows["leads"].append(dict(
            id=ids.next("leads"), source="website", company=f"Edge Lead {i}", contact_name=f"Edge {i}",
            region="east", currency="CNY", status="new", owner_id=org["rep"], score=10, score_reasons=[],
            identity_norm=f"edge lead {i}", created_at=created, updated_at=created))

    # ------------------------------------------------------------------ approval requests
    pending_subjects: set[tuple[str, int, str]] = set()
    requesters = [*owners, "sales_ops"]
    for i in range(110):
        kind = KINDS[i % len(KINDS)]
        subject_type = {"discount": "quote", "contract_change": "contract"}.get(kind, "opportunity")
        subject_id = rng.randint(1, 400)
        who = rng.choices(requesters, [*weights, 1])[0]
        created = _at(_day(rng, date(2026, 5, 1), TODAY - timedelta(days=1)), rng)
        status = rng.choices(("pending", "approved", "rejected", "expired", "cancelled"), (3, 4, 2, 1, 1))[0]
        if status == "pending" and (subject_type, subject_id, kind) in pending_subjects:
            status = "approved"
        closed = None
        if status == "pending":
            pending_subjects.add((subject_type, subject_id, kind))
        else:
            closed = created + timedelta(minutes=rng.randint(30, 20_000))
            if closed > NOW:
                closed = NOW - timedelta(minutes=1)
        rows["approval_requests"].append(dict(
            id=ids.next("approval_requests"), kind=kind, subject_type=subject_type, subject_id=subject_id,
            title=f"{kind} #{i}", requested_by=org[who], status=status, current_step=1, context={},
            created_at=created, closed_at=closed))
    # Decided exactly at the quarter's start (in) and one second before (out).
    for closed in (datetime(2026, 10, 1, 0, 0), datetime(2026, 9, 30, 23, 59, 59)):
        rows["approval_requests"].append(dict(
            id=ids.next("approval_requests"), kind="ATB", subject_type="opportunity", subject_id=999,
            title="edge", requested_by=org["rep"], status="approved", current_step=1, context={},
            created_at=closed - timedelta(hours=30), closed_at=closed))

    # ------------------------------------------------------------------ targets
    q4 = (date(2026, 10, 1), date(2027, 1, 1), "2026-Q4")
    nov = (date(2026, 11, 1), date(2026, 12, 1), "2026-11")
    y26 = (date(2026, 1, 1), date(2027, 1, 1), "2026")
    q3 = (date(2026, 7, 1), date(2026, 10, 1), "2026-Q3")
    user_targets = [("rep", q4, "5000000"), ("rep2", q4, "3000000"), ("manager", q4, "2000000"),
                    ("rep_w", q4, "4000000"), ("director_w", q4, "1000000.50"), ("rep", nov, "1500000"),
                    ("rep_w", nov, "900000"), ("rep", y26, "20000000"), ("rep_w", y26, "15000000"),
                    ("rep", q3, "4000000"), ("rep2", q3, "2500000"), ("manager_w", q3, "1000000")]
    for who, (ps, pe, label), amt in user_targets:
        rows["targets"].append(dict(id=ids.next("targets"), user_id=org[who], team_id=None, period_start=ps,
                                    period_end=pe, label=label, amount=Decimal(amt), set_by=admin,
                                    set_at=datetime(2026, 9, 25, 9)))
    for team, (ps, pe, label), amt in [("team_east", q4, "12000000"), ("team_west", q4, "6000000"),
                                       ("team_east", y26, "40000000"), ("team_west", q3, "5000000")]:
        rows["targets"].append(dict(id=ids.next("targets"), user_id=None, team_id=org[team], period_start=ps,
                                    period_end=pe, label=label, amount=Decimal(amt), set_by=admin,
                                    set_at=datetime(2026, 9, 25, 9)))

    _write(engine, rows)
    return Dataset(planted=planted, counts={k: len(v) for k, v in rows.items()})


ORDER = ("accounts", "products", "opportunities", "stage_history", "quotes", "quote_lines", "contracts",
         "contract_milestones", "invoices", "payments", "payment_allocations", "leads", "approval_requests",
         "targets")


def _write(engine: Engine, rows: dict[str, list[dict]]) -> None:
    with engine.begin() as conn:
        for name in ORDER:
            batch = rows[name]
            if not batch:
                continue
            table = t.metadata.tables[name]
            # One column set per statement: fill the optional columns a row left out with None.
            cols = set().union(*(r.keys() for r in batch))
            full = [{c: r.get(c) for c in cols} for r in batch]
            conn.execute(insert(table), full)
        if engine.dialect.name == "postgresql":
            for name in ORDER:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                  f"(SELECT COALESCE(MAX(id), 1) FROM {name}))"))


# --------------------------------------------------------------------------- the pytest fixture


@dataclass
class AnalyticsDb:
    backend: str
    engine: Engine
    org: builders.Org
    dataset: Dataset
    uow_factory: object
    oracle: object


def fixed_clock_factory(engine: Engine):
    sf = session_factory(engine)

    def make(**kwargs) -> SqlAlchemyUnitOfWork:
        kwargs.setdefault("clock", lambda: NOW)
        return SqlAlchemyUnitOfWork(sf, **kwargs)

    make.session_factory = sf
    return make


def analytics_database(request, tmp_path_factory, sqlite_template):
    """Generator body of a test module's `analytics_db` fixture (module scope, params=BACKENDS):
    the dataset, built once per backend for that module; read-only afterwards."""
    from tests.integration.analytics_oracle import Oracle

    drop = None
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("analytics") / "ltc.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        server = _require_pg(request)
        name = server.new_name("analytics")
        url = server.create(name, template=server.migrated_template())
        drop = lambda: server.drop(name)  # noqa: E731
    engine = make_engine(url)
    try:
        factory = fixed_clock_factory(engine)
        org = builders.build_org(factory)
        dataset = build_dataset(engine, org)
        yield AnalyticsDb(request.param, engine, org, dataset, factory, Oracle(engine, NOW))
    finally:
        engine.dispose()
        if drop is not None:
            drop()

