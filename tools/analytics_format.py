"""Words and numbers for the analytics replies: periods, percentages, hours, and one text per view.

Every text is a short headline (the numbers a person asked for) and a `tools.format.table`; labels
come from prompts/tools_analytics.<lang>.yaml, stage and approval names from the deal templates.
"""
from __future__ import annotations

import calendar
import re
from decimal import Decimal

from domain.analytics.periods import Period
from domain.analytics.views import (Aging, Breakdown, CollectionRate, CycleTime, DealList, Forecast, ForecastLine,
                                    Funnel, GateThroughput, PeriodComparison, Reconciliation, WinRate)
from prompts.messages import render
from tools.format import day, money, table

# What people write for a period → the names the services take (the grammar makes the same names).
_ZH_PERIODS = {"本月": "this_month", "这个月": "this_month", "当月": "this_month", "上月": "last_month",
               "上个月": "last_month", "下月": "next_month", "下个月": "next_month", "本季度": "this_quarter",
               "本季": "this_quarter", "这个季度": "this_quarter", "当季": "this_quarter", "上季度": "last_quarter",
               "上个季度": "last_quarter", "下季度": "next_quarter", "下个季度": "next_quarter", "今年": "this_year",
               "本年": "this_year", "本年度": "this_year", "去年": "last_year", "明年": "next_year"}
_Q_FIRST = re.compile(r"^q([1-4])[\s\-_/]*(\d{4})$", re.I)
_Q_LAST = re.compile(r"^(\d{4})[\s\-_/]*(?:年\s*)?(?:第\s*)?q?([1-4])\s*(?:季度)?$", re.I)
_MONTH = re.compile(r"^(\d{4})\s*(?:[/.年]\s*)(\d{1,2})\s*月?$")


def period_name(text: str) -> str:
    """'Q3 2026' / '2026 Q3' / '2026年第3季度' → '2026-Q3', '2026/11' / '2026年11月' → '2026-11', '本季度' →
    'this_quarter', 'this quarter' → 'this_quarter'; anything else as written (the service says what it takes)."""
    raw = text.strip()
    if raw in _ZH_PERIODS:
        return _ZH_PERIODS[raw]
    if m := _Q_FIRST.match(raw):
        return f"{m.group(2)}-Q{m.group(1)}"
    if m := _Q_LAST.match(raw):
        return f"{m.group(1)}-Q{m.group(2)}"
    if m := _MONTH.match(raw):
        return f"{m.group(1)}-{int(m.group(2)):02d}"
    if re.fullmatch(r"(\d{4})\s*年", raw):
        return raw[:4]
    return re.sub(r"[\s-]+", "_", raw.lower()) if re.fullmatch(r"[A-Za-z][A-Za-z\s_-]*", raw) else raw


def t(key: str, locale: str, **values: object) -> str:
    return render(f"tool.an.{key}", locale, **values)


