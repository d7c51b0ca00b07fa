"""Rules for quotes (报价) and the discount policy (折扣政策): quote lines such as "3 x Router-X, 10% off" /
"3台Router-X，九折", quote submission, sending the quote to the customer and the customer's acceptance, and
questions on who approves a discount."""
from __future__ import annotations

import re
from datetime import date

from bot.agent.offline import numbers
from bot.agent.offline.dates import find_date
from bot.agent.offline.rules_common import matches, one_clause, rx
from bot.agent.offline.text import OPP, QUOTE, Command, Utterance, opportunity, ref_spans, ref_value

_SUBMIT_QUOTE = (
    rf"(?:submit|send)\s+(?:the\s+)?(?:quote\s+)?(?P<q>{QUOTE})(?:\s+(?:for|to)\s+(?:approval|review))?",
    rf"(?:提交|送审|提交审批)\s*(?:报价单?)?\s*(?P<q>{QUOTE})\s*(?:审批|送审)?",
    rf"(?:报价单?\s*)?(?P<q>{QUOTE})\s*(?:提交|送审|提交审批)(?:审批)?",
)


# "send Q-7 to the customer" is the approved quote going out (send_quote), not a submission for approval.
_CUSTOMER = r"(?:the\s+)?(?:customer|client|buyer)"
_SEND_QUOTE = (
    rf"(?:send|issue|email|e-mail|deliver|give)\s+(?:the\s+)?(?:quote\s+)?(?P<q>{QUOTE})\s+to\s+{_CUSTOMER}",
    rf"(?:send|email|e-mail|give)\s+{_CUSTOMER}\s+(?:the\s+)?(?:quote\s+)?(?P<q>{QUOTE})",
    rf"(?:quote\s+)?(?P<q>{QUOTE})\s+(?:was\s+|is\s+|has\s+been\s+)?(?:sent|emailed|delivered|issued)"
    rf"\s+to\s+{_CUSTOMER}",
    rf"(?:把|将)?\s*(?:报价单?)?\s*(?P<q>{QUOTE})\s*(?:已经?|已)?\s*(?:发给|发送给|发至|寄给|交给|递交给|提交给)\s*(?:了)?\s*客户(?:了)?",
    rf"(?:发送|发出|发|寄)\s*(?:报价单?)?\s*(?P<q>{QUOTE})\s*(?:给|至)\s*客户",
    rf"(?:给|向)\s*客户\s*(?:发送|发出|发|寄)(?:了)?\s*(?:报价单?)?\s*(?P<q>{QUOTE})",
)


def send_quote(u: Utterance, today: date) -> Command | None:
    for m in matches(_SEND_QUOTE, u):
        return Command("send_quote", {"quote": ref_value("Q", m.group("q"))})
    return None


_ACCEPT_QUOTE = (
    rf"{_CUSTOMER}\s+(?:has\s+|have\s+)?(?:accepted|accepts|signed\s+off(?:\s+on)?|agreed\s+to|said\s+yes\s+to|took)"
    rf"\s+(?:the\s+)?(?:quote\s+)?(?P<q>{QUOTE})",
    rf"(?:quote\s+)?(?P<q>{QUOTE})\s+(?:was\s+|is\s+|has\s+been\s+)?accepted(?:\s+by\s+{_CUSTOMER})?",
    rf"(?:record|log|mark)\s+(?:the\s+)?(?:customer(?:'s)?\s+|client(?:'s)?\s+)?acceptance\s+(?:of|on|for)\s+"
    rf"(?:the\s+)?(?:quote\s+)?(?P<q>{QUOTE})",
    rf"mark\s+(?:the\s+)?(?:quote\s+)?(?P<q>{QUOTE})\s+(?:as\s+)?accepted",
    rf"客户\s*(?:已经?|已)?\s*(?:接受|认可|同意|确认接受)(?:了)?\s*(?:报价单?)?\s*(?P<q>{QUOTE})",
    rf"(?:报价单?)?\s*(?P<q>{QUOTE})\s*(?:客户)?\s*(?:已经?|已)?\s*(?:接受|认可|确认接受)(?:了)?",
    rf"(?:登记|记录)\s*(?:客户)?\s*(?:接受|确认接受)\s*(?:了)?\s*(?:报价单?)?\s*(?P<q>{QUOTE})",
)


def record_quote_acceptance(u: Utterance, today: date) -> Command | None:
    for m in matches(_ACCEPT_QUOTE, u):
        return Command("record_quote_acceptance", {"quote": ref_value("Q", m.group("q"))})
    return None


