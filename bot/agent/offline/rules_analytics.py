"""Rules for reports (经营分析) and targets: pipeline, forecast, win rate, sales cycle, funnel, stuck and top
deals, approval throughput, receivables aging / DSO, collection rate, reconciliation, period over period.

A report is its metric words plus optional parts: a period ("this quarter", "Q3 2026", "本季度",
"2026年第三季度", "2026-11"), a dimension ("by stage", "各区域", "按销售"), a count ("top 5", "前5个"),
days ("for 60 days", "超过60天"). Whatever else the sentence holds must be filler ("show me", "the",
"的", "一下"): a command that only mentions a report word ("submit Q3 forecast", "deals of Li Lei",
"逾期账款") is left to the other rules.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from bot.agent.offline import numbers
from bot.agent.offline.dates import find_date
from bot.agent.offline.rules_common import one_clause, rx
from bot.agent.offline.text import Command, Utterance, ref_spans

_B, _E = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
_CN_Q = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_MON = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                    "dec"), 1)}
_MONTH_NAME = (r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
               r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_UNIT = {"month": "month", "月": "month", "quarter": "quarter", "季度": "quarter", "季": "quarter", "year": "year",
         "年": "year", "年度": "year"}

# -- periods ---------------------------------------------------------------------------------------

_Relative = Callable[[re.Match, date], "str | None"]


def _named(step: str) -> _Relative:
    return lambda m, today: f"{step}_{_UNIT[m['u'].lower()]}"


def _quarter(m: re.Match, today: date) -> str | None:
    y = int(m["y"]) if m.groupdict().get("y") else today.year
    return f"{y}-Q{_CN_Q[m['q']]}"


def _month(m: re.Match, today: date) -> str | None:
    mon = _MON[m["mon"][:3].lower()] if m.groupdict().get("mon") else numbers.integer(m["m"])
    y = int(m["y"]) if m.groupdict().get("y") else today.year
    return f"{y}-{mon:02d}" if mon and 1 <= mon <= 12 else None


_PERIODS: tuple[tuple[re.Pattern, _Relative], ...] = tuple((rx(p), fn) for p, fn in (
    (rf"{_B}(?:the\s+)?(?:this|current)\s+(?P<u>month|quarter|year){_E}", _named("this")),
    (rf"{_B}(?:the\s+)?(?:last|previous|prior|past)\s+(?P<u>month|quarter|year){_E}", _named("last")),
    (rf"{_B}(?:the\s+)?(?:next|coming)\s+(?P<u>month|quarter|year){_E}", _named("next")),
    (rf"{_B}(?P<u>month|quarter|year)[\s-]+to[\s-]+date{_E}", _named("this")),
    (rf"{_B}(?P<u>[MQY])TD{_E}", lambda m, t: "this_" + {"m": "month", "q": "quarter", "y": "year"}[m["u"].lower()]),
    (rf"{_B}Q(?P<q>[1-4])\s*(?:of\s+|[-/]\s*)?(?:FY\s*)?(?P<y>20\d\d){_E}", _quarter),
    (rf"{_B}(?P<y>20\d\d)\s*(?:年\s*)?(?:[-/]\s*)?Q(?P<q>[1-4]){_E}", _quarter),
    (r"(?P<y>20\d\d)\s*年\s*(?:第\s*)?(?P<q>[1-4一二三四])\s*季度?", _quarter),
    (rf"{_B}Q(?P<q>[1-4]){_E}", _quarter),
    (r"(?<![\d年])(?:第\s*)?(?P<q>[1-4一二三四])\s*季度", _quarter),
    (rf"{_B}{_MONTH_NAME}\s*,?\s*(?P<y>20\d\d){_E}", _month),
    (rf"{_B}(?P<y>20\d\d)\s*[-/]\s*(?P<m>\d{{1,2}})(?![\d/-])", _month),
    (r"(?P<y>20\d\d)\s*年\s*(?P<m>\d{1,2}|[一二三四五六七八九十]+)\s*月份?(?!\s*(?:\d|[一二三四五六七八九十]+\s*[日号]|底|末))",
     _month),
    (r"(?<![\d年])(?P<m>\d{1,2}|十[一二]?|[一二三四五六七八九])\s*月份?(?!\s*(?:\d|[一二三四五六七八九十]+\s*[日号]|底|末))",
     _month),
    (r"本月度?|这个?月|当月", lambda m, t: "this_month"),
    (r"上个?月", lambda m, t: "last_month"),
    (r"下个?月", lambda m, t: "next_month"),
    (r"本季度?|这个?季度|当季度?", lambda m, t: "this_quarter"),
    (r"上个?季度|上季", lambda m, t: "last_quarter"),
    (r"下个?季度|下季", lambda m, t: "next_quarter"),
    (r"今年|本年度?|这一?年", lambda m, t: "this_year"),
    (r"去年|上一?年度?", lambda m, t: "last_year"),
    (r"明年|下一?年度?", lambda m, t: "next_year"),
    (r"(?P<y>20\d\d)\s*(?:年度?|财年)", lambda m, t: m["y"]),
    (rf"{_B}(?:in\s+|for\s+|FY\s*)?(?P<y>20\d\d){_E}(?![,.]\d)", lambda m, t: m["y"]),
))


def find_period(text: str, today: date) -> tuple[str, tuple[int, int]] | None:
    """The earliest (then longest) period phrase: its service name ('this_quarter', '2026-Q3') and span."""
    best: tuple[int, int, str] | None = None
    for pattern, fn in _PERIODS:
        for m in pattern.finditer(text):
            name = fn(m, today)
            if name is None:
                continue
            if best is None or m.start() < best[0] or (m.start() == best[0] and m.end() > best[1]):
                best = (m.start(), m.end(), name)
            break
    return (best[2], (best[0], best[1])) if best else None


# -- dimensions, counts, days ----------------------------------------------------------------------

_DIMS = (
    ("stage", r"stages?|phases?", r"阶段"),
    ("owner", r"owners?|reps?|sales\s*reps?|sales\s*people|salespeople|sales\s*persons?|sellers?|ARs?|"
              r"account\s+managers?|people|persons?", r"客户经理|销售员?|人员|人|AR"),
    ("team", r"teams?", r"团队|部门|销售部"),
    ("region", r"regions?|territor(?:y|ies)|areas?", r"区域|地区|大区|片区"),
    ("product", r"products?|skus?|product\s+lines?", r"产品线?"),
    ("quarter", r"quarters?|close\s+quarters?", r"季度"),
    ("month", r"months?|close\s+months?", r"月份?"),
)
_DIM_EN = rx(rf"{_B}(?:(?:split|broken\s+down|grouped|broken\s+out)\s+)?(?:by|per|for\s+each|each|across)\s+(?:the\s+)?"
             rf"(?:{'|'.join(f'(?P<{k}>{en})' for k, en, _ in _DIMS)}){_E}")
_DIM_ZH = rx(rf"(?:各|按(?:照)?|分|每个?)\s*(?:个)?\s*(?:{'|'.join(f'(?P<z{k}>{zh})' for k, _, zh in _DIMS)})")


def find_dimension(text: str) -> tuple[str, tuple[int, int]] | None:
    found = [m for m in (_DIM_EN.search(text), _DIM_ZH.search(text)) if m]
    if not found:
        return None
    m = min(found, key=lambda x: x.start())
    key = next(k for k, v in m.groupdict().items() if v is not None)
    return key.removeprefix("z"), m.span()


_COUNT_WORDS = {"three": 3, "five": 5, "ten": 10, "twenty": 20}
_TOP = rx(r"(?<![A-Za-z])top\s*(?P<n>\d{1,3}|three|five|ten|twenty)?(?![A-Za-z0-9])"
          r"|(?<![A-Za-z])(?P<n2>\d{1,3}|three|five|ten)?\s*(?:biggest|largest)(?![A-Za-z])"
          r"|前\s*(?P<n3>\d{1,3}|[一二两三四五六七八九十]+)\s*(?:个|大|名|笔)?"
          r"|(?:最大的?|金额最大的?)\s*(?P<n4>\d{1,3}|[一二两三四五六七八九十]+)?\s*(?:个|笔)?")
_DAYS = rx(r"(?:(?<![A-Za-z])(?:for|over|more\s+than|at\s+least|longer\s+than|in)\s+|超过|大于|多于|满|>=?\s*)?"
           r"(?P<n>\d{1,4}|[一二两三四五六七八九十百]+)\s*\+?\s*(?:days?|天)(?:\s*\+|\s+or\s+more|\s*以上|\s*及以上)?")


def _count(m: re.Match) -> int | None:
    raw = next((g for g in (m["n"], m["n2"], m["n3"], m["n4"]) if g), None)
    if raw is None:
        return None
    return _COUNT_WORDS.get(raw.lower()) or numbers.integer(raw)


_QUARTER_NOT_QUOTE = re.compile(r"q[1-4]", re.I)


def _refs(text: str) -> bool:
    """A record reference in the text; "Q3" reads as a quarter here, not as quote 3 (written Q-3)."""
    return any(not _QUARTER_NOT_QUOTE.fullmatch(text[a:b]) for a, b in ref_spans(text))


# -- filler ------------------------------------------------------------------------------------------

_FILLER_EN = (r"show|me|us|give|get|pull|list|view|see|display|tell|what|what's|whats|which|is|are|was|were|the|a|an|"
              r"our|my|all|open|for|of|in|on|at|to|with|and|so|far|report|reports|breakdown|summary|overview|numbers|"
              r"figures|stats|statistics|analysis|how|much|many|does|do|did|look|looks|like|now|current|total|totals|"
              r"overall|please|whole|company|s|'s|view|data")
_FILLER_ZH = (r"查看|看看|看下|看一下|看|查询|查一下|查|显示|列出|给我|我们的?|我的|我|的|一下|下|统计|汇总|报表|报告|分析|"
              r"情况|分布|数据|是|多少|有|哪些|怎么样|如何|目前|当前|现在|最新|整体|总体|全部|所有|了|和|与|及|共|总|"
              r"整个|公司|一览|明细|列表|清单|请|看下|来看")
_DEAL_EN = r"deals?|opportunit(?:y|ies)|opps?"
_DEAL_ZH = r"商机|机会点?|项目"


def _filler(extra_en: str = "", extra_zh: str = "") -> re.Pattern:
    en = _FILLER_EN + ("|" + extra_en if extra_en else "")
    zh = _FILLER_ZH + ("|" + extra_zh if extra_zh else "")
    return rx(rf"(?:\s|[,;:#.'?!()/&+-]|(?<![A-Za-z])(?:{en})(?![A-Za-z])|{zh})*")


class _Parts:
    """The utterance with what was understood blanked out, and what was found."""

    def __init__(self, u: Utterance, today: date) -> None:
        self.t, self.today = u, today
        self.period: str | None = None
        self.by: str | None = None

    def take(self, span: tuple[int, int]) -> None:
        self.t = self.t.mask(span)

    def take_period(self) -> str | None:
        found = find_period(self.t.text, self.today)
        if found:
            self.period = found[0]
            self.take(found[1])
        return self.period

    def take_dimension(self) -> str | None:
        found = find_dimension(self.t.text)
        if found:
            self.by = found[0]
            self.take(found[1])
        return self.by

    def only(self, filler: re.Pattern) -> bool:
        return bool(filler.fullmatch(self.t.text))


def _start(u: Utterance, today: date, metric: str) -> tuple[_Parts, re.Match] | None:
    """The parts of a one-clause, reference-free sentence holding the metric's words."""
    if _refs(u.text) or not one_clause(u):
        return None
    m = rx(metric).search(u.text)
    if m is None:
        return None
    parts = _Parts(u, today)
    parts.take(m.span())
    return parts, m


