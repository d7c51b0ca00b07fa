"""Charts as PNG pictures for the chat surfaces: matplotlib's Agg renderer, no display, no pyplot.

Every picture is WIDTH × HEIGHT pixels. Money is drawn compact in the reader's way (1.2M, 350K;
120万, 1.2亿) with the currency on the axis. Chinese needs a CJK font: a known family matplotlib
already lists, else a known font file or what fontconfig lists for zh (scripts/bootstrap.sh installs
fonts-wqy-microhei). Without one, a chart with Chinese text is drawn with its English labels and a
warning is logged: never boxes in place of characters.
"""
from __future__ import annotations

import io
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from prompts.messages import render
from tools.charts import Chart

log = logging.getLogger("ltc.charts")
WIDTH, HEIGHT, DPI = 1000, 600, 100
LATIN = "DejaVu Sans"  # ships with matplotlib
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                "Droid Sans Fallback", "Microsoft YaHei", "PingFang SC", "SimHei", "Noto Sans SC")
CJK_FILES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian fonts-wqy-microhei (bootstrap.sh)
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
PROBE = "商机阶段金额逾期万亿"  # a font that has these has the rest of our Chinese
PALETTE = ("#2f6db5", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
FORECAST_COLOURS = ("#59a14f", "#2f6db5", "#6f9fd8", "#a9c6ea", "#f28e2b", "#8c8c8c")  # won … target
_lock = threading.Lock()  # matplotlib's rc settings and font list are process-wide


@dataclass(frozen=True)
class Font:
    family: str
    path: str
    glyphs: frozenset[int]


# -- fonts ----------------------------------------------------------------------------------------


def _font(path: str) -> Font:
    face = font_manager.get_font(path)
    return Font(face.family_name, path, frozenset(face.get_charmap()))


@cache
def latin_font() -> Font:
    return _font(font_manager.findfont(font_manager.FontProperties(family=LATIN)))


@cache
def cjk_font() -> Font | None:
    """The first CJK font found (once per process); None, with a warning, when there is none."""
    known = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    candidates = [known[name] for name in CJK_FAMILIES if name in known]
    candidates += [p for p in (*CJK_FILES, *_fontconfig_zh()) if Path(p).is_file()]
    for path in candidates:
        try:
            font = _font(path)
        except Exception as e:  # an unreadable file: try the next
            log.info("font %s unusable: %s", path, e)
            continue
        if all(ord(ch) in font.glyphs for ch in PROBE):
            if font.family not in known:  # installed after matplotlib cached its font list
                font_manager.fontManager.addfont(path)
            return font
    log.warning("no CJK font found: charts with Chinese text are drawn with English labels "
                "(install fonts-wqy-microhei; scripts/bootstrap.sh does)")
    return None


def _fontconfig_zh() -> list[str]:
    if not shutil.which("fc-list"):
        return []
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())


# -- what is drawn --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    chart: Chart  # the texts that will be drawn (the English fallback when the fonts lack glyphs)
    lang: str
    families: list[str]


def plan(chart: Chart) -> Plan:
    """Which labels and fonts to draw `chart` with, so that every character has a glyph."""
    cjk = cjk_font()
    fonts = [latin_font()] + ([cjk] if cjk else [])
    if chart.locale == "zh" and cjk:
        fonts.reverse()  # Chinese text set in one face, digits too
    families = [f.family for f in fonts]
    glyphs = frozenset().union(*(f.glyphs for f in fonts))
    missing = _missing(_texts(chart, chart.locale), glyphs)
    if not missing:
        return Plan(chart, chart.locale, families)
    if chart.fallback is not None:
        log.warning("no font draws %r: chart %r drawn with its English labels", "".join(sorted(missing))[:20],
                    chart.kind)
        labels = chart.fallback
        series = [s.model_copy(update={"name": name}) for s, name in zip(chart.series, labels.series)]
        chart = chart.model_copy(update={"title": labels.title, "categories": labels.categories, "series": series,
                                         "locale": "en", "fallback": None})
        missing = _missing(_texts(chart, "en"), glyphs)
    if missing:  # nothing better to show: a visible "?" and a warning
        log.warning("no font draws %r: shown as ? in chart %r", "".join(sorted(missing))[:20], chart.kind)
        chart = _replace(chart, missing)
    return Plan(chart, chart.locale, families)


