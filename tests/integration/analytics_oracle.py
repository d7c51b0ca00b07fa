"""Every metric of domain/analytics/DEFINITIONS.md re-computed in plain Python.

Written from DEFINITIONS.md alone (not from the services): the rows are read back with
`SELECT *` per table into dicts, and each number is computed with Decimal arithmetic, sorting for
medians, `Settings().fx_rates` for conversions, and rounding half-up to 0.01 only at the end.
Periods are worked out here too (not with domain.analytics.periods), so the services' period
names are checked as well.

Readings of the definitions where the text leaves a choice (listed in the H3 report):
- labels: owner = users.name_en; team = teams.name ("—" without one); product = products.name_en;
  keys: owner/team id as a string, sku, "" for none.
- team narrowing is refused unless every member of the team is in the asker's scope (a team that
  contains the asker's own director is "someone outside the scope"; never cut down silently).
- pipeline by quarter/month is in time order, "—" last (the bullet gives those groups their own
  order; "sorted by amount" reads as meant for the other groupings).
- product total row: the sum of the rows as shown (rounded), count included (a deal with two
  products counts twice).
- forecast owner rows of an "all" scope: every user with a number or a target; team rows: each
  team with a member in scope that has a number or a team target; both sorted by weighted
  forecast desc, ties label.
- funnel: "all" scope counts unowned leads too.
- days in stage / no_move: whole days of (now − stage_changed_at) (the fixture keeps open deals'
  last change before ten o'clock, so whole days and calendar days agree).
- average decision hours: over requests decided (closed_at) in the period.
- rounding: every sum over rows is exact until it is rounded to 0.01; a figure derived from
  other figures (average deal = won amount / won, a gap, an aging row's total and overdue, a
  period-over-period change) is computed from those figures as shown, so a table adds up.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Engine, select

from domain.db import tables as t
from domain.settings import Settings

OPEN = ("qualify", "initiated", "solution", "bid", "negotiate")
CLOSED = ("won", "lost", "abandoned")
KINDS = ("ATI", "solution_review", "ATB", "ATC", "discount", "contract_change")
SIGNED = ("signed", "executing", "completed", "closed")
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
NONE = "—"
ZERO = Decimal(0)


class Money(Decimal):
    """A rounded amount that knows whether floating-point arithmetic may have rounded it the
    other way (`fragile`): its exact value lay on a half cent, or it was derived from a figure
    that did. Only the SQLite comparison uses this."""

    fragile: bool


def q2(x: Decimal, *inputs: Decimal) -> Decimal:
    """Round half-up to 0.01; `inputs`: the shown figures `x` was computed from."""
    m = Money(Decimal(x).quantize(Decimal("0.01"), ROUND_HALF_UP))
    m.fragile = on_half_cent(Decimal(x)) or any(getattr(i, "fragile", False) for i in inputs)
    return m


def shown_sum(figures: list[Decimal]) -> Decimal:
    """The sum of figures as shown (already rounded)."""
    return q2(sum(figures, ZERO), *figures)


def on_half_cent(x: Decimal) -> bool:
    """x·100 ends in .5 (within float noise): floating-point sums may round it either way."""
    frac = abs(x * 100) % 1
    return abs(frac - Decimal("0.5")) < Decimal("0.000001")


def q1(x: Decimal | None) -> Decimal | None:
    return None if x is None else Decimal(x).quantize(Decimal("0.1"), ROUND_HALF_UP)


def ratio(a, b) -> Decimal | None:
    return None if not b else Decimal(a) / Decimal(b)


def median(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def days_between(a: datetime, b: datetime) -> Decimal:
    delta = b - a
    return Decimal(delta.days * 86400 + delta.seconds) / Decimal(86400)


def hours_between(a: datetime, b: datetime) -> Decimal:
    delta = b - a
    return Decimal(delta.days * 86400 + delta.seconds) / Decimal(3600)


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Span:
    start: date
    end: date  # exclusive
    label: str
    kind: str

    def has(self, d: date | datetime | None) -> bool:
        if d is None:
            return False
        if isinstance(d, datetime):
            d = d.date()
        return self.start <= d < self.end


def _month(y: int, m: int) -> Span:
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    return Span(date(y, m, 1), date(ny, nm, 1), f"{y}-{m:02d}", "month")


def _quarter(y: int, q: int) -> Span:
    m = 3 * (q - 1) + 1
    end = date(y + 1, 1, 1) if q == 4 else date(y, m + 3, 1)
    return Span(date(y, m, 1), end, f"{y}-Q{q}", "quarter")


def _year(y: int) -> Span:
    return Span(date(y, 1, 1), date(y + 1, 1, 1), str(y), "year")


def span(name: str, today: date) -> Span:
    """The handful of period names the tests use, computed by hand."""
    q = (today.month - 1) // 3 + 1
    if name == "this_month":
        return _month(today.year, today.month)
    if name == "last_month":
        return _month(today.year - 1, 12) if today.month == 1 else _month(today.year, today.month - 1)
    if name == "this_quarter":
        return _quarter(today.year, q)
    if name == "last_quarter":
        return _quarter(today.year - 1, 4) if q == 1 else _quarter(today.year, q - 1)
    if name == "next_quarter":
        return _quarter(today.year + 1, 1) if q == 4 else _quarter(today.year, q + 1)
    if name == "this_year":
        return _year(today.year)
    if name == "last_year":
        return _year(today.year - 1)
    if "-Q" in name:
        y, qq = name.split("-Q")
        return _quarter(int(y), int(qq))
    if "-" in name:
        y, m = name.split("-")
        return _month(int(y), int(m))
    return _year(int(name))


def before(p: Span) -> Span:
    if p.kind == "month":
        return _month(p.start.year - 1, 12) if p.start.month == 1 else _month(p.start.year, p.start.month - 1)
    if p.kind == "quarter":
        q = (p.start.month - 1) // 3 + 1
        return _quarter(p.start.year - 1, 4) if q == 1 else _quarter(p.start.year, q - 1)
    return _year(p.start.year - 1)


# --------------------------------------------------------------------------- scope


class Denied(Exception):
    """The oracle's PermissionDenied."""