def _args(parts: _Parts, *, by: bool = True, **extra) -> dict:
    args = {}
    if by and parts.by:
        args["by"] = parts.by
    if parts.period:
        args["period"] = parts.period
    return {**args, **extra}


# -- the reports -------------------------------------------------------------------------------------

_PIPELINE = (rf"{_B}(?:(?:open|sales|weighted)\s+)?(?:pipeline|{_DEAL_EN}){_E}"
             rf"|销售漏斗|销售管道|在手商机|管道|{_DEAL_ZH}|pipeline")
_PIPELINE_FILLER = _filler(r"closing|close|expected|value|amount|amounts|size|weighted|pipeline|deals?|opportunities",
                           r"预计成交|预计签约|即将成交|预计|成交|金额|总额|加权|商机|在手")
_PIPELINE_BY = ("stage", "owner", "team", "region", "product", "quarter", "month")


def _period_report(u: Utterance, today: date, tool: str, metric: str, filler: re.Pattern,
                   dims: tuple | None = None) -> Command | None:
    """A report over a period only: the metric's words, a period, an allowed dimension word, filler."""
    started = _start(u, today, metric)
    if started is None:
        return None
    parts, _ = started
    parts.take_period()
    if (dims is not None and parts.take_dimension() not in dims) or not parts.only(filler):
        return None
    return Command(tool, _args(parts, by=False))