def submit_quote(u: Utterance, today: date) -> Command | None:
    for m in matches(_SUBMIT_QUOTE, u):
        return Command("submit_quote", {"quote": ref_value("Q", m.group("q"))})
    return None


_POLICY = rx(r"(?<![A-Za-z])discount\s+(?:policy|policies|rules?|authority|matrix|limits?|levels?|approvals?|"
             r"approval\s+(?:rules?|chain|matrix))(?![A-Za-z])|折扣(?:政策|权限|规则|审批规则|审批流程|审批权限|标准|制度)|价格政策")
_ASK = (
    r"(?:can|may|could)\s+(?:i|we)\s+(?:give|offer|grant|do|approve)\s+(?P<q>.+)",
    r"who\s+(?:can\s+|must\s+|should\s+)?(?:approves?|signs?\s+off(?:\s+on)?|needs?\s+to\s+approve)\s+(?P<q>.+)",
    r"(?P<q>.+?)\s+(?:discount\s+)?(?:-\s+)?who\s+(?:approves?|signs?\s+off)",
    r"(?:how\s+much|what|max(?:imum)?)\s+discount\s+can\s+(?:i|we)\s+(?:give|offer)(?P<q>.*)",
    r"(?P<q>.*?)(?:要|需要|找|归|由)?\s*谁\s*(?:来)?(?:批|审批|审核|批准)(?P<q2>.*)",
    r"(?:可以|能|能不能|可不可以)\s*(?:给|打|申请)\s*(?P<q>.+)",
    r"(?:最多|最大)\s*(?:能|可以)\s*(?:给|打)\s*(?:多少|几)\s*(?:折扣|折)(?P<q>.*)",
)


def explain_discount_policy(u: Utterance, today: date) -> Command | None:
    if not one_clause(u):
        return None
    t = u.mask(*ref_spans(u.text))
    asked = _POLICY.search(t.text) or next(
        (m for m in matches(_ASK, t) if numbers.find_discount(t.text) or re.search(r"折扣|几折|多少折|discount", t.text, re.I)),
        None)
    if asked is None:
        return None
    args: dict = {}
    pct = numbers.find_discount(t.text)
    if pct:
        args["discount_pct"] = pct[0]
        t = t.mask(pct[1])
    found = numbers.find_amount(t.text)
    if found:
        args["amount"] = found[0].value
    return Command("explain_discount_policy", args)


_QUOTE_CMD = (
    rf"(?:(?:create|make|draft|new|generate|prepare|build)\s+(?:an?\s+)?)?quote\s+(?:for\s+|on\s+)?(?P<opp>{OPP})"
    r"\s*(?:[:,-]|\s+with\s+|\s)\s*(?P<lines>.+)",
    r"(?:(?:create|make|draft|new|generate|prepare|build)\s+(?:an?\s+)?)?quote\s+(?:for|on)\s+(?P<opp>[^:]+?)\s*:\s*(?P<lines>.+)",
    rf"(?:给|为|帮)?\s*(?P<opp>{OPP})\s*(?:生成|创建|做|出|制作|新建)?\s*(?:一份|一个|个)?\s*报价(?:单)?\s*(?:[:,]|\s)?\s*(?P<lines>.+)",
    r"(?:给|为)\s*(?P<opp>[^:,]+?)\s*(?:生成|创建|做|出|制作|新建)?\s*(?:一份|一个|个)?\s*报价(?:单)?\s*:\s*(?P<lines>.+)",
    rf"(?:生成|创建|做|出|制作|新建)?\s*报价(?:单)?\s*(?:for|给|为)?\s*(?P<opp>{OPP})\s*[:,]?\s*(?P<lines>.+)",
)
_VALID = rx(r"(?<![A-Za-z])valid\s+(?:until|till|through|to|thru)(?![A-Za-z])|有效期(?:至|到|截至|截止)?|有效至|有效到")
_LINE_SPLIT = re.compile(r"[,;\n]|(?<![A-Za-z])(?:and|plus)(?![A-Za-z])|以及|和|及|另加|再加|\+", re.I)
_UNIT = (r"(?:pcs|pieces?|units?|sets?|nos?|licen[cs]es?|seats?|users?|man[- ]days?|days?|hours?|years?)(?![A-Za-z])"
         r"|人天|人日|人月|台|个|套|件|只|块|部|份|条|项|组|支|把|张|片|年|点位|用户|小时|天")