@dataclass(frozen=True)
class Scope:
    name: str  # all, team, self
    owners: frozenset[int] | None  # None = everyone

    def has(self, user_id: int | None) -> bool:
        return self.owners is None or user_id in self.owners


class Oracle:
    def __init__(self, engine: Engine, now: datetime) -> None:
        self.now = now
        self.today = now.date()
        self.fx = Settings().fx_rates
        self.currency = Settings().reporting_currency
        with engine.connect() as conn:
            def load(table) -> list[dict]:
                return [dict(r._mapping) for r in conn.execute(select(table))]

            self.users = {u["id"]: u for u in load(t.users)}
            self.roles: dict[int, set[str]] = defaultdict(set)
            for r in load(t.user_roles):
                self.roles[r["user_id"]].add(r["role"])
            self.teams = {x["id"]: x for x in load(t.teams)}
            self.accounts = {x["id"]: x for x in load(t.accounts)}
            self.opps = {x["id"]: x for x in load(t.opportunities)}
            self.history: dict[int, list[dict]] = defaultdict(list)
            for h in load(t.stage_history):
                self.history[h["opportunity_id"]].append(h)
            for rows in self.history.values():
                rows.sort(key=lambda h: (h["changed_at"], h["id"]))
            self.products = {x["id"]: x for x in load(t.products)}
            self.quotes = load(t.quotes)
            self.lines: dict[int, list[dict]] = defaultdict(list)
            for ln in load(t.quote_lines):
                self.lines[ln["quote_id"]].append(ln)
            self.leads = load(t.leads)
            self.approvals = load(t.approval_requests)
            self.contracts = {x["id"]: x for x in load(t.contracts)}
            self.invoices = load(t.invoices)
            self.payments = {x["id"]: x for x in load(t.payments)}
            self.allocations = load(t.payment_allocations)
            self.targets = load(t.targets)
        self.contract_of_opp = {c["opportunity_id"]: c for c in self.contracts.values()}

    # ------------------------------------------------------------------ helpers

    def conv(self, amount: Decimal, currency: str) -> Decimal:
        return Decimal(amount) * self.fx[currency]

    def amount(self, o: dict) -> Decimal:
        return self.conv(o["amount"], o["currency"])

    def weighted(self, o: dict) -> Decimal:
        return self.amount(o) * o["probability"] / 100

    def name(self, user_id: int) -> str:
        return self.users[user_id]["name_en"]

    def team_of(self, user_id: int) -> int | None:
        return self.users[user_id]["team_id"]

    def invoice_owner(self, inv: dict) -> int:
        return self.opps[self.contracts[inv["contract_id"]]["opportunity_id"]]["owner_id"]

    def subtree(self, user_id: int) -> set[int]:
        out, frontier = {user_id}, [user_id]
        while frontier:
            boss = frontier.pop()
            for u in self.users.values():
                if u["manager_id"] == boss and u["id"] not in out:
                    out.add(u["id"])
                    frontier.append(u["id"])
        return out

    def team_id(self, team: int | str) -> int:
        for x in self.teams.values():
            if x["id"] == team or x["name"] == team:
                return x["id"]
        raise KeyError(team)

    def scope(self, actor_id: int, *, team: int | str | None = None, owner: int | None = None) -> Scope:
        roles = self.roles[actor_id]
        if roles & {"admin", "sales_ops", "finance"}:
            name, owners = "all", None
        elif roles & {"sales_manager", "director"}:
            name, owners = "team", self.subtree(actor_id)
        elif "sales_rep" in roles:
            name, owners = "self", {actor_id}
        else:
            raise Denied(f"{roles} may not use analytics")
        if team is not None:
            members = {u for u, row in self.users.items() if row["team_id"] == self.team_id(team)}
            if owners is not None and not members <= owners:
                raise Denied(f"team {team} is outside the scope")
            owners = members
        if owner is not None:
            if owners is not None and owner not in owners:
                raise Denied(f"owner {owner} is outside the scope")
            owners = {owner}
        return Scope(name, None if owners is None else frozenset(owners))

    def period(self, name: str | None) -> Span | None:
        return None if name is None else span(name, self.today)

    def open_deals(self, sc: Scope, p: Span | None) -> list[dict]:
        return [o for o in self.opps.values()
                if o["stage"] in OPEN and sc.has(o["owner_id"])
                and (p is None or p.has(o["expected_close_date"]))]

    def closed_deals(self, sc: Scope, p: Span, stages=CLOSED) -> list[dict]:
        return [o for o in self.opps.values()
                if o["stage"] in stages and sc.has(o["owner_id"]) and p.has(o["stage_changed_at"])]

    def current_quote(self, opp_id: int) -> dict | None:
        live = [x for x in self.quotes if x["opportunity_id"] == opp_id and x["status"] != "superseded"]
        return max(live, key=lambda x: x["version"]) if live else None

    def scope_users(self, sc: Scope) -> set[int]:
        return set(self.users) if sc.owners is None else set(sc.owners)

    # ------------------------------------------------------------------ 1. pipeline

    def pipeline(self, by: str, sc: Scope, p: Span | None) -> dict:
        deals = self.open_deals(sc, p)
        groups: dict[str, dict] = {}

        def add(key: str, label: str, deal_id: int, amount: Decimal, weighted: Decimal) -> None:
            g = groups.setdefault(key, {"key": key, "label": label, "deals": set(), "amount": ZERO,
                                        "weighted": ZERO})
            g["deals"].add(deal_id)
            g["amount"] += amount
            g["weighted"] += weighted

        for o in deals:
            amt, w = self.amount(o), self.weighted(o)
            if by == "stage":
                add(o["stage"], o["stage"], o["id"], amt, w)
            elif by == "owner":
                add(str(o["owner_id"]), self.name(o["owner_id"]), o["id"], amt, w)
            elif by == "team":
                tid = self.team_of(o["owner_id"])
                add("" if tid is None else str(tid), NONE if tid is None else self.teams[tid]["name"], o["id"], amt, w)
            elif by == "region":
                add(o["region"], o["region"] or NONE, o["id"], amt, w)
            elif by in ("quarter", "month"):
                d = o["expected_close_date"]
                if d is None:
                    key = ""
                elif by == "quarter":
                    key = f"{d.year}-Q{(d.month - 1) // 3 + 1}"
                else:
                    key = f"{d.year}-{d.month:02d}"
                add(key, key or NONE, o["id"], amt, w)
            elif by == "product":
                quote = self.current_quote(o["id"])
                if quote is None:
                    add("", NONE, o["id"], amt, w)
                    continue
                for ln in self.lines[quote["id"]]:
                    net = ln["quantity"] * ln["list_price"] * (1 - ln["discount_pct"] / 100)
                    net = self.conv(net, quote["currency"])
                    product = self.products[ln["product_id"]]
                    add(product["sku"], product["name_en"], o["id"], net, net * o["probability"] / 100)
            else:
                raise ValueError(by)
        if by == "stage":
            rows = [groups.get(s, {"key": s, "label": s, "deals": set(), "amount": ZERO, "weighted": ZERO})
                    for s in OPEN]
        elif by in ("quarter", "month"):
            rows = sorted(groups.values(), key=lambda g: (g["key"] == "", g["key"]))  # in time order
        else:
            rows = sorted(groups.values(), key=lambda g: (g["key"] == "", -q2(g["amount"]), g["label"]))
        out_rows = [{"key": g["key"], "label": g["label"], "count": len(g["deals"]), "amount": q2(g["amount"]),
                     "weighted": q2(g["weighted"])} for g in rows]
        if by == "product":  # "the sum of the rows": of the rows as shown
            total = {"count": sum(r["count"] for r in out_rows),
                     "amount": shown_sum([r["amount"] for r in out_rows]),
                     "weighted": shown_sum([r["weighted"] for r in out_rows])}
        else:
            total = {"count": len(deals), "amount": q2(sum((self.amount(o) for o in deals), ZERO)),
                     "weighted": q2(sum((self.weighted(o) for o in deals), ZERO))}
        return {"rows": out_rows, "total": total, "deal_ids": {o["id"] for o in deals}}

    # ------------------------------------------------------------------ 2. forecast

    def _forecast_numbers(self, owners: set[int], p: Span) -> dict:
        cats = {c: {"count": 0, "amount": ZERO} for c in ("won", "commit", "best_case", "pipeline")}
        weighted_open = ZERO
        for o in self.opps.values():
            if o["owner_id"] not in owners:
                continue
            if o["stage"] == "won" and p.has(o["stage_changed_at"]):
                cat = "won"
            elif o["stage"] in OPEN and p.has(o["expected_close_date"]):
                cat = {"negotiate": "commit", "bid": "best_case"}.get(o["stage"], "pipeline")
                weighted_open += self.weighted(o)
            else:
                continue
            cats[cat]["count"] += 1
            cats[cat]["amount"] += self.amount(o)
        return {"cats": cats, "weighted_forecast": cats["won"]["amount"] + weighted_open}

    def _targets(self, p: Span, *, users: set[int] | None = None, team: int | None = None) -> Decimal:
        total = ZERO
        for x in self.targets:
            if not (x["period_start"] >= p.start and x["period_end"] <= p.end):
                continue
            if users is not None and x["user_id"] in users:
                total += x["amount"]
            if team is not None and x["team_id"] == team:
                total += x["amount"]
        return total

    def _line(self, key: str, label: str, nums: dict, target: Decimal) -> dict:
        won = nums["cats"]["won"]["amount"]
        wf = nums["weighted_forecast"]
        return {"key": key, "label": label, "won": q2(won), "commit": q2(nums["cats"]["commit"]["amount"]),
                "best_case": q2(nums["cats"]["best_case"]["amount"]),
                "pipeline": q2(nums["cats"]["pipeline"]["amount"]), "weighted_forecast": q2(wf),
                "target": q2(target), "attainment": ratio(won, target), "coverage": ratio(wf, target),
                "_wf": wf}

    def forecast(self, sc: Scope, p: Span) -> dict:
        people = self.scope_users(sc)
        nums = self._forecast_numbers(people, p)
        target = self._targets(p, users=people)
        owners = []
        for u in people:
            n = self._forecast_numbers({u}, p)
            tu = self._targets(p, users={u})
            if any(c["count"] for c in n["cats"].values()) or any(
                    x["user_id"] == u and x["period_start"] >= p.start and x["period_end"] <= p.end
                    for x in self.targets):
                owners.append(self._line(str(u), self.name(u), n, tu))
        teams = []
        for tid, team in self.teams.items():
            members = {u for u in people if self.users[u]["team_id"] == tid}
            if not members:
                continue
            n = self._forecast_numbers(members, p)
            tt = self._targets(p, team=tid)
            has_target = any(x["team_id"] == tid and x["period_start"] >= p.start and x["period_end"] <= p.end
                             for x in self.targets)
            if any(c["count"] for c in n["cats"].values()) or has_target:
                teams.append(self._line(str(tid), team["name"], n, tt))
        order = lambda line: (-line["_wf"], line["label"])  # noqa: E731
        return {
            "categories": [{"category": c, "count": v["count"], "amount": q2(v["amount"])}
                           for c, v in nums["cats"].items()],
            "weighted_forecast": q2(nums["weighted_forecast"]), "target": q2(target),
            "attainment": ratio(nums["cats"]["won"]["amount"], target),
            "coverage": ratio(nums["weighted_forecast"], target),
            "owners": sorted(owners, key=order), "teams": sorted(teams, key=order),
        }

    # ------------------------------------------------------------------ 3. win rate

    def _win_row(self, key: str, label: str, deals: list[dict]) -> dict:
        won = [o for o in deals if o["stage"] == "won"]
        lost = sum(o["stage"] == "lost" for o in deals)
        abandoned = sum(o["stage"] == "abandoned" for o in deals)
        won_amount = q2(sum((self.amount(o) for o in won), ZERO))
        return {"key": key, "label": label, "won": len(won), "lost": lost, "abandoned": abandoned,
                "win_rate": ratio(len(won), len(won) + lost), "won_amount": won_amount,
                "average_deal": None if not won else q2(won_amount / len(won), won_amount)}

    def win_rate(self, by: str, sc: Scope, p: Span) -> dict:
        deals = self.closed_deals(sc, p)
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for o in deals:
            if by == "none":
                continue
            if by == "owner":
                k = (str(o["owner_id"]), self.name(o["owner_id"]))
            elif by == "team":
                tid = self.team_of(o["owner_id"])
                k = ("", NONE) if tid is None else (str(tid), self.teams[tid]["name"])
            elif by == "region":
                k = (o["region"], o["region"] or NONE)
            elif by == "quarter":
                d = o["stage_changed_at"]
                label = f"{d.year}-Q{(d.month - 1) // 3 + 1}"
                k = (label, label)
            else:
                raise ValueError(by)
            groups[k].append(o)
        rows = {k: self._win_row(k, label, ds) for (k, label), ds in groups.items()}
        return {"rows": rows, "total": self._win_row("all", "all", deals)}

    # ------------------------------------------------------------------ 4. cycle time

    def cycle_time(self, sc: Scope, p: Span) -> dict:
        spells: dict[str, list[Decimal]] = defaultdict(list)
        to_win: list[Decimal] = []
        for o in self.opps.values():
            if not sc.has(o["owner_id"]):
                continue
            rows = self.history[o["id"]]
            for a, b in zip(rows, rows[1:]):  # b ends a spell in its from_stage that began at a (§4)
                if p.has(b["changed_at"]):
                    spells[b["from_stage"]].append(days_between(a["changed_at"], b["changed_at"]))
            if o["stage"] == "won" and p.has(o["stage_changed_at"]):
                won_row = [h for h in rows if h["to_stage"] == "won"][-1]
                to_win.append(days_between(rows[0]["changed_at"], won_row["changed_at"]))
        return {"stages": [{"stage": s, "spells": len(spells[s]), "median_days": q1(median(spells[s]))}
                           for s in OPEN],
                "won_deals": len(to_win), "median_days_to_win": q1(median(to_win)),
                "_exact": {s: median(spells[s]) for s in OPEN}}

    # ------------------------------------------------------------------ 5. funnel

    def funnel(self, sc: Scope, p: Span) -> dict:
        leads = [x for x in self.leads if p.has(x["created_at"])
                 and (sc.owners is None or x["owner_id"] in sc.owners)]
        converted = [x for x in leads if x["status"] == "converted"]
        opps = [o for o in self.opps.values() if p.has(o["created_at"]) and sc.has(o["owner_id"])]
        counts = [("leads", len(leads)), ("converted", len(converted)), ("opportunities", len(opps))]
        for stage in ("initiated", "solution", "bid", "negotiate", "won"):
            counts.append((stage, sum(any(h["to_stage"] == stage for h in self.history[o["id"]]) for o in opps)))
        first = counts[0][1]
        steps = []
        for i, (step, n) in enumerate(counts):
            steps.append({"step": step, "count": n,
                          "of_previous": None if i == 0 else ratio(n, counts[i - 1][1]),
                          "of_first": ratio(n, first)})
        return {"steps": steps}

    # ------------------------------------------------------------------ 6/7. deal lists

    def deal_line(self, o: dict, reasons: list[str]) -> dict:
        return {"opportunity_id": o["id"], "ref": f"OPP-{o['id']:05d}", "name": o["name"],
                "account_name": self.accounts[o["account_id"]]["name"], "owner_id": o["owner_id"],
                "owner_name": self.name(o["owner_id"]), "stage": o["stage"], "amount": q2(self.amount(o)),
                "deal_currency": o["currency"], "deal_amount": o["amount"], "probability": o["probability"],
                "expected_close_date": o["expected_close_date"],
                "days_in_stage": (self.now - o["stage_changed_at"]).days, "reasons": reasons}

    def stuck_deals(self, sc: Scope, days: int, limit: int) -> dict:
        hits = []
        for o in self.open_deals(sc, None):
            reasons = []
            if self.now - o["stage_changed_at"] >= timedelta(days=days):
                reasons.append("no_move")
            if o["expected_close_date"] is not None and o["expected_close_date"] < self.today:
                reasons.append("past_close")
            if reasons:
                hits.append((o, reasons))
        hits.sort(key=lambda h: (-self.amount(h[0]), h[0]["id"]))
        return {"count": len(hits), "amount": q2(sum((self.amount(o) for o, _ in hits), ZERO)),
                "deals": [self.deal_line(o, r) for o, r in hits[:limit]]}

    def top_deals(self, sc: Scope, p: Span, limit: int) -> dict:
        deals = sorted(self.open_deals(sc, p), key=lambda o: (-self.amount(o), o["id"]))
        return {"count": len(deals), "amount": q2(sum((self.amount(o) for o in deals), ZERO)),
                "deals": [self.deal_line(o, []) for o in deals[:limit]]}

    # ------------------------------------------------------------------ 8. gates

    def _gate_line(self, kind: str, reqs: list[dict], p: Span) -> dict:
        pending = [r for r in reqs if r["status"] == "pending"]
        decided = [r for r in reqs if r["status"] != "pending" and p.has(r["closed_at"])]
        timed = [hours_between(r["created_at"], r["closed_at"]) for r in decided
                 if r["status"] in ("approved", "rejected")]
        line = {"kind": kind, "pending": len(pending),
                "oldest_pending_hours": max((hours_between(r["created_at"], self.now) for r in pending),
                                            default=None),
                "average_decision_hours": (sum(timed, ZERO) / len(timed)) if timed else None}
        for status in ("approved", "rejected", "expired", "cancelled"):
            line[status] = sum(r["status"] == status for r in decided)
        return line

    def gate_throughput(self, sc: Scope, p: Span) -> dict:
        reqs = [r for r in self.approvals if sc.has(r["requested_by"])]
        return {"kinds": [self._gate_line(k, [r for r in reqs if r["kind"] == k], p) for k in KINDS],
                "total": self._gate_line("all", reqs, p)}

    # ------------------------------------------------------------------ 9. aging, DSO, collection

    def aging(self, sc: Scope, as_of: date) -> dict:
        per_owner: dict[int, dict[str, Decimal]] = {}
        total = dict.fromkeys(BUCKETS, ZERO)
        live = [i for i in self.invoices if i["status"] != "void" and sc.has(self.invoice_owner(i))]
        for inv in live:
            balance = inv["amount"] - inv["paid_amount"]
            if balance <= 0 or inv["issued_on"] > as_of:
                continue
            late = (as_of - inv["due_on"]).days
            bucket = ("current" if late <= 0 else "1-30" if late <= 30 else "31-60" if late <= 60
                      else "61-90" if late <= 90 else "90+")
            amt = self.conv(balance, inv["currency"])
            owner = self.invoice_owner(inv)
            per_owner.setdefault(owner, dict.fromkeys(BUCKETS, ZERO))[bucket] += amt
            total[bucket] += amt

        def row(key: str, label: str, b: dict[str, Decimal]) -> dict:
            shown = {k: q2(v) for k, v in b.items()}
            s = shown_sum(list(shown.values()))  # the row adds up as shown
            return {"key": key, "label": label, "buckets": shown, "total": s,
                    "overdue": shown_sum([v for k, v in shown.items() if k != "current"]), "_total": s}

        owners = sorted((row(str(u), self.name(u), b) for u, b in per_owner.items()),
                        key=lambda r: (-r["_total"], r["label"]))
        open_balance = sum(total.values(), ZERO)
        issued_90 = sum((self.conv(i["amount"], i["currency"]) for i in live
                         if as_of - timedelta(days=89) <= i["issued_on"] <= as_of), ZERO)
        return {"owners": owners, "total": row("all", "all", total),
                "dso_days": None if not issued_90 else q1(open_balance / issued_90 * 90),
                "invoiced_90_days": q2(issued_90)}

    def collection_rate(self, sc: Scope, p: Span) -> dict:
        per: dict[int, list[Decimal]] = {}
        for inv in self.invoices:
            owner = self.invoice_owner(inv)
            if inv["status"] == "void" or not sc.has(owner) or not p.has(inv["due_on"]):
                continue
            acc = per.setdefault(owner, [ZERO, ZERO])
            acc[0] += self.conv(inv["amount"], inv["currency"])
            acc[1] += self.conv(inv["paid_amount"], inv["currency"])
        rows = sorted(({"key": str(u), "label": self.name(u), "due": q2(d), "collected": q2(c),
                        "rate": ratio(c, d), "_due": d} for u, (d, c) in per.items()),
                      key=lambda r: (-r["_due"], r["label"]))
        due = sum((v[0] for v in per.values()), ZERO)
        col = sum((v[1] for v in per.values()), ZERO)
        return {"owners": rows, "total": {"due": q2(due), "collected": q2(col), "rate": ratio(col, due)}}

    # ------------------------------------------------------------------ 10. reconciliation

    def reconciliation(self, sc: Scope, p: Span) -> dict:
        won = self.closed_deals(sc, p, ("won",))
        s = dict.fromkeys(("won", "contracted", "invoiced", "collected", "recognised"), ZERO)
        without = 0
        for o in won:
            s["won"] += self.amount(o)
            c = self.contract_of_opp.get(o["id"])
            if c is None or c["status"] not in SIGNED:
                without += 1
            if c is None:
                continue
            if c["status"] in SIGNED:
                s["contracted"] += self.conv(c["value"], c["currency"])
            s["invoiced"] += self.conv(c["invoiced_total"], c["currency"])
            s["collected"] += self.conv(c["paid_total"], c["currency"])
            s["recognised"] += self.conv(c["recognised_total"], c["currency"])
        out = {k: q2(v) for k, v in s.items()}
        out.update(won_deals=len(won), deals_without_contract=without,  # gaps: of the figures as shown
                   gap_won_contracted=q2(out["won"] - out["contracted"], out["won"], out["contracted"]),
                   gap_contracted_invoiced=q2(out["contracted"] - out["invoiced"], out["contracted"],
                                              out["invoiced"]),
                   gap_invoiced_collected=q2(out["invoiced"] - out["collected"], out["invoiced"],
                                             out["collected"]))
        return out

    # ------------------------------------------------------------------ 11. period over period

    def _kpis(self, sc: Scope, p: Span) -> dict[str, Decimal | None]:
        created = sum((self.amount(o) for o in self.opps.values()
                       if p.has(o["created_at"]) and sc.has(o["owner_id"])), ZERO)
        wr = self._win_row("all", "all", self.closed_deals(sc, p))
        invoiced = sum((self.conv(i["amount"], i["currency"]) for i in self.invoices
                        if i["status"] != "void" and p.has(i["issued_on"]) and sc.has(self.invoice_owner(i))), ZERO)
        collected = ZERO
        for a in self.allocations:
            pay = self.payments[a["payment_id"]]
            inv = next(i for i in self.invoices if i["id"] == a["invoice_id"])
            if pay["status"] == "confirmed" and p.has(pay["received_on"]) and sc.has(self.invoice_owner(inv)):
                collected += self.conv(a["amount"], a["currency"])
        return {"new_pipeline": q2(created), "won_amount": wr["won_amount"], "won_count": Decimal(wr["won"]),
                "win_rate": wr["win_rate"], "average_deal": wr["average_deal"], "invoiced": q2(invoiced),
                "collected": q2(collected)}

    def period_over_period(self, sc: Scope, p: Span) -> dict:
        prev = before(p)
        cur, old = self._kpis(sc, p), self._kpis(sc, prev)
        kpis = []
        for k in ("new_pipeline", "won_amount", "won_count", "win_rate", "average_deal", "invoiced", "collected"):
            a, b = cur[k], old[k]
            change = None if a is None or b is None else a - b
            if change is not None and k not in ("won_count", "win_rate"):
                change = q2(change, a, b)
            kpis.append({"kpi": k, "current": a, "previous": b, "change": change,
                         "change_pct": None if change is None or not b else change / b,
                         "money": k not in ("won_count", "win_rate")})
        return {"previous": prev, "kpis": kpis}