def pipeline_report(u: Utterance, today: date) -> Command | None:
    started = _start(u, today, _PIPELINE)
    if started is None:
        return None
    parts, m = started
    parts.take_dimension()
    parts.take_period()
    if not (parts.by or parts.period) and "漏斗" not in m.group():
        return None  # "pipeline" / "my deals" alone is the deal list
    if parts.by not in (None, *_PIPELINE_BY) or not parts.only(_PIPELINE_FILLER):
        return None
    return Command("pipeline_report", _args(parts))


_FORECAST = (rf"{_B}(?:sales\s+)?forecasts?(?:\s+(?:vs\.?|versus|against|and)\s+(?:the\s+)?(?:targets?|quotas?))?{_E}"
             rf"|{_B}(?:quota|target)\s+attainment{_E}"
             r"|(?:业绩|销售)?预测(?:\s*(?:vs\.?|对比|和|与|对)\s*目标)?|目标(?:达成|完成)(?:率|情况)?|业绩达成(?:率|情况)?")
_FORECAST_FILLER = _filler(r"weighted|commit|best|case|targets?", r"目标|对比|达成|完成|加权")


def forecast_report(u: Utterance, today: date) -> Command | None:
    return _period_report(u, today, "forecast_report", _FORECAST, _FORECAST_FILLER, dims=(None, "owner", "team"))


