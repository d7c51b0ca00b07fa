"""The words (English / 中文) that name the fixed values of the tools: sources, stages, gates, roles, …

Each table is (value, regex of its aliases). `find` returns the value of the earliest (then longest)
alias in a text; `alt` is the alternation to embed in a rule's pattern.
"""
from __future__ import annotations

import re

from bot.agent.offline.numbers import cn_int

Table = tuple[tuple[str, str], ...]

SOURCES: Table = (
    ("trade_show", r"trade\s*-?\s*shows?|tradeshows?|expos?|exhibitions?|fairs?|conferences?|展会|展览会?|会展|博览会"),
    ("website", r"web\s*-?\s*site|web\s*forms?|web|online|官网|官方网站|网站|网页|线上"),
    ("referral", r"referrals?|referred|recommendations?|word of mouth|转介绍|介绍|推荐|口碑"),
    ("social", r"social(?:\s+media)?|linkedin|wechat|weibo|twitter|facebook|社交(?:媒体)?|微信|微博|朋友圈|抖音"),
    ("ad", r"ads?|adverts?|advertising|advertisements?|campaigns?|广告|投放"),
    ("partner", r"partners?|channels?|resellers?|distributors?|合作伙伴|渠道|代理商|经销商|伙伴"),
    ("other", r"other|others|其他|其它"),
)
STAGES: Table = (
    ("qualify", r"qualify|qualification|qualifying|线索验证|验证"),
    ("initiated", r"initiated|initiation|initiate|project initiation|立项"),
    ("solution", r"solutions?|方案"),
    ("bid", r"bid|bidding|tender|投标"),
    ("negotiate", r"negotiate|negotiation|negotiating|商务谈判|谈判"),
    ("won", r"won|win|closed[- ]won|赢单|签约成功|成交|中标"),
)
DECISIONS: Table = (
    ("solution_review", r"solution\s+review|方案评审|方案审核|方案评审会"),
    ("ATI", r"ATI|立项决策|立项评审|立项"),
    ("ATB", r"ATB|投标决策|投标评审|投标"),
    ("ATC", r"ATC|签约决策|签约评审|签约"),
)
ACTIVITY_KINDS: Table = (
    ("call", r"phone\s+call|calls?|phone|rang|phoned|called|打了?电话|电话|通话|致电|来电"),
    ("meeting", r"meetings?|meet|met(?:\s+with)?|visits?|visited|拜访|会议|见面|会面|面谈|开会|上门|约见|见了"),
    ("email", r"e-?mails?|emailed|mails?|发了?邮件|邮件|电邮"),
    ("note", r"notes?|memo|备注|笔记|跟进记录"),
)
ROLES: Table = (
    ("ar", r"AR|account\s+responsible|account\s+manager|客户经理|客户负责人"),
    ("sr", r"SR|solution\s+responsible|solutions?\s+manager|solutions?\s+lead|解决方案经理|方案经理|方案负责人"),
    ("fr", r"FR|fulfil?l?ment\s+responsible|fulfil?l?ment\s+manager|delivery\s+manager|交付经理|履行经理|交付负责人"),
)
MILESTONE_STATUS: Table = (
    ("accepted", r"accepted|signed[- ]off|sign[- ]off|acceptance\s+passed|验收通过|通过验收|已验收|验收完成|完成验收|验收合格"),
    ("done", r"done|completed?|delivered|finished|已完成|完成|已交付|交付完成|交付"),
)
METHODS: Table = (
    ("acceptance_bill", r"(?:bank\s+)?acceptance\s+bill|bill\s+of\s+acceptance|承兑汇票|承兑|银票|商票"),
    ("bank_transfer", r"bank\s+transfer|wire(?:\s+transfer)?|transfer|TT|电汇|银行转账|转账|汇款"),
    ("check", r"cheque|check|支票"),
    ("card", r"(?:credit\s+)?card|刷卡|信用卡|银行卡"),
    ("cash", r"cash|现金"),
)
AUTHORITY: Table = (
    ("decision_maker", r"decision[- ]maker|final\s+say|决策人|决策者|拍板人?|老板"),
    ("influencer", r"influencer|影响者|影响人"),
    ("user", r"end[- ]user|user|使用者|最终用户|用户"),
)
CURRENCIES: Table = (
    ("CNY", r"CNY|RMB|人民币"),
    ("USD", r"USD|美元|美金"),
    ("EUR", r"EUR|欧元"),
    ("HKD", r"HKD|港币"),
    ("GBP", r"GBP|英镑"),
    ("JPY", r"JPY|日元"),
)


def _wrap(rx: str) -> str:
    """Latin aliases must stand alone (no 'bid' inside 'forbidden'); Chinese ones need no boundary."""
    return rf"(?:(?<![A-Za-z])(?:{rx})(?![A-Za-z]))"


def alt(table: Table) -> str:
    return "|".join(_wrap(rx) for _, rx in table)


_COMPILED: dict[int, list[tuple[str, re.Pattern]]] = {}


def _compiled(table: Table) -> list[tuple[str, re.Pattern]]:
    key = id(table)
    if key not in _COMPILED:
        _COMPILED[key] = [(value, re.compile(_wrap(rx), re.I)) for value, rx in table]
    return _COMPILED[key]


def find(table: Table, text: str) -> tuple[str, tuple[int, int]] | None:
    """(value, span) of the earliest alias in the text (the longest at the same place)."""
    best: tuple[int, int, str] | None = None
    for value, rx in _compiled(table):
        for m in rx.finditer(text or ""):
            if best is None or m.start() < best[0] or (m.start() == best[0] and m.end() > best[1]):
                best = (m.start(), m.end(), value)
            break
    return (best[2], (best[0], best[1])) if best else None


def lookup(table: Table, text: str) -> str | None:
    """The value the whole text names ('trade show' → 'trade_show', '投标' → 'bid'), else None."""
    for value, rx in _compiled(table):
        if rx.fullmatch((text or "").strip()):
            return value
    return None


_TIMELINE = re.compile(
    r"(?:within|in|next|in\s+the\s+next)\s+(?P<n>\d+|a|one|six|three|twelve)\s+(?P<u>months?|years?)"
    r"|(?P<over>over|more\s+than|after)\s+(?:a|one|1|12\s+months?)\s*(?:years?)?"
    r"|(?P<zn>\d+|[一二两三四五六七八九十]+)\s*个?\s*(?P<zu>月|年)\s*(?:内|以内|之内)"
    r"|(?P<half>半年)\s*(?:内|以内|之内)|(?P<zover>一年以上|明年以后|超过一年|一年后)",
    re.I)
_EN_N = {"a": 1, "one": 1, "three": 3, "six": 6, "twelve": 12}


def timeline(text: str) -> tuple[str, tuple[int, int]] | None:
    """('within_3_months' | 'within_6_months' | 'within_12_months' | 'over_12_months', span) or None."""
    m = _TIMELINE.search(text or "")
    if not m:
        return None
    if m["over"] or m["zover"]:
        return "over_12_months", m.span()
    if m["half"]:
        months = 6
    elif m["n"]:
        n = int(m["n"]) if m["n"].isdigit() else _EN_N[m["n"].lower()]
        months = n * (12 if m["u"].lower().startswith("y") else 1)
    else:
        n = int(m["zn"]) if m["zn"].isdigit() else (cn_int(m["zn"]) or 0)
        months = n * (12 if m["zu"] == "年" else 1)
    if months <= 0:
        return None
    value = ("within_3_months" if months <= 3 else "within_6_months" if months <= 6
             else "within_12_months" if months <= 12 else "over_12_months")
    return value, m.span()