def _texts(chart: Chart, lang: str) -> list[str]:
    own = [render("chart.axis.money", lang, currency=chart.unit), render("chart.axis.count", lang),
           render("chart.empty", lang), render("chart.of_first", lang, value="", pct=""), compact(1e8, lang),
           compact(1e4, lang)]
    return [chart.title, *chart.categories, *(s.name for s in chart.series), chart.unit, *own]


def _missing(texts: Iterable[str], glyphs: frozenset[int]) -> set[str]:
    return {ch for text in texts for ch in text if not ch.isspace() and ord(ch) not in glyphs}


def _replace(chart: Chart, missing: set[str]) -> Chart:
    def clean(text: str) -> str:
        return "".join("?" if ch in missing else ch for ch in text)

    return chart.model_copy(update={"title": clean(chart.title), "categories": [clean(c) for c in chart.categories],
                                    "series": [s.model_copy(update={"name": clean(s.name)}) for s in chart.series]})


# -- numbers --------------------------------------------------------------------------------------


def compact(value: float, lang: str = "en") -> str:
    """1.2M / 350K in English; 120万 / 1.2亿 in Chinese; small numbers in full."""
    units = ((1e8, "亿"), (1e4, "万")) if lang == "zh" else ((1e9, "B"), (1e6, "M"), (1e3, "K"))
    sign, v = ("-" if value < 0 else ""), abs(value)
    for i, (size, suffix) in enumerate(units):
        if v >= size:
            text = _significant(v / size)
            if i > 0 and float(text) * size >= units[i - 1][0]:  # 999,999 rounds to 1M, not 1000K
                size, suffix = units[i - 1]
                text = _significant(v / size)
            return sign + text + suffix
    return sign + f"{v:,.0f}"


def _significant(x: float) -> str:
    text = f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _money_axis(chart: Chart) -> bool:
    return bool(chart.unit)


def _label(chart: Chart, value: float, lang: str) -> str:
    return compact(value, lang) if _money_axis(chart) else f"{value:,.0f}"


# -- drawing --------------------------------------------------------------------------------------


def render_png(chart: Chart) -> bytes:
    """The chart as a WIDTH × HEIGHT PNG."""
    with _lock:
        p = plan(chart)
        with rc_context({"font.family": p.families, "text.parse_math": False,
                         "axes.unicode_minus": False}):
            fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            DRAW[p.chart.kind](ax, p.chart, p.lang)
            ax.set_title(p.chart.title, loc="left", fontsize=15, pad=14)
            ax.spines[["top", "right"]].set_visible(False)
            if not any(v for s in p.chart.series for v in s.values):
                ax.text(0.5, 0.5, render("chart.empty", p.lang), transform=ax.transAxes, ha="center",
                        va="center", fontsize=14, color="#666666")
            out = io.BytesIO()
            fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _value_axis(ax, chart: Chart, lang: str, axis: str) -> None:
    which = ax.xaxis if axis == "x" else ax.yaxis
    which.set_major_formatter(FuncFormatter(lambda v, _: _label(chart, v, lang)))
    text = render("chart.axis.money", lang, currency=chart.unit) if _money_axis(chart) else render("chart.axis.count",
                                                                                                   lang)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(text, fontsize=11)
    ax.grid(axis=axis, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _bars_across(ax, chart: Chart, lang: str) -> None:
    """Horizontal bars, first category on top; one bar per series in each group, each labelled."""
    n = len(chart.series)
    height = 0.8 / max(n, 1)
    top = max((v for s in chart.series for v in s.values), default=0) or 1
    for i, series in enumerate(chart.series):
        ys = [c + (i - (n - 1) / 2) * height for c in range(len(chart.categories))]
        bars = ax.barh(ys, series.values, height=height * 0.92, color=PALETTE[i % len(PALETTE)], label=series.name)
        for bar, value in zip(bars, series.values):
            ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, _label(chart, value, lang),
                    va="center", fontsize=9)
    ax.set_yticks(range(len(chart.categories)), chart.categories, fontsize=11)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.12)
    _value_axis(ax, chart, lang, "x")
    if n > 1:
        ax.legend(loc="lower right", frameon=False)