_WIN_RATE = (rf"{_B}(?:win[\s-]*(?:rates?|ratio)|close\s+rates?|win\s*/\s*loss(?:\s+ratio)?|won\s+vs\.?\s+lost){_E}"
             r"|赢单率|赢率|胜率|成单率|中标率|赢单比例")
_WIN_FILLER = _filler(r"average|deal|size|won|lost|amount", r"平均|单额|客单价|赢单|金额")
_WIN_BY = ("owner", "team", "region", "quarter")


def win_rate_report(u: Utterance, today: date) -> Command | None:
    started = _start(u, today, _WIN_RATE)
    if started is None:
        return None
    parts, _ = started
    parts.take_dimension()
    parts.take_period()
    if parts.by not in (None, *_WIN_BY) or not parts.only(_WIN_FILLER):
        return None
    return Command("win_rate_report", _args(parts))


_CYCLE = (rf"{_B}(?:sales\s+cycles?(?:\s+(?:time|length))?|cycle\s+times?|deal\s+velocity|days\s+to\s+(?:win|close)|"
          rf"time\s+(?:in|per)\s+(?:each\s+)?stage|stage\s+durations?|"
          rf"how\s+long\s+(?:do\s+|does\s+(?:a\s+)?)?(?:deals?|it)\s+take(?:\s+to\s+(?:close|win))?){_E}"
          r"|销售周期|成交周期|赢单周期|签单周期|(?:各?阶段)?停留(?:时间|天数|时长)|(?:各阶段)?(?:用时|耗时)")
