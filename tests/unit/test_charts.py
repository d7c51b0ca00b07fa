"""Charts: the data equals the analytics view's numbers, and the PNG is a real picture of the set size.

Views are built directly (awkward Decimals on purpose); the numbers a chart carries must be the
float of each, nothing recomputed. Rendering checks the PNG signature, its size read back with
Pillow, that it is not blank, and that Chinese is drawn with real glyphs (or, without a CJK font,
in English with a warning, never as boxes).
"""
from __future__ import annotations

import io
import logging
import warnings
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml
from PIL import Image

from bot import charts as drawing
from bot.agent.runtime import TurnResult
from domain.analytics.periods import quarter
from domain.analytics.views import (Aging, AgingRow, Breakdown, BreakdownRow, CategoryTotal, Forecast, Funnel,
                                    FunnelStep)
from prompts.messages import render
from tools import runner
from tools.charts import MAX_BARS, Chart, Series, aging_chart, forecast_chart, funnel_chart, pipeline_chart

Q4 = quarter(2026, 4)
STAGES = ("qualify", "initiated", "solution", "bid", "negotiate")
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def breakdown(by: str, rows: list[tuple[str, str, int, str, str]]) -> Breakdown:
    made = [BreakdownRow(key=k, label=label, count=n, amount=D(a), weighted=D(w)) for k, label, n, a, w in rows]
    total = BreakdownRow(key="", label="total", count=sum(r.count for r in made),
                         amount=sum((r.amount for r in made), D(0)), weighted=sum((r.weighted for r in made), D(0)))
    return Breakdown(currency="CNY", scope="team", owner_ids=None, metric="pipeline", by=by, period=Q4, rows=made,
                     total=total)


def by_stage() -> Breakdown:
    return breakdown("stage", [("qualify", "qualify", 4, "1250000.55", "125000.06"),
                               ("initiated", "initiated", 3, "2300000.10", "690000.03"),
                               ("solution", "solution", 0, "0", "0"),
                               ("bid", "bid", 5, "4100000.99", "2460000.59"),
                               ("negotiate", "negotiate", 1, "950000.01", "760000.01")])


def funnel_view() -> Funnel:
    counts = [("leads", 120), ("converted", 48), ("opportunities", 40), ("initiated", 30), ("solution", 22),
              ("bid", 15), ("negotiate", 9), ("won", 6)]
    return Funnel(currency="CNY", scope="team", owner_ids=None, period=Q4,
                  steps=[FunnelStep(step=s, count=n, of_previous=None, of_first=None) for s, n in counts])


def forecast_view(target: str = "6000000.00") -> Forecast:
    cats = [("won", 3, "2100000.33"), ("commit", 2, "1500000.01"), ("best_case", 4, "3200000.50"),
            ("pipeline", 9, "5000000.07")]
    t = D(target)
    won = D(cats[0][2])
    return Forecast(currency="CNY", scope="team", owner_ids=None, period=Q4,
                    categories=[CategoryTotal(category=c, count=n, amount=D(a)) for c, n, a in cats],
                    weighted_forecast=D("4411111.11"), target=t, attainment=won / t if t else None,
                    coverage=D("4411111.11") / t if t else None, owners=[], teams=[])


def aging_row(key: str, label: str, values: list[str]) -> AgingRow:
    buckets = {b: D(v) for b, v in zip(BUCKETS, values)}
    total = sum(buckets.values(), D(0))
    return AgingRow(key=key, label=label, buckets=buckets, total=total, overdue=total - buckets["current"])


def aging_view(owners: list[AgingRow]) -> Aging:
    total = aging_row("all", "all", [str(sum((o.buckets[b] for o in owners), D(0))) for b in BUCKETS])
    return Aging(currency="CNY", scope="all", owner_ids=None, as_of=date(2026, 11, 30), owners=owners, total=total,
                 dso_days=D("42.5"), invoiced_90_days=D("1000000"))