def period_text(p: Period, locale: str) -> str:
    if p.kind == "quarter":
        return t("period.quarter", locale, year=p.start.year, q=(p.start.month - 1) // 3 + 1)
    if p.kind == "month":
        return t("period.month", locale, year=p.start.year, month=p.start.month, name=calendar.month_abbr[p.start.month])
    return t("period.year", locale, year=p.start.year)


def pct(value: Decimal | None) -> str:
    """A fraction as a percentage with one decimal (0.625 → 62.5%); '-' when there is none."""
    if value is None:
        return "-"
    return f"{value * 100:.1f}%"


def num(value: Decimal | None, places: int = 1) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def stage(code: str, locale: str) -> str:
    return render(f"tool.deal.stage.{code}", locale)


def _m(amount: Decimal | None, currency: str) -> str:
    return money(amount, currency)


def _cols(locale: str, *keys: str) -> list[str]:
    return [t(f"col.{k}", locale) for k in keys]


# -- pipeline ---------------------------------------------------------------------------------------

def pipeline_text(v: Breakdown, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    head = t("pipeline.header" if v.period else "pipeline.header_open", locale, by=t(f"by.{v.by}", locale),
             period=period_text(v.period, locale) if v.period else "", count=v.total.count, amount=m(v.total.amount),
             weighted=m(v.total.weighted))
    if not v.rows:
        return head + "\n" + t("pipeline.none", locale)
    label = (lambda r: stage(r.key, locale)) if v.by == "stage" else (lambda r: r.label)
    rows = [(label(r), r.count, m(r.amount), m(r.weighted)) for r in v.rows]
    rows.append((t("total", locale), v.total.count, m(v.total.amount), m(v.total.weighted)))
    return head + "\n" + table([t(f"by.{v.by}", locale).capitalize(), *_cols(locale, "deals", "amount", "weighted")],
                               rows, right=(1, 2, 3))


# -- forecast ---------------------------------------------------------------------------------------

def forecast_text(v: Forecast, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    period = period_text(v.period, locale)
    if v.target:
        head = t("forecast.header", locale, period=period, weighted=m(v.weighted_forecast), target=m(v.target),
                 attainment=pct(v.attainment), coverage=pct(v.coverage))
    else:
        head = t("forecast.header_no_target", locale, period=period, weighted=m(v.weighted_forecast))
    lines = [head, table(_cols(locale, "category", "deals", "amount"),
                         [(t(f"category.{c.category}", locale), c.count, m(c.amount)) for c in v.categories],
                         right=(1, 2))]
    if v.owners:
        lines += [t("forecast.by_owner", locale), _forecast_table(v.owners, "owner", v.currency, locale)]
    if any(x.target for x in v.teams):
        lines += [t("forecast.by_team", locale), _forecast_table(v.teams, "team", v.currency, locale)]
    return "\n".join(lines)


def _forecast_table(lines: list[ForecastLine], first: str, currency: str, locale: str) -> str:
    m = lambda x: _m(x, currency)  # noqa: E731
    rows = [(x.label, m(x.won), m(x.commit), m(x.best_case), m(x.weighted_forecast), m(x.target), pct(x.attainment))
            for x in lines]
    return table(_cols(locale, first, "won", "commit", "best_case", "weighted", "target", "attainment"), rows,
                 right=(1, 2, 3, 4, 5, 6))


# -- win rate, cycle time, funnel ---------------------------------------------------------------------

def win_rate_text(v: WinRate, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    x = v.total
    if x.won + x.lost + x.abandoned == 0:
        return t("win_rate.none", locale, period=period_text(v.period, locale))
    head = t("win_rate.header", locale, period=period_text(v.period, locale), rate=pct(x.win_rate), won=x.won,
             lost=x.lost, abandoned=x.abandoned, amount=m(x.won_amount), average=m(x.average_deal))
    if v.by == "none" or not v.rows:
        return head
    rows = [(r.label, r.won, r.lost, r.abandoned, pct(r.win_rate), m(r.won_amount), m(r.average_deal)) for r in v.rows]
    return head + "\n" + table([t(f"by.{v.by}", locale).capitalize(),
                                *_cols(locale, "won_n", "lost_n", "abandoned_n", "win_rate", "won_amount", "average")],
                               rows, right=(1, 2, 3, 4, 5, 6))


def cycle_time_text(v: CycleTime, locale: str) -> str:
    period = period_text(v.period, locale)
    if v.median_days_to_win is None:
        head = t("cycle.header_no_win", locale, period=period)
    else:
        head = t("cycle.header", locale, period=period, days=num(v.median_days_to_win), n=v.won_deals)
    rows = [(stage(s.stage, locale), s.spells, num(s.median_days)) for s in v.stages]
    return head + "\n" + table(_cols(locale, "stage", "spells", "median_days"), rows, right=(1, 2))


def funnel_text(v: Funnel, locale: str) -> str:
    by_step = {s.step: s for s in v.steps}
    head = t("funnel.header", locale, period=period_text(v.period, locale), leads=by_step["leads"].count,
             opportunities=by_step["opportunities"].count, won=by_step["won"].count)
    rows = [(_step(s.step, locale), s.count, pct(s.of_previous), pct(s.of_first)) for s in v.steps]
    return head + "\n" + table(_cols(locale, "step", "count", "of_previous", "of_first"), rows, right=(1, 2, 3))


def _step(step: str, locale: str) -> str:
    return t(f"step.{step}", locale) if step in ("leads", "converted", "opportunities") else stage(step, locale)


# -- deal lists -------------------------------------------------------------------------------------

def deals_text(v: DealList, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    if v.metric == "stuck_deals":
        if not v.count:
            return t("stuck.none", locale, days=v.days)
        head = t("stuck.header", locale, n=v.count, amount=m(v.amount), days=v.days)
        rows = [(d.ref, _short(d.name), stage(d.stage, locale), m(d.amount), d.days_in_stage,
                 day(d.expected_close_date), " + ".join(t(f"reason.{r}", locale) for r in d.reasons), d.owner_name)
                for d in v.deals]
        cols = _cols(locale, "ref", "deal", "stage", "amount", "days_in_stage", "close", "why", "owner")
        return head + "\n" + table(cols, rows, right=(3, 4))
    period = period_text(v.period, locale)
    if not v.count:
        return t("top.none", locale, period=period)
    head = t("top.header", locale, n=len(v.deals), count=v.count, period=period, amount=m(v.amount))
    rows = [(d.ref, _short(d.name), d.account_name, stage(d.stage, locale), m(d.amount), f"{d.probability}%",
             day(d.expected_close_date), d.owner_name) for d in v.deals]
    cols = _cols(locale, "ref", "deal", "customer", "stage", "amount", "probability", "close", "owner")
    return head + "\n" + table(cols, rows, right=(4, 5))


def _short(name: str, n: int = 32) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


# -- approvals --------------------------------------------------------------------------------------

def gates_text(v: GateThroughput, locale: str) -> str:
    x = v.total
    decided = x.approved + x.rejected + x.expired + x.cancelled
    head = t("gates.header", locale, period=period_text(v.period, locale), decided=decided, approved=x.approved,
             rejected=x.rejected, hours=num(x.average_decision_hours), pending=x.pending,
             oldest=num(x.oldest_pending_hours))
    rows = [(render(f"tool.approval.kind.{k.kind}", locale), k.pending, num(k.oldest_pending_hours), k.approved,
             k.rejected, k.expired + k.cancelled, num(k.average_decision_hours)) for k in v.kinds]
    cols = _cols(locale, "kind", "pending", "oldest_hours", "approved", "rejected", "expired", "average_hours")
    return head + "\n" + table(cols, rows, right=(1, 2, 3, 4, 5, 6))


# -- cash -------------------------------------------------------------------------------------------

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def aging_text(v: Aging, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    if not v.total.total:
        return t("aging.none", locale, as_of=day(v.as_of))
    head = t("aging.header", locale, as_of=day(v.as_of), total=m(v.total.total), overdue=m(v.total.overdue),
             dso=num(v.dso_days))
    rows = [(r.label, *(m(r.buckets[b]) for b in BUCKETS), m(r.overdue), m(r.total)) for r in v.owners]
    rows.append((t("total", locale), *(m(v.total.buckets[b]) for b in BUCKETS), m(v.total.overdue), m(v.total.total)))
    cols = [t("col.ar", locale), *(t(f"bucket.{b}", locale) for b in BUCKETS), *_cols(locale, "overdue", "open")]
    return head + "\n" + table(cols, rows, right=tuple(range(1, 8)))


def collection_text(v: CollectionRate, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    period = period_text(v.period, locale)
    if not v.total.due:
        return t("collection.none", locale, period=period)
    head = t("collection.header", locale, period=period, collected=m(v.total.collected), due=m(v.total.due),
             rate=pct(v.total.rate))
    rows = [(r.label, m(r.due), m(r.collected), pct(r.rate)) for r in v.owners]
    rows.append((t("total", locale), m(v.total.due), m(v.total.collected), pct(v.total.rate)))
    return head + "\n" + table(_cols(locale, "ar", "due", "collected", "rate"), rows, right=(1, 2, 3))


def reconciliation_text(v: Reconciliation, locale: str) -> str:
    m = lambda x: _m(x, v.currency)  # noqa: E731
    period = period_text(v.period, locale)
    if not v.won_deals:
        return t("recon.none", locale, period=period)
    head = t("recon.header", locale, period=period, n=v.won_deals, won=m(v.won))
    rows = [(t(f"recon.{k}", locale), m(getattr(v, k))) for k in ("won", "contracted", "invoiced", "collected",
                                                                   "recognised")]
    rows += [(t(f"recon.{k}", locale), m(getattr(v, k))) for k in ("gap_won_contracted", "gap_contracted_invoiced",
                                                                   "gap_invoiced_collected")]
    lines = [head, table(_cols(locale, "measure", "amount"), rows, right=(1,))]
    if v.deals_without_contract:
        lines.append(t("recon.without_contract", locale, n=v.deals_without_contract))
    return "\n".join(lines)


# -- period over period -----------------------------------------------------------------------------

_MONEY_KPIS = {"new_pipeline", "won_amount", "average_deal", "invoiced", "collected"}


def comparison_text(v: PeriodComparison, locale: str) -> str:
    head = t("compare.header", locale, period=period_text(v.period, locale),
             previous=period_text(v.previous, locale))
    rows = [(t(f"kpi.{k.kpi}", locale), _kpi(k.kpi, k.current, v.currency), _kpi(k.kpi, k.previous, v.currency),
             _change(k.kpi, k.change, v.currency, locale), _signed_pct(k.change_pct)) for k in v.kpis]
    cols = [t("col.kpi", locale), period_text(v.period, locale), period_text(v.previous, locale),
            *_cols(locale, "change", "change_pct")]
    return head + "\n" + table(cols, rows, right=(1, 2, 3, 4))


def _kpi(kpi: str, value: Decimal | None, currency: str) -> str:
    if value is None:
        return "-"
    if kpi in _MONEY_KPIS:
        return money(value, currency)
    if kpi == "win_rate":
        return pct(value)
    return f"{value:.0f}"


def _change(kpi: str, value: Decimal | None, currency: str, locale: str) -> str:
    if value is None:
        return "-"
    sign = "+" if value > 0 else "-" if value < 0 else ""
    if kpi == "win_rate":  # a change of a rate is in percentage points, not percent
        return t("points", locale, value=f"{sign}{abs(value) * 100:.1f}")
    return sign + _kpi(kpi, abs(value), currency)


def _signed_pct(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + pct(value)