_CYCLE_FILLER = _filler(r"average|median|length|long|stage|each|per", r"平均|中位数?|阶段|每个|天数")


def cycle_time_report(u: Utterance, today: date) -> Command | None:
    started = _start(u, today, _CYCLE)
    if started is None:
        return None
    parts, _ = started
    parts.take_dimension()
    parts.take_period()
    if parts.by not in (None, "stage") or not parts.only(_CYCLE_FILLER):
        return None
    return Command("cycle_time_report", _args(parts, by=False))


_FUNNEL = (rf"{_B}(?:(?:sales\s+|conversion\s+|lead\s+)?funnel|(?:lead\s+)?conversion(?:\s+rates?)?){_E}"
           r"|转化漏斗|漏斗|(?:线索)?转化率|线索转化(?:情况)?")
_FUNNEL_FILLER = _filler(r"leads?|rates?|stage|each", r"线索|各阶段|阶段|转化")


def funnel_report(u: Utterance, today: date) -> Command | None:
    return _period_report(u, today, "funnel_report", _FUNNEL, _FUNNEL_FILLER, dims=(None, "stage"))


_STUCK = (rf"{_B}(?:stuck|stalled|stale|idle|slipp(?:ed|ing)|not\s+moving|(?:with\s+)?(?:no|without)\s+"
          rf"(?:movement|progress|stage\s+change)|haven'?t\s+moved|past\s+(?:their\s+)?(?:expected\s+)?close(?:\s+dates?)?){_E}"
          r"|停滞(?:不前)?|卡住了?|卡单|(?:没有?|未)\s*(?:推进|进展|动静?|变化)|不动")
_STUCK_FILLER = _filler(_DEAL_EN + r"|that|are|have|been|moved|since|stage|their|in", _DEAL_ZH + r"|的|阶段|已经|在")


def stuck_deals(u: Utterance, today: date) -> Command | None:
    started = _start(u, today, _STUCK)
    if started is None:
        return None
    parts, _ = started
    args: dict = {}
    days = _DAYS.search(parts.t.text)
    if days:
        n = numbers.integer(days["n"])
        if not n:
            return None
        args["days"] = n
        parts.take(days.span())
    if not parts.only(_STUCK_FILLER):
        return None
    return Command("stuck_deals", args)


_TOP_FILLER = _filler(_DEAL_EN + r"|closing|close|to|expected|due|by|amount|value",
                      _DEAL_ZH + r"|即将成交|预计成交|将要成交|即将签约|预计签约|要签约|成交|签约|金额|的|个|大")
_DEAL_WORD = rx(rf"{_B}(?:{_DEAL_EN}){_E}|{_DEAL_ZH}")


def top_deals(u: Utterance, today: date) -> Command | None:
    started = _start(u, today, _TOP.pattern)
    if started is None or not _DEAL_WORD.search(u.text):
        return None
    parts, m = started
    parts.take_period()
    if not parts.only(_TOP_FILLER):
        return None
    n = _count(m)
    return Command("top_deals", _args(parts, by=False, **({"limit": n} if n else {})))


_GATES = (rf"{_B}(?:approval|gate|decision)s?\s+(?:throughput|turnaround(?:\s+times?)?|times?|speed|cycle(?:\s+times?)?|"
          rf"lead\s+times?|stats|statistics|sla|durations?|velocity){_E}"
          rf"|{_B}(?:how\s+(?:long|fast)\s+(?:do\s+|are\s+)?approvals\s+(?:take|go|decided)|time\s+to\s+approve){_E}"
          r"|(?:审批|决策|评审)\s*(?:时效|效率|耗时|周期|时长|用时|速度|吞吐量?|统计|平均时间)|审批要多久|审批多久")
_GATES_FILLER = _filler(r"average|per|kind|each|take|approvals?", r"平均|各类|每类|审批")


def gate_throughput(u: Utterance, today: date) -> Command | None:
    return _period_report(u, today, "gate_throughput", _GATES, _GATES_FILLER)