_Q = r"(?P<q>\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+)"
_P = r"(?P<p>[A-Za-z\u4e00-\u9fff][\w\-./+\u4e00-\u9fff ]*?)"
_ITEM = (
    rf"{_Q}\s*(?:x|\*)\s*{_P}",  # 3 x Router-X / 3x Router-X
    rf"{_Q}\s*(?:{_UNIT})\s*(?:of\s+)?{_P}",
    rf"{_Q}\s+{_P}",
    rf"{_P}(?:\s+x|\s*\*)\s*{_Q}(?:\s*(?:{_UNIT}))?",  # Router-X x 3 (the x stands apart: 'Router-X 3 个')
    rf"{_P}\s*{_Q}\s*(?:{_UNIT})",
    rf"{_P}\s*(?:数量|qty|quantity)\s*[:=]?\s*{_Q}(?:\s*(?:{_UNIT}))?",
)
_SKU = re.compile(r"[A-Za-z][\w./+]*(?:[-_][\w./+]+)+|[A-Za-z]+\d[\w\-./+]*")
_LINE_FILLER = re.compile(r"^(?:\s|with|at|each|for|打|统一|整体|全部|总价|总体|all|overall|across\s+the\s+board|on\s+all|"
                          r"lines?|items?|每个|所有|均|都|,)*$", re.I)
_EDGE = re.compile(r"^(?:\s*(?:with|at|of|plus|and|另加|再加|加)\s+)+|(?:\s+(?:at|with|each))+\s*$", re.I)


def _item(seg: Utterance) -> dict | None:
    text = _EDGE.sub(lambda m: " " * len(m.group()), seg.text)
    seg = Utterance(text, seg.raw).strip(" ,")
    for m in matches(_ITEM, seg):
        qty = m.group("q")
        n = qty if qty[0].isdigit() else str(numbers.cn_int(qty) or "")
        product = seg.part(m, "p").value()
        if n and product and n != "0":
            return {"product": product, "quantity": n}
    if _SKU.fullmatch(seg.text):
        return {"product": seg.value(), "quantity": "1"}
    return None


def quote_lines(part: Utterance, today: date) -> tuple[list[dict], str | None] | None:
    """'3 x Router-X, 5 x AP-Mini 15% off' → lines (a discount standing alone or closing the list applies to
    every line without its own), and the 'valid until' date if given."""
    valid_until = None
    v = _VALID.search(part.text)
    if v:
        day = find_date(part.text[v.end():], today)
        if day is None:
            return None
        valid_until = day[0]
        part = _cut(part, v.start(), v.end() + day[1][1])
    segments, start = [], 0
    for m in _LINE_SPLIT.finditer(part.text):
        segments.append(part[start:m.start()])
        start = m.end()
    segments.append(part[start:])
    lines: list[dict] = []
    overall: str | None = None
    trailing: str | None = None
    for seg in (s for s in segments if s.strip().text):
        found = numbers.find_discount(seg.text)
        rest = _cut(seg, *found[1]) if found else seg
        item = _item(rest)
        if item is None:
            if found and _LINE_FILLER.match(rest.text):
                overall = found[0]
                continue
            return None
        if found:
            item["discount_pct"] = found[0]
            trailing = found[0] if not seg.text[found[1][1]:].strip(" ,.") else None
        else:
            trailing = None
        lines.append(item)
    if not lines:
        return None
    if overall is None and len(lines) > 1 and trailing is not None \
            and all("discount_pct" not in line for line in lines[:-1]):
        overall = trailing  # "2 x A, 5 x B 15% off": the closing discount is for the whole quote
    if overall is not None:
        for line in lines:
            line.setdefault("discount_pct", overall)
    return lines, valid_until


def _cut(u: Utterance, a: int, b: int) -> Utterance:
    return Utterance(u.text[:a] + " " + u.text[b:], u.raw[:a] + " " + u.raw[b:], u.question)


def generate_quote(u: Utterance, today: date) -> Command | None:
    for m in matches(_QUOTE_CMD, u):
        opp = opportunity(u.part(m, "opp"))
        parsed = quote_lines(u.part(m, "lines"), today)
        if not opp or parsed is None:
            continue
        args: dict = {"opportunity": opp, "lines": parsed[0]}
        if parsed[1]:
            args["valid_until"] = parsed[1]
        return Command("generate_quote", args)
    return None


RULES = (send_quote, record_quote_acceptance, submit_quote, explain_discount_policy, generate_quote)
