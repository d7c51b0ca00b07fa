"""Dates as people write them → 'YYYY-MM-DD', relative to `today`.

Absolute: 2026-06-30, 2026/6/30, 2026.6.30, 2026年6月30日, 6月30日 / 6月30号 (this year), Jun 30,
30 June 2026. Relative: today / tomorrow / yesterday / 今天 / 明天 / 后天 / 昨天; weekdays: Friday
(the next one, today included), this Friday / 本周五 (this week's, Monday-first), next Friday / 下周五
(next week's); end of month / 月底 / 本月底, end of next month / 下月底, end of quarter / 季度末,
end of year / 年底; in 3 days / 3天后, in 2 weeks / 两周后, in 1 month / 1个月后.
"""
from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, timedelta

from bot.agent.offline.numbers import cn_int

_MONTHS = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
           "nov": 11, "dec": 12}
_MONTH = (r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_WEEKDAYS_EN = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WEEKDAY_EN = (r"(?P<wd>mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
               r"|sat(?:urday)?|sun(?:day)?)")
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5,
                "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_SMALL = r"\d{1,3}|[一二两三四五六七八九十]+|an?|one|two|three|four|five|six"
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_B, _E = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"


def _n(text: str) -> int:
    text = text.lower()
    return int(text) if text.isdigit() else _WORDS.get(text) or cn_int(text) or 0


def _safe(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _month_end(y: int, m: int) -> date:
    while m > 12:
        y, m = y + 1, m - 12
    return date(y, m, calendar.monthrange(y, m)[1])


def _add_months(d: date, months: int) -> date:
    y, m = d.year + (d.month - 1 + months) // 12, (d.month - 1 + months) % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def _weekday(today: date, wd: int, which: str) -> date:
    monday = today - timedelta(days=today.weekday())
    if which == "this":
        return monday + timedelta(days=wd)
    if which == "next":
        return monday + timedelta(days=7 + wd)
    if which == "last":
        return monday - timedelta(days=7 - wd)
    return today + timedelta(days=(wd - today.weekday()) % 7)


def _period_end(today: date, unit: str, nxt: bool) -> date:
    if unit == "month":
        return _month_end(today.year, today.month + (1 if nxt else 0))
    if unit == "quarter":
        return _month_end(today.year, ((today.month - 1) // 3 + 1) * 3 + (3 if nxt else 0))
    return date(today.year + (1 if nxt else 0), 12, 31)


_UNIT = {"month": "month", "月": "month", "quarter": "quarter", "季度": "quarter", "季": "quarter", "year": "year",
         "年": "year"}
_RELATIVE = {"today": 0, "tonight": 0, "tomorrow": 1, "tmr": 1, "yesterday": -1, "day after tomorrow": 2,
             "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "昨天": -1, "前天": -2}

Rule = tuple[re.Pattern, Callable[[re.Match, date], "date | None"]]
_RULES: list[Rule] = [
    (re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?(?!\d)"),
     lambda m, t: _safe(int(m[1]), int(m[2]), int(m[3]))),
    (re.compile(r"(?<![\d年])(\d{1,2}|[一二三四五六七八九十]+)\s*月\s*(\d{1,2}|[一二三四五六七八九十]+)\s*[日号]"),
     lambda m, t: _safe(t.year, _n(m[1]), _n(m[2]))),
    (re.compile(rf"{_B}{_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?{_E}", re.I),
     lambda m, t: _safe(int(m["y"] or t.year), _MONTHS[m["mon"][:3].lower()], int(m["d"]))),
    (re.compile(rf"{_B}(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?{_E}", re.I),
     lambda m, t: _safe(int(m["y"] or t.year), _MONTHS[m["mon"][:3].lower()], int(m["d"]))),
    (re.compile(rf"{_B}(?:the\s+)?end\s+of\s+(?:the\s+)?(?P<nx>this\s+|next\s+)?(?P<u>month|quarter|year){_E}"
                rf"|{_B}(?P<nx2>this\s+|next\s+)?(?P<u2>month|quarter|year)[-\s]end{_E}", re.I),
     lambda m, t: _period_end(t, (m["u"] or m["u2"]).lower(), "next" in (m["nx"] or m["nx2"] or "").lower())),
    (re.compile(r"(?<![\d年])(\d{1,2}|[一二三四五六七八九十]+)\s*月\s*(?:底|末)"),
     lambda m, t: _month_end(t.year, _n(m[1])) if 1 <= _n(m[1]) <= 12 else None),
    (re.compile(r"(?P<nx>本|这个?|今|下个?|明)?\s*(?P<u>月|季度|季|年)\s*(?:底|末)"),
     lambda m, t: _period_end(t, _UNIT[m["u"]], (m["nx"] or "")[:1] in ("下", "明"))),
    (re.compile(rf"{_B}(?:day after tomorrow|today|tonight|tomorrow|tmr|yesterday){_E}|大后天|今天|今日|明天|明日|后天|昨天|前天",
                re.I),
     lambda m, t: t + timedelta(days=_RELATIVE[m[0].lower()])),
    (re.compile(rf"{_B}(?:(?P<w>this|next|last|coming)\s+)?{_WEEKDAY_EN}{_E}", re.I),
     lambda m, t: _weekday(t, _WEEKDAYS_EN[m["wd"][:3].lower()],
                           {"this": "this", "next": "next", "last": "last"}.get((m["w"] or "").lower(), ""))),
    (re.compile(r"(?P<w>本|这个?|下个?|上个?)?\s*(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"),
     lambda m, t: _weekday(t, _WEEKDAYS_ZH[m["wd"]],
                           "this" if (m["w"] or "")[:1] in ("本", "这") else "next" if (m["w"] or "")[:1] == "下"
                           else "last" if (m["w"] or "")[:1] == "上" else "")),
    (re.compile(rf"{_B}in\s+(?P<n>{_SMALL})\s+(?P<u>days?|weeks?|months?){_E}", re.I),
     lambda m, t: _shift(t, _n(m["n"]), m["u"].lower()[:1])),
    (re.compile(rf"(?P<n>{_SMALL})\s*(?P<u>天|日|周|个?星期|个?礼拜|个月)\s*(?:后|以后|之后)"),
     lambda m, t: _shift(t, _n(m["n"]), {"天": "d", "日": "d", "个": "m"}.get(m["u"][:1], "w"))),
]


def _shift(today: date, n: int, unit: str) -> date | None:
    if n <= 0:
        return None
    if unit == "m":
        return _add_months(today, n)
    return today + timedelta(days=n * (7 if unit == "w" else 1))


def find_date(text: str, today: date) -> tuple[str, tuple[int, int]] | None:
    """The earliest date phrase in the text as 'YYYY-MM-DD', with its span."""
    best: tuple[int, int, date] | None = None
    for rx, fn in _RULES:
        for m in rx.finditer(text or ""):
            d = fn(m, today)
            if d is None:
                continue
            if best is None or m.start() < best[0] or (m.start() == best[0] and m.end() > best[1]):
                best = (m.start(), m.end(), d)
            break
    return (best[2].isoformat(), (best[0], best[1])) if best else None


_FILLER = re.compile(r"^(?:on|by|before|until|till|due|due on|the|to|at|is|=|于|在|前|之前|以前|截至|截止|到|为|改为|改成|是|日期|date|[\s,:;.]+)*$",
                     re.I)


def date_value(text: str, today: date) -> str | None:
    """The text is one date phrase (with at most 'on / by / before / 前 / 之前' around it), else None."""
    found = find_date(text, today)
    if found is None:
        return None
    iso, (a, b) = found
    rest = text[:a] + " " + text[b:]
    return iso if all(_FILLER.match(piece) for piece in rest.split()) else None