_AGING = (rf"{_B}(?:(?:AR|receivables?|invoices?)\s+)?age?ing(?:\s+report)?{_E}|{_B}DSO{_E}"
          rf"|{_B}days\s+sales\s+outstanding{_E}|应收账龄|账龄(?:分析)?|应收周转天数|DSO")
_AR_OVERDUE = (rf"{_B}(?:overdue|past[- ]due|open\s+receivables?|receivables?|outstanding)(?:\s+(?:invoices?|amounts?|"
               rf"receivables?|balances?))?{_E}|逾期应收(?:账款)?|应收账款|逾期账款|逾期|应收|欠款")
_AGING_FILLER = _filler(r"receivables?|invoices?|overdue|outstanding|accounts|AR|as|days|buckets?",
                        r"应收账款|应收|账款|逾期|截至|截止|天数")


def receivables_aging(u: Utterance, today: date) -> Command | None:
    started = _start(u, today, _AGING)
    if started is None:  # "overdue by AR" / "按客户经理的逾期应收": the per-AR aging, not the invoice list
        started = _start(u, today, _AR_OVERDUE)
        if started is None:
            return None
        if (find_dimension(started[0].t.text) or ("",))[0] != "owner":
            return None
    parts, _ = started
    if parts.take_dimension() not in (None, "owner"):
        return None
    args: dict = {}
    as_of = find_date(parts.t.text, today)
    if as_of:
        args["as_of"] = as_of[0]
        parts.take(as_of[1])
    if not parts.only(_AGING_FILLER):
        return None
    return Command("receivables_aging", args)


_COLLECTION = (rf"{_B}(?:(?:cash\s+)?collections?\s+(?:rates?|ratio|performance)|collected\s+vs\.?\s+due){_E}"
               r"|回款率|收款率|回款(?:达成|完成)率")
_COLLECTION_FILLER = _filler(r"invoices?|due", r"应收|发票|到期")


def collection_rate(u: Utterance, today: date) -> Command | None:
    return _period_report(u, today, "collection_rate", _COLLECTION, _COLLECTION_FILLER, dims=(None, "owner"))


_RECON = (rf"{_B}(?:(?:(?:revenue|sales|won\s+deals?)\s+)?reconciliation|reconcile\s+(?:revenue|won\s+deals)|"
          rf"won\s+vs\.?\s+(?:contracted|invoiced|collected)|won\s+to\s+cash){_E}"
          r"|(?:收入|赢单|业绩|营收)?对账")
_RECON_FILLER = _filler(r"revenue|won|deals?|invoiced|collected|contracted|recognised|recognized",
                        r"收入|赢单|开票|回款|合同|确认")


def reconciliation_report(u: Utterance, today: date) -> Command | None:
    return _period_report(u, today, "reconciliation_report", _RECON, _RECON_FILLER)


_EARLIER = r"(?:the\s+)?(?:last|previous|prior|preceding)\s+(?P<u>month|quarter|year)"
_COMPARE = (
    rf"{_B}(?:(?:compare[sd]?|comparison|compared)(?:\s+(?:it|this|that))?\s+(?:with|to|against)|vs\.?|versus|against|"
    rf"(?:compare[sd]?|comparison)(?=\s+(?:the\s+)?(?:last|previous|prior|preceding)\s))\s+{_EARLIER}{_E}",
    rf"{_B}(?:with|to|against)\s+{_EARLIER}{_E}",
    rf"{_B}(?P<u>month|quarter|year)[\s-]+over[\s-]+(?P=u){_E}",
    rf"{_B}(?P<x>[MQY])o(?P=x){_E}",
    r"(?:与|和|跟|同|比|对比|相比|比较)\s*(?P<u>上个?月|上个?季度?|去年|上一?年)\s*(?:相比|对比|比较|比)?",
    r"(?P<hb>环比)",
    r"(?P<tb>同比)",
)
_COMPARE_FILLER = _filler(r"compare|compared|comparison|change|changes|how|we|doing|did|performance|kpis?|it|this",
                          r"对比|比较|相比|变化|增长|下降|情况|指标|业绩")