def three_owners() -> list[AgingRow]:
    return [aging_row("3", "李娜", ["500000.10", "120000.20", "80000.30", "0", "45000.40"]),
            aging_row("4", "王芳", ["300000.01", "0", "60000.02", "20000.03", "0"]),
            aging_row("5", "Tom Baker", ["100000", "50000.55", "0", "0", "150000.45"])]


# -- builders: the numbers are the view's ----------------------------------------------------------


def test_pipeline_chart_carries_amount_and_weighted_per_stage_in_stage_order():
    view = by_stage()
    chart = pipeline_chart(view, "en")
    assert chart.kind == "pipeline_by_stage" and chart.unit == "CNY"
    assert chart.series[0].values == [float(r.amount) for r in view.rows]
    assert chart.series[1].values == [float(r.weighted) for r in view.rows]
    assert chart.categories == ["Qualify (4)", "Initiated (3)", "Solution (0)", "Bid (5)", "Negotiate (1)"]
    assert chart.title == "Pipeline by stage · 2026-Q4" and chart.fallback is None


def test_pipeline_chart_in_chinese_names_the_stages_as_the_deal_replies_do():
    chart = pipeline_chart(by_stage(), "zh")
    stage_names = [render(f"tool.deal.stage.{s}", "zh") for s in STAGES]
    assert [c.split("（")[0] for c in chart.categories] == stage_names
    assert chart.series[0].name == "金额" and chart.series[1].name == "加权金额"
    assert chart.fallback is not None and chart.fallback.categories[3] == "Bid (5)"


def test_pipeline_chart_with_many_groups_shows_the_largest_and_adds_up_the_rest_exactly():
    rows = [(str(i), f"Owner {i}", i, f"{1000 * (20 - i)}.01", f"{100 * (20 - i)}.03") for i in range(1, 16)]
    view = breakdown("owner", rows)
    chart = pipeline_chart(view, "en")
    assert len(chart.categories) == MAX_BARS
    assert chart.categories[-1] == f"Others ({sum(r.count for r in view.rows[MAX_BARS - 1:])})"
    assert chart.series[0].values[:-1] == [float(r.amount) for r in view.rows[:MAX_BARS - 1]]
    assert chart.series[0].values[-1] == float(sum((r.amount for r in view.rows[MAX_BARS - 1:]), D(0)))
    assert chart.series[1].values[-1] == float(sum((r.weighted for r in view.rows[MAX_BARS - 1:]), D(0)))
    assert chart.title == "Pipeline by owner · 2026-Q4"


def test_funnel_chart_counts_every_step_leads_first():
    view = funnel_view()
    chart = funnel_chart(view, "zh")
    assert chart.kind == "funnel" and chart.unit == ""
    assert chart.series[0].values == [float(s.count) for s in view.steps]
    assert chart.categories == ["线索", "已转化线索", "商机", "已立项", "方案", "投标", "谈判", "赢单"]
    assert chart.title == "转化漏斗 · 2026-Q4"


def test_forecast_chart_shows_each_category_the_weighted_forecast_and_the_target_last():
    view = forecast_view()
    chart = forecast_chart(view, "en")
    assert chart.kind == "forecast_vs_target"
    assert chart.series[0].values == [float(c.amount) for c in view.categories] + [float(view.weighted_forecast),
                                                                                   float(view.target)]
    assert chart.categories == ["Won (3)", "Commit (2)", "Best case (4)", "Pipeline (9)", "Weighted forecast",
                                "Target"]
    assert chart.title == "Forecast vs target · 2026-Q4 · 35% of target won"


def test_forecast_chart_without_a_target_says_no_attainment():
    chart = forecast_chart(forecast_view(target="0"), "zh")
    assert chart.title == "预测与目标 · 2026-Q4"
    assert chart.series[0].values[-1] == 0.0 and chart.categories[-1] == "目标"


