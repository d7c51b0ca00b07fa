"""The weekly pipeline digest a manager gets: their reporting line's numbers, read as them.

Every figure comes from the analytics services with the manager's own actor, so the digest can
never show more than the manager could ask for in chat. Texts are prompts/digest.*.yaml.
"""
from __future__ import annotations

import logging

from domain import analytics as an
from domain.actor import Actor
from domain.errors import LTCError
from prompts.messages import render
from tools.format import money

log = logging.getLogger("ltc.digest")
TOP_DEALS = 3


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def digest_lines(uow, actor: Actor, lang: str, week: str) -> tuple[str, tuple[str, ...], object]:
    """(headline, lines, pipeline view) for the manager behind `actor`; raises LTCError when they may not read it."""
    stage = an.pipeline("stage", None, actor=actor, uow=uow)
    cur = stage.currency
    fc = an.forecast("this_quarter", actor=actor, uow=uow)
    top = an.top_deals("this_month", TOP_DEALS, actor=actor, uow=uow)
    stuck = an.stuck_deals(30, 1, actor=actor, uow=uow)
    aging = an.aging(None, actor=actor, uow=uow)
    lines = [render("digest.pipeline", lang, count=stage.total.count, amount=money(stage.total.amount, cur),
                    weighted=money(stage.total.weighted, cur))]
    for row in stage.rows:
        lines.append(render("digest.stage", lang, stage=render(f"tool.deal.stage.{row.key}", lang), count=row.count,
                            amount=money(row.amount, cur)))
    won = next(c for c in fc.categories if c.category == "won")
    lines.append(render("digest.forecast", lang, period=fc.period.label, won=money(won.amount, cur),
                        forecast=money(fc.weighted_forecast, cur), target=money(fc.target, cur),
                        coverage=_pct(fc.coverage)))
    if top.deals:
        lines.append(render("digest.closing", lang, count=top.count, amount=money(top.amount, cur)))
        for d in top.deals:
            lines.append(render("digest.deal", lang, ref=d.ref, name=d.name, owner=d.owner_name,
                                amount=money(d.amount, cur), stage=render(f"tool.deal.stage.{d.stage}", lang)))
    else:
        lines.append(render("digest.closing_none", lang))
    lines.append(render("digest.stuck", lang, count=stuck.count, amount=money(stuck.amount, cur)))
    lines.append(render("digest.overdue", lang, amount=money(aging.total.overdue, cur),
                        dso="-" if aging.dso_days is None else f"{aging.dso_days}"))
    return render("digest.title", lang, week=week), tuple(lines), stage


def pipeline_chart_for(view, lang: str):
    """The pipeline-by-stage picture, or None when charts are not available."""
    try:
        from tools.charts import pipeline_chart
    except ImportError:  # charts are optional for a digest: the text carries every number
        return None
    try:
        return pipeline_chart(view, lang)
    except Exception:  # noqa: BLE001 - a broken chart must not lose the digest
        log.exception("digest chart failed")
        return None


def build(uow, actor: Actor, lang: str, week: str) -> tuple[str, tuple[str, ...], object] | None:
    try:
        headline, lines, view = digest_lines(uow, actor, lang, week)
    except LTCError as e:
        log.info("no pipeline digest for user %s: %s", actor.user_id, e.message)
        return None
    return headline, lines, pipeline_chart_for(view, lang)