_ZH_UNIT = {"月": "month", "季": "quarter", "年": "year"}


def period_comparison(u: Utterance, today: date) -> Command | None:
    if _refs(u.text) or not one_clause(u):
        return None
    for pattern in _COMPARE:
        m = rx(pattern).search(u.text)
        if m:
            break
    else:
        return None
    groups = m.groupdict()
    unit = None
    if groups.get("u"):
        unit = _UNIT.get(groups["u"].lower()) or next(v for k, v in _ZH_UNIT.items() if k in groups["u"])
    elif groups.get("x"):
        unit = {"m": "month", "q": "quarter", "y": "year"}[groups["x"].lower()]
    elif groups.get("tb"):
        unit = "year"  # 同比: the same period a year before; this tool compares a year with the year before
    parts = _Parts(u, today)
    parts.take(m.span())
    if parts.take_period() and unit and not _kind_is(parts.period, unit, today):
        return None  # "Q3 2026 vs last month": not one kind of period; ask rather than guess
    if not parts.only(_COMPARE_FILLER):
        return None
    if parts.period is None and unit:
        parts.period = f"this_{unit}"
    return Command("period_comparison", _args(parts, by=False))


def _kind_is(name: str, unit: str, today: date) -> bool:
    if name.endswith(f"_{unit}"):
        return True
    return {"quarter": bool(re.fullmatch(r"\d{4}-Q\d", name)), "month": bool(re.fullmatch(r"\d{4}-\d\d", name)),
            "year": bool(re.fullmatch(r"\d{4}", name))}[unit]


# -- targets -----------------------------------------------------------------------------------------

_TARGET = rx(r"(?<![A-Za-z])(?:sales\s+)?(?:targets?|quotas?|goals?)(?![A-Za-z])|(?:业绩|销售)?(?:目标|指标)|任务额?")
_SET = rx(r"(?<![A-Za-z])(?:set|update|change|make|put|assign|give)(?![A-Za-z])"
          r"|设为|设置为?|设定为?|设成|定为|定成|调整为|调整到|改为|改成|制定|下达|定|设")
_TEAM = rx(r"(?<![A-Za-z])team(?![A-Za-z])|团队")
_HOLDER_NOISE = rx(r"(?:\s|[,;:#.=()]|'s(?![A-Za-z])|(?<![A-Za-z])(?:set|update|change|make|put|assign|give|the|a|"
                   r"target|targets|quota|quotas|goal|goals|sales|for|of|to|at|as|is|be|team|amount|new|in|on|with)"
                   r"(?![A-Za-z])|把|将|给|为|对|的|目标|指标|业绩|销售|任务额?|设为|设置为?|设定为?|设成|定为|定成|调整为|"
                   r"调整到|改为|改成|制定|下达|定|设|团队|是|金额|元)+", )


def set_target(u: Utterance, today: date) -> Command | None:
    if _refs(u.text) or not one_clause(u) or not _TARGET.search(u.text) or not _SET.search(u.text):
        return None
    parts = _Parts(u, today)
    parts.take_period()
    found = numbers.find_amount(parts.t.text)
    if found is None:
        return None
    amount, span = found
    parts.take(span)
    team = _TEAM.search(parts.t.text)
    holder = " ".join(_HOLDER_NOISE.sub(" ", parts.t.text).split())
    at = parts.t.text.find(holder) if holder else -1
    if at < 0 or len(holder) > 60 or re.search(r"[\d,;:]", holder):
        return None  # no name, or words of the command inside it: not one person or team
    name = u[at:at + len(holder)].value()
    args = {"team" if team else "person": name}
    if parts.period:
        args["period"] = parts.period
    args["amount"] = amount.value
    return Command("set_target", args)


# Specific to general: a target, a comparison, receivables, then the deal reports, the pipeline last.
RULES = (set_target, period_comparison, receivables_aging, collection_rate, reconciliation_report, gate_throughput,
         cycle_time_report, win_rate_report, funnel_report, stuck_deals, top_deals, forecast_report, pipeline_report)