def test_aging_chart_stacks_owners_so_each_bucket_adds_up_to_its_total():
    view = aging_view(three_owners())
    chart = aging_chart(view, "en")
    assert chart.kind == "aging" and chart.categories[0] == "Not yet due" and len(chart.categories) == 5
    assert [s.name for s in chart.series] == ["李娜", "王芳", "Tom Baker"]
    for series, owner in zip(chart.series, view.owners):
        assert series.values == [float(owner.buckets[b]) for b in BUCKETS]
    assert chart.title == "Receivables aging · as of 2026-11-30 · DSO 42.5 days"
    # Chinese names need a CJK font: the fallback names them by their key, never as boxes
    assert chart.fallback is not None and chart.fallback.series == ["#3", "#4", "Tom Baker"]


def test_aging_chart_with_many_owners_shows_five_and_the_rest_as_others():
    owners = [aging_row(str(i), f"AR {i}", [f"{i}000.01", f"{i}00.02", "0", "3.03", f"{i}.04"])
              for i in range(9, 0, -1)]
    view = aging_view(owners)
    chart = aging_chart(view, "zh")
    assert [s.name for s in chart.series] == ["AR 9", "AR 8", "AR 7", "AR 6", "AR 5", "其他"]
    rest = [float(view.total.buckets[b] - sum((o.buckets[b] for o in owners[:5]), D(0))) for b in BUCKETS]
    assert chart.series[-1].values == rest
    for i, b in enumerate(BUCKETS):
        assert sum(D(str(s.values[i])) for s in chart.series) == view.total.buckets[b]


def test_aging_chart_with_one_owner_or_none():
    one = aging_chart(aging_view(three_owners()[2:]), "en")
    assert [s.name for s in one.series] == ["Tom Baker"]
    nobody = aging_chart(aging_view([]), "en")
    assert [s.name for s in nobody.series] == ["Total"] and nobody.series[0].values == [0.0] * 5


def test_every_chart_template_is_in_english_and_chinese():
    here = Path(__file__).resolve().parents[2] / "prompts"
    en = yaml.safe_load((here / "charts.en.yaml").read_text(encoding="utf-8"))
    zh = yaml.safe_load((here / "charts.zh.yaml").read_text(encoding="utf-8"))
    assert set(en) == set(zh)


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "lang", "text"), [
    (1_234_567, "en", "1.23M"), (350_000, "en", "350K"), (999_999, "en", "1M"), (950, "en", "950"),
    (12_500_000_000, "en", "12.5B"), (1_200_000, "zh", "120万"), (125_000, "zh", "12.5万"),
    (123_000_000, "zh", "1.23亿"), (9_500, "zh", "9,500"), (99_999_999, "zh", "1亿"), (0, "zh", "0"),
])
def test_compact_numbers_in_the_readers_way(value, lang, text):
    assert drawing.compact(value, lang) == text


# -- rendering ------------------------------------------------------------------------------------


def all_charts(lang: str) -> list[Chart]:
    return [pipeline_chart(by_stage(), lang), funnel_chart(funnel_view(), lang), forecast_chart(forecast_view(), lang),
            aging_chart(aging_view(three_owners()), lang)]


def picture(png: bytes) -> Image.Image:
    assert png[:8] == PNG_SIGNATURE
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_chart_renders_as_a_png_of_the_set_size_and_is_not_blank(lang):
    if lang == "zh" and drawing.cjk_font() is None:
        pytest.skip("no CJK font on this machine (scripts/bootstrap.sh installs fonts-wqy-microhei)")
    for chart in all_charts(lang):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns of every glyph it has to draw as a box
            png = drawing.render_png(chart)
        image = picture(png)
        assert image.size == (drawing.WIDTH, drawing.HEIGHT), chart.kind
        colours = image.getcolors(maxcolors=1 << 20)
        assert len(colours) > 50, f"{chart.kind}: {len(colours)} colours"
        white = max(colours)[0] / (drawing.WIDTH * drawing.HEIGHT)
        assert white < 0.97, f"{chart.kind} is {white:.0%} one colour"


def test_a_chart_of_zeros_still_renders_and_says_so():
    chart = pipeline_chart(breakdown("stage", [(s, s, 0, "0", "0") for s in STAGES]), "en")
    assert picture(drawing.render_png(chart)).size == (drawing.WIDTH, drawing.HEIGHT)