def _funnel(ax, chart: Chart, lang: str) -> None:
    """Centred bars narrowing down the steps, each with its count and its share of the first step."""
    values = chart.series[0].values if chart.series else []
    top = max(values, default=0) or 1
    first = values[0] if values else 0
    bars = ax.barh(range(len(values)), values, left=[(top - v) / 2 for v in values], height=0.75,
                   color=[PALETTE[0] if i < 3 else PALETTE[2] for i in range(len(values))])
    for bar, value in zip(bars, values):
        text = f"{value:,.0f}"
        if first:
            text = render("chart.of_first", lang, value=text, pct=f"{value / first:.0%}")
        ax.text(top / 2, bar.get_y() + bar.get_height() / 2, text, ha="center", va="center", fontsize=11,
                color="#111111", bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 2})
    ax.set_yticks(range(len(chart.categories)), chart.categories, fontsize=11)
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set_xticks([])
    ax.spines[["bottom"]].set_visible(False)


def _forecast(ax, chart: Chart, lang: str) -> None:
    """Columns for won, the open categories, the weighted forecast and the target; a dashed target line."""
    values = chart.series[0].values if chart.series else []
    bars = ax.bar(range(len(values)), values, width=0.65,
                  color=[FORECAST_COLOURS[min(i, len(FORECAST_COLOURS) - 1)] for i in range(len(values))])
    top = max(values, default=0) or 1
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + top * 0.01, _label(chart, value, lang),
                ha="center", va="bottom", fontsize=10)
    if values and values[-1]:  # the target, across the columns it is measured against
        ax.axhline(values[-1], color=FORECAST_COLOURS[-1], linestyle="--", linewidth=1.2)
    ax.set_xticks(range(len(chart.categories)), chart.categories, fontsize=10)
    ax.set_ylim(0, top * 1.12)
    _value_axis(ax, chart, lang, "y")


def _stacked(ax, chart: Chart, lang: str) -> None:
    """Columns per category with the series stacked; the stack's total on top."""
    n = len(chart.categories)
    bottoms = [0.0] * n
    for i, series in enumerate(chart.series):
        ax.bar(range(n), series.values, bottom=bottoms, width=0.65, color=PALETTE[i % len(PALETTE)],
               label=series.name)
        bottoms = [b + v for b, v in zip(bottoms, series.values)]
    top = max(bottoms, default=0) or 1
    for x, total in enumerate(bottoms):
        ax.text(x, total + top * 0.01, _label(chart, total, lang), ha="center", va="bottom", fontsize=10)
    ax.set_xticks(range(n), chart.categories, fontsize=10)
    ax.set_ylim(0, top * 1.12)
    _value_axis(ax, chart, lang, "y")
    if len(chart.series) > 1:
        ax.legend(loc="upper right", frameon=False)


DRAW: dict[str, Callable] = {"pipeline_by_stage": _bars_across, "funnel": _funnel,
                             "forecast_vs_target": _forecast, "aging": _stacked}


# -- to a chat ------------------------------------------------------------------------------------


def filename(chart: Chart) -> str:
    return f"{chart.kind}.png"


def alt_text(chart: Chart, limit: int = 1000) -> str:
    """The chart in words for screen readers: its title and every number."""
    parts = [chart.title]
    for series in chart.series:
        values = ", ".join(f"{c} {_label(chart, v, chart.locale)}" for c, v in zip(chart.categories, series.values))
        parts.append(f"{series.name}: {values}" if len(chart.series) > 1 else values)
    text = " — ".join(parts)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def deliver(charts: Iterable[Chart], send: Callable[[Chart, bytes], object], *, where: str) -> int:
    """Draw and `send` each chart; a failure is logged and never raised (the text reply is out already).
    Returns how many were sent."""
    sent = 0
    for chart in charts:
        try:
            send(chart, render_png(chart))
            sent += 1
        except Exception:
            log.exception("chart %r could not be sent to %s", chart.kind, where)
    return sent
