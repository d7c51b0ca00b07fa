"""Chart data a tool result may carry: the numbers and labels only; chat surfaces draw the PNG.

The builders turn an analytics view (domain/analytics/views.py) into a Chart whose numbers are the
view's own (float of each Decimal, nothing recomputed) and whose texts come from the templates
(prompts/charts.*.yaml; stage names from the deal templates). A chart in Chinese, or with names a
Latin font cannot draw, also carries English labels (`fallback`): a renderer without a CJK font
draws those instead of empty boxes.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from domain.analytics.views import Aging, Breakdown, Forecast, Funnel
from domain.model.billing import BUCKETS
from prompts.messages import render
from tools.format import day

ChartKind = Literal["funnel", "pipeline_by_stage", "forecast_vs_target", "aging"]
MAX_BARS = 12  # a breakdown with more groups shows the largest 11 and one "Others" bar
MAX_STACKS = 6  # aging: one stacked series per owner up to this many, else the top 5 and "Others"
STAGE_STEPS = ("initiated", "solution", "bid", "negotiate", "won")  # funnel steps named like the stages


class Series(BaseModel):
    name: str = Field(description="legend label, in the reader's language")
    values: list[float]


class Labels(BaseModel):
    """The chart's texts in English with Latin letters only, for a renderer that has no CJK font."""

    title: str
    categories: list[str]
    series: list[str]


class Chart(BaseModel):
    """One picture: categories along one axis, one or more series of numbers over them."""

    kind: ChartKind
    title: str
    categories: list[str]
    series: list[Series]
    unit: str = Field("", description="what the numbers are in, e.g. CNY or 'deals'")
    locale: str = "en"
    fallback: Labels | None = Field(None, description="English labels when these need a CJK font")


# -- builders -------------------------------------------------------------------------------------


def pipeline_chart(view: Breakdown, locale: str = "en") -> Chart:
    """Amount and weighted amount per group (stages in stage order, zeros included), each with its count.

    Kind `pipeline_by_stage` whatever the grouping: the picture is the same bars."""
    return _with_fallback(lambda lang, plain: _pipeline(view, lang, plain), locale)


def funnel_chart(view: Funnel, locale: str = "en") -> Chart:
    """The count at each funnel step, leads first."""
    return _with_fallback(lambda lang, plain: _funnel(view, lang), locale)


def forecast_chart(view: Forecast, locale: str = "en") -> Chart:
    """Won, commit, best case, pipeline (each with its count), the weighted forecast and the target.

    One series; the target is always the last category (the renderer draws it as a line too)."""
    return _with_fallback(lambda lang, plain: _forecast(view, lang), locale)


def aging_chart(view: Aging, locale: str = "en") -> Chart:
    """Open receivables per aging bucket, stacked by owner (the AR); a bucket's stack is its total."""
    return _with_fallback(lambda lang, plain: _aging(view, lang, plain), locale)


# -- one builder per view: (lang, plain) → Chart ------------------------------------------------------


def _pipeline(view: Breakdown, lang: str, plain: bool) -> Chart:
    rows = list(view.rows)
    labels = [_stage(r.key, lang) if view.by == "stage" else _name(r.label, r.key, i, plain)
              for i, r in enumerate(rows)]
    counts = [r.count for r in rows]
    amounts = [r.amount for r in rows]
    weighted = [r.weighted for r in rows]
    if len(rows) > MAX_BARS:
        keep, rest = rows[:MAX_BARS - 1], rows[MAX_BARS - 1:]
        labels = labels[:MAX_BARS - 1] + [render("chart.others", lang)]
        counts = [r.count for r in keep] + [sum(r.count for r in rest)]
        amounts = [r.amount for r in keep] + [sum((r.amount for r in rest), Decimal(0))]
        weighted = [r.weighted for r in keep] + [sum((r.weighted for r in rest), Decimal(0))]
    period = view.period.label if view.period else render("chart.period_open", lang)
    return Chart(kind="pipeline_by_stage", title=render(f"chart.pipeline.title.{view.by}", lang, period=period),
                 categories=[render("chart.with_count", lang, label=label, count=n)
                             for label, n in zip(labels, counts)],
                 series=[Series(name=render("chart.series.amount", lang), values=_floats(amounts)),
                         Series(name=render("chart.series.weighted", lang), values=_floats(weighted))],
                 unit=view.currency, locale=lang)