def test_chinese_is_drawn_with_real_glyphs():
    font = drawing.cjk_font()
    if font is None:
        pytest.skip("no CJK font on this machine (scripts/bootstrap.sh installs fonts-wqy-microhei)")
    chart = pipeline_chart(by_stage(), "zh")
    plan = drawing.plan(chart)
    assert plan.lang == "zh" and plan.chart.title == chart.title and font.family in plan.families
    # Two different titles of the same length: as boxes they would draw the same pixels.
    a = picture(drawing.render_png(chart.model_copy(update={"title": "阶段商机"})))
    b = picture(drawing.render_png(chart.model_copy(update={"title": "逾期回款"})))
    assert a.tobytes() != b.tobytes()


def test_without_a_cjk_font_a_chinese_chart_is_drawn_in_english_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(drawing, "cjk_font", lambda: None)
    chart = aging_chart(aging_view(three_owners()), "zh")
    with caplog.at_level(logging.WARNING, logger="ltc.charts"):
        plan = drawing.plan(chart)
        png = drawing.render_png(chart)
    assert plan.lang == "en" and plan.chart.title == chart.fallback.title
    assert [s.name for s in plan.chart.series] == ["#3", "#4", "Tom Baker"]
    assert plan.chart.series[0].values == chart.series[0].values  # the numbers stay
    assert all(ch.isascii() or ch in "·–—" for text in [plan.chart.title, *plan.chart.categories] for ch in text)
    assert any("English labels" in r.getMessage() for r in caplog.records)
    assert picture(png).size == (drawing.WIDTH, drawing.HEIGHT)


def test_text_no_font_can_draw_is_shown_as_a_question_mark_with_a_warning(caplog):
    chart = Chart(kind="funnel", title="Leads \U0001F4C8", categories=["a"], series=[Series(name="n", values=[1])])
    with caplog.at_level(logging.WARNING, logger="ltc.charts"):
        plan = drawing.plan(chart)
    assert plan.chart.title == "Leads ?" and any("shown as ?" in r.getMessage() for r in caplog.records)


def test_alt_text_reads_the_chart_out():
    chart = forecast_chart(forecast_view(), "en")
    text = drawing.alt_text(chart)
    assert text.startswith(chart.title) and "Target 6M" in text and "Won (3) 2.1M" in text


def test_a_chart_that_fails_to_send_is_logged_and_the_next_one_still_goes(caplog):
    sent = []

    def send(chart, png):
        if chart.kind == "funnel":
            raise RuntimeError("upload refused")
        sent.append((chart.kind, png[:8]))

    with caplog.at_level(logging.ERROR, logger="ltc.charts"):
        n = drawing.deliver([funnel_chart(funnel_view(), "en"), forecast_chart(forecast_view(), "en")], send,
                            where="test")
    assert n == 1 and [k for k, _ in sent] == ["forecast_vs_target"]
    assert all(sig == PNG_SIGNATURE for _, sig in sent)
    assert any("funnel" in r.getMessage() for r in caplog.records)


# -- a turn's charts ------------------------------------------------------------------------------


def test_a_turn_collects_the_charts_of_its_ok_outcomes_only():
    good = pipeline_chart(by_stage(), "en").model_dump(mode="json")
    outcomes = [
        runner.ToolOutcome(status="ok", tool="pipeline_report", text="t", result={"text": "t", "chart": good}),
        runner.ToolOutcome(status="ok", tool="list_deals", text="t", result={"text": "t"}),
        runner.ToolOutcome(status="ok", tool="no_chart", text="t", result={"text": "t", "chart": None}),
        runner.ToolOutcome(status="ok", tool="broken", text="t", result={"text": "t", "chart": {"kind": "pie"}}),
        runner.ToolOutcome(status="error", tool="refused", text="t", result={"chart": good}),
    ]
    charts = TurnResult(text="t", outcomes=outcomes).charts
    assert charts == [Chart.model_validate(good)]