def _funnel(view: Funnel, lang: str) -> Chart:
    names = [_stage(s.step, lang) if s.step in STAGE_STEPS else render(f"chart.funnel.{s.step}", lang)
             for s in view.steps]
    return Chart(kind="funnel", title=render("chart.funnel.title", lang, period=view.period.label),
                 categories=names,
                 series=[Series(name=render("chart.series.count", lang), values=[float(s.count) for s in view.steps])],
                 unit="", locale=lang)


def _forecast(view: Forecast, lang: str) -> Chart:
    names = [render("chart.with_count", lang, label=render(f"chart.forecast.{c.category}", lang), count=c.count)
             for c in view.categories]
    values = [c.amount for c in view.categories] + [view.weighted_forecast, view.target]
    if view.attainment is None:
        title = render("chart.forecast.title", lang, period=view.period.label)
    else:
        title = render("chart.forecast.title_attainment", lang, period=view.period.label,
                       attainment=f"{view.attainment * 100:.0f}%")
    return Chart(kind="forecast_vs_target", title=title,
                 categories=names + [render("chart.forecast.weighted", lang), render("chart.forecast.target", lang)],
                 series=[Series(name=render("chart.series.amount", lang), values=_floats(values))],
                 unit=view.currency, locale=lang)


def _aging(view: Aging, lang: str, plain: bool) -> Chart:
    buckets = [name for name, _, _ in BUCKETS]  # in age order, whatever order the dict has
    owners = list(view.owners)
    if len(owners) <= 1:
        name = _name(owners[0].label, owners[0].key, 0, plain) if owners else render("chart.series.total", lang)
        series = [Series(name=name, values=_floats(view.total.buckets[b] for b in buckets))]
    else:
        shown = owners if len(owners) <= MAX_STACKS else owners[:MAX_STACKS - 1]
        series = [Series(name=_name(o.label, o.key, i, plain), values=_floats(o.buckets[b] for b in buckets))
                  for i, o in enumerate(shown)]
        if len(shown) < len(owners):  # the rest, so each bucket's stack still adds up to its total
            rest = [view.total.buckets[b] - sum((o.buckets[b] for o in shown), Decimal(0)) for b in buckets]
            series.append(Series(name=render("chart.others", lang), values=_floats(rest)))
    if view.dso_days is None:
        title = render("chart.aging.title", lang, day=day(view.as_of))
    else:
        title = render("chart.aging.title_dso", lang, day=day(view.as_of), dso=view.dso_days)
    return Chart(kind="aging", title=title, categories=[render(f"chart.aging.{b}", lang) for b in buckets],
                 series=series, unit=view.currency, locale=lang)


# -- helpers --------------------------------------------------------------------------------------


def _with_fallback(build: Callable[[str, bool], Chart], locale: str) -> Chart:
    chart = build(locale, False)
    if not _needs_cjk(chart.title, *chart.categories, *(s.name for s in chart.series)):
        return chart
    plain = build("en", True)
    return chart.model_copy(update={"fallback": Labels(title=plain.title, categories=plain.categories,
                                                       series=[s.name for s in plain.series])})


def _needs_cjk(*texts: str) -> bool:
    return any(unicodedata.east_asian_width(ch) in "WF" for text in texts for ch in text)


def _name(label: str, key: str, index: int, plain: bool) -> str:
    """A person's, team's or region's name as it is; for the Latin-only fallback its key or place instead."""
    if not plain or not _needs_cjk(label):
        return label
    return f"#{key}" if key and not _needs_cjk(key) else f"#{index + 1}"


def _stage(stage: str, lang: str) -> str:
    label = render(f"tool.deal.stage.{stage}", lang)  # "bid" in a sentence, "Bid" under a bar
    return label[:1].upper() + label[1:]


def _floats(values) -> list[float]:
    return [float(v) for v in values]
