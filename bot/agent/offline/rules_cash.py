"""Rules for the money side: approvals, payments, invoices, orders and delivery milestones, contracts and
overdue collections (English / 中文)."""
from __future__ import annotations

import re
from datetime import date

from bot.agent.offline import numbers, vocab
from bot.agent.offline.dates import find_date
from bot.agent.offline.rules_common import matches, one_clause, rx, trailing_text
from bot.agent.offline.text import (APR, CT, INV, OPP, PAY, Command, Utterance, any_ref_value, find_ref,
                                    opportunity, ref_spans, ref_value)

# -- approvals -------------------------------------------------------------------------------------

_VERDICT = (("reject", r"reject(?:ed)?|decline[d]?|deny|denied|refuse[d]?|驳回|拒绝|否决|不同意|不批准|不批|退回|打回"),
            ("approve", r"approve[d]?|accept(?:ed)?|ok|okay|lgtm|批准|同意|审批通过|通过|核准|准了|批了|批"))
_V = vocab.alt(_VERDICT)
_DECIDE = (
    rf"(?P<verb>{_V})\s*(?:the\s+)?(?:approval\s+|审批\s*|申请\s*)?(?P<apr>{APR})(?P<rest>.*)",
    rf"(?P<apr>{APR})\s*[:,]?\s*(?:is\s+)?(?P<verb>{_V})(?P<rest>.*)",
)


def decide_approval(u: Utterance, today: date) -> Command | None:
    for m in matches(_DECIDE, u):
        args = {"approval": ref_value("APR", m.group("apr")), "decision": vocab.lookup(_VERDICT, m.group("verb"))}
        comment = trailing_text(u.part(m, "rest"))
        if comment:
            args["comment"] = comment
        return Command("decide_approval", args)
    return None


_MY_APPROVALS = (
    r"(?:(?:show|list|view|see|get|check)\s+(?:me\s+)?)?(?:my\s+|the\s+)?(?:pending\s+|open\s+|outstanding\s+)?approvals?"
    r"(?:\s+(?:pending|waiting|queue|inbox|for\s+me|to\s+do|todo|list))?",
    r"(?:approvals?\s+)?(?:pending|waiting)\s+(?:for\s+)?(?:me|my\s+approval)",
    r"(?:what|anything|which)(?:\s+\S+)*?\s+(?:to\s+approve|my\s+approval)",
    r"(?:查看|看看|看下|列出|显示)?\s*(?:我的)?\s*(?:待(?:我)?|需要我|要我|等我)?\s*(?:审批|审核)(?:的)?\s*"
    r"(?:事项|单据?|列表|清单|任务|请求|申请)?",
    r"(?:有)?(?:哪些|什么)\s*(?:需要|要|等|待)?\s*我\s*(?:来)?(?:审批|审核|批)(?:的)?",
    r"待我(?:审批|审核|批)(?:的)?",
)


def list_my_approvals(u: Utterance, today: date) -> Command | None:
    return Command("list_my_approvals", {}) if next(matches(_MY_APPROVALS, u), None) else None


# -- payments --------------------------------------------------------------------------------------

_CONFIRM_PAYMENT = (
    rf"(?:confirm|verify|确认|核对)\s*(?:the\s+)?(?:payment|receipt|回款|收款|到账|付款|款项)?\s*(?P<pay>{PAY})",
    rf"(?:payment\s+|回款\s*)?(?P<pay>{PAY})\s*(?:is\s+)?(?:confirm(?:ed)?|verified|已确认|确认(?:回款|收款|到账)?)",
)


def confirm_payment(u: Utterance, today: date) -> Command | None:
    for m in matches(_CONFIRM_PAYMENT, u):
        return Command("confirm_payment", {"payment": ref_value("PAY", m.group("pay"))})
    return None


_PAY_WORDS = rx(r"(?<![A-Za-z])(?:payments?|paid|pays|received|receipt|remittance)(?![A-Za-z])"
                r"|收到|回款|到账|收款|来款|汇款|付款|打款")
_BANK_REF = rx(r"(?:(?<![A-Za-z])(?:bank\s*ref(?:erence)?|ref(?:erence)?|txn|transaction(?:\s+id)?|utr)(?![A-Za-z])"
               r"|银行流水号?|流水号?|交易号|凭证号?|回单号?)\s*(?:no\.?|number|#|:)?\s*(?P<ref>[A-Za-z0-9][A-Za-z0-9\-_/]*)")
_PAYER = (rx(r"(?<![A-Za-z])from\s+(?P<acc>[^,;:#\d]+?)(?=\s*(?:[,;:]|$|\s(?:for|ref|bank|on|by|via|amount|of|with|"
             r"received|paid|in|against)(?![A-Za-z])))"),
          rx(r"收到\s*(?P<acc>[^,;:\s#\d]+?)\s*(?:的)?\s*(?:回款|付款|货款|款项|来款|汇款|打款|转账|付的)"),
          rx(r"^(?!登记|记录|录入|新增|添加|收到|确认)(?P<acc>[^,;:\s#\d]+?)\s*(?:的)?\s*(?:回款|付款|到账|来款|打款)"))


def record_payment(u: Utterance, today: date) -> Command | None:
    bank = _BANK_REF.search(u.text)
    if not _PAY_WORDS.search(u.text) or bank is None or not one_clause(u):
        return None
    t = u.mask(bank.span(), *ref_spans(u.text))
    args: dict[str, str] = {}
    contract = find_ref("CT", u.text)
    day = find_date(t.text, today)
    if day:
        t = t.mask(day[1])
    method = vocab.find(vocab.METHODS, t.text)
    if method:
        t = t.mask(method[1])
    found = numbers.find_amount(t.text)
    if found is None:
        return None
    amount, span = found
    t = t.mask(span)
    args["amount"] = amount.value
    if amount.currency:
        args["currency"] = amount.currency
    args["bank_ref"] = bank.group("ref").upper()
    if contract:
        args["contract"] = contract[0]
    for payer in _PAYER:
        m = payer.search(t.text)
        if m and t.part(m, "acc").value():
            args["account"] = t.part(m, "acc").value()
            break
    if day:
        args["received_on"] = day[0]
    if method:
        args["method"] = method[0]
    return Command("record_payment", args)


_OVERDUE = rx(r"(?<![A-Za-z])(?:overdue|past[- ]due|late\s+payments?|late\s+invoices?|arrears)(?![A-Za-z])"
              r"|逾期|超期|拖欠|欠款")
_DAYS = rx(r"(?:(?<![A-Za-z])(?:over|more\s+than|above|at\s+least|older\s+than|by\s+more\s+than|by|for)(?![A-Za-z])"
           r"|超过|大于|多于|超|满|>=?)\s*(?P<n>\d+|[一二两三四五六七八九十百]+)\s*\+?\s*(?:days?|天)"
           r"(?:\s+or\s+more|\s*以上|\s*及以上)?"
           r"|(?P<n2>\d+|[一二两三四五六七八九十百]+)\s*\+?\s*(?:days?|天)\s*(?:\+|or\s+more|以上|及以上|以外)?")
_MINE = rx(r"(?<![A-Za-z])my(?![A-Za-z])|我的|我名下的?")
_OWNER = (rx(r"(?<![A-Za-z])(?:of|for|owned\s+by)\s+(?P<o>[A-Za-z][A-Za-z .'-]*?)\s*$"),
          rx(r"^(?:show\s+|list\s+)?(?P<o>[A-Za-z][A-Za-z .-]*?)'s\s"),
          rx(r"^(?:查看|看看|列出|显示)?\s*(?P<o>[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z ]{0,20}?)\s*(?:名下)?\s*的\s*(?=逾期|超期|拖欠|欠款)"))
_OVERDUE_FILLER = rx(
    r"(?:\s|[,;:#.']|(?:show|list|view|see|get|me|all|the|for|of|owned|by|s|invoices?|payments?|receivables?|accounts?|collections?|bills|money|"
    r"debts?|amounts?|customers?|clients?|which|what|who|are|is|there|any|that|items?|days?)(?![A-Za-z])"
    r"|查看|看看|看下|列出|显示|名下|有哪些|哪些|应收账款|应收|账款|款项|发票|未回款|回款|客户|的|情况|清单|列表|名单|已经?|了|未付|未收|有|天)*")


def list_overdue(u: Utterance, today: date) -> Command | None:
    hit = _OVERDUE.search(u.text)
    if hit is None or not one_clause(u):
        return None
    t = u.mask(hit.span())
    args: dict = {}
    days = _DAYS.search(t.text)
    if days:
        args_days = numbers.integer(days.group("n") or days.group("n2"))
        if not args_days:
            return None
        t = t.mask(days.span())
    mine = _MINE.search(u.text)
    if mine:
        args["owner"] = "me"
        t = t.mask(mine.span())
    else:
        for owner in _OWNER:  # found in the unmasked text, blanked out of the masked one
            m = owner.search(u.text)
            if m and m.group("o").strip().lower() not in ("me", "all", "the", "show", "list", "what", "who", "that", "it", "查看"):
                args["owner"] = u.part(m, "o").value()
                t = t.mask(m.span("o"))
                break
    if not _OVERDUE_FILLER.fullmatch(t.text):
        return None
    if days:
        args["min_days"] = args_days
    return Command("list_overdue", args)


_STATUS = (
    r"(?:payment|collection|paid)\s+status\s+(?:of|for|on)?\s*(?P<of>.+)",
    r"(?:show\s+)?(?:payments?|collections?)\s+(?:of|for|on|by|from)\s+(?P<of>.+)",
    r"(?P<of>.+?)\s+(?:payment|collection)\s+status",
    r"how\s+much\s+(?:has|did|have)\s+(?P<of>.+?)\s+(?:paid|pay)(?:\s+(?:so\s+far|yet|us))?",
    r"(?:has|did|have)\s+(?P<of>.+?)\s+(?:paid|pay)(?:\s+(?:yet|already|in\s+full|us))?",
    r"(?:what(?:'s|\s+is)\s+)?(?:outstanding|owed|unpaid|open\s+balance|balance)\s+(?:on|for|of|by|from)\s+(?P<of>.+)",
    r"how\s+much\s+(?:does|do)\s+(?P<of>.+?)\s+(?:still\s+)?owe(?:\s+us)?",
    r"(?:查看|查询|查|看看)?\s*(?P<of>.+?)\s*(?:的)?\s*(?:回款|收款|付款|到账|还款)\s*(?:情况|进度|状态|状况|明细|怎么样|如何|多少)",
    r"(?:回款|收款)\s*(?:情况|进度|状态)?\s*(?P<of>.+)",
    r"(?P<of>.+?)\s*(?:付了多少|回了多少|回款多少|还欠多少|欠多少|欠了多少|付清了没有?|付清了)(?:钱)?",
    r"(?:查看|查询|查|看看)\s*(?P<of>.+?)\s*(?:的)?\s*回款",
)


def payment_status(u: Utterance, today: date) -> Command | None:
    for m in matches(_STATUS, u):
        part = u.part(m, "of").strip()
        of = any_ref_value(part.text) or part.value()
        if not of or re.search(r"[:;]", part.text) or numbers.amount(part.text):
            continue
        if not any_ref_value(part.text) and re.search(rf"{CT}|{INV}|{OPP}", part.text, re.I):
            continue
        return Command("payment_status", {"of": of})
    return None


# -- invoices and promises -------------------------------------------------------------------------

_WHY_LOOSE = r"(?P<rest>(?:\s*[:;,]|\s+(?:because|reason|due\s+to)(?![A-Za-z])|\s*(?:原因|理由|因为|由于)|\s+).+)"
_VOID = (
    rf"(?:void|cancel|annul|作废|红冲|冲红|冲销|取消)\s*(?:the\s+)?(?:invoice|发票)?\s*(?P<inv>{INV}){_WHY_LOOSE}",
    rf"(?:invoice\s+|发票\s*)?(?P<inv>{INV})\s*(?:void|作废|红冲)(?:掉)?{_WHY_LOOSE}",
)


def void_invoice(u: Utterance, today: date) -> Command | None:
    for m in matches(_VOID, u):
        reason = trailing_text(u.part(m, "rest"))
        if reason:
            return Command("void_invoice", {"invoice": ref_value("INV", m.group("inv")), "reason": reason})
    return None


_PROMISE = rx(r"(?<![A-Za-z])(?:promise[sd]?|will\s+pay|commit(?:s|ted)?\s+to\s+pay|ptp)(?![A-Za-z])|承诺|保证|答应")
_NOTE = rx(r"(?<![A-Za-z])note(?![A-Za-z])|备注")


def record_promise(u: Utterance, today: date) -> Command | None:
    invoice = find_ref("INV", u.text)
    if invoice is None or not _PROMISE.search(u.text) or not one_clause(u):
        return None
    t = u.mask(*ref_spans(u.text))
    note = _NOTE.search(t.text)
    note_text = trailing_text(t[note.start():]) if note else ""
    if note:
        t = t[:note.start()]
    day = find_date(t.text, today)
    if day is None:
        return None
    found = numbers.find_amount(t.mask(day[1]).text)
    if found is None:
        return None
    args = {"invoice": invoice[0], "amount": found[0].value, "promised_on": day[0]}
    if note_text:
        args["note"] = note_text
    return Command("record_promise", args)


_CN = "[一二两三四五六七八九十]+"
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2, "3rd": 3}
_MILESTONE = rx(
    rf"(?<![A-Za-z])(?:milestone|instal(?:l)?ment)\s*(?:no\.?\s*|#\s*)?(?P<n1>\d+|{_CN})"
    r"|(?<![A-Za-z])(?P<n2>first|second|third|fourth|fifth|1st|2nd|3rd|\d+th)\s+(?:milestone|instal(?:l)?ment)"
    rf"|第\s*(?P<n3>\d+|{_CN})\s*(?:个|期|笔|次)?\s*(?:里程碑|期|阶段|笔|节点)?"
    rf"|里程碑\s*(?P<n4>\d+|{_CN})")
_INVOICE_WORD = rx(r"(?<![A-Za-z])(?:invoice|bill)(?![A-Za-z])|开具发票|开发票|开票|出票|开具")


def _milestone(text: str) -> tuple[int, tuple[int, int]] | None:
    m = _MILESTONE.search(text)
    if not m:
        return None
    raw = next(g for g in (m["n1"], m["n2"], m["n3"], m["n4"]) if g)
    n = _ORDINAL.get(raw.lower()) or numbers.integer(re.sub(r"th$", "", raw))
    return (n, m.span()) if n else None


def issue_invoice(u: Utterance, today: date) -> Command | None:
    contract = find_ref("CT", u.text)
    if contract is None or not _INVOICE_WORD.search(u.text) or not one_clause(u):
        return None
    t = u.mask(*ref_spans(u.text))
    milestone = _milestone(t.text)
    if milestone is None:
        return None
    args: dict = {"contract": contract[0], "milestone": milestone[0]}
    day = find_date(t.mask(milestone[1]).text, today)
    if day:
        args["issued_on"] = day[0]
    return Command("issue_invoice", args)


_ACCEPTED = rx(vocab.alt(vocab.MILESTONE_STATUS[:1]))
_DONE = rx(vocab.alt(vocab.MILESTONE_STATUS[1:]))
_CERT = rx(r"(?:(?<![A-Za-z])(?:acceptance\s+)?(?:certificate|cert|note|ref|form)(?![A-Za-z])|验收单号?|验收证书号?|验收报告号?"
           r"|证书号?|验收编号)\s*(?:no\.?|number|#|:)?\s*(?P<cert>[A-Za-z0-9][A-Za-z0-9\-_/]*\d[A-Za-z0-9\-_/]*)")


def update_delivery_milestone(u: Utterance, today: date) -> Command | None:
    contract = find_ref("CT", u.text)
    if contract is None or not one_clause(u):
        return None
    t = u.mask(*ref_spans(u.text))
    cert = _CERT.search(t.text)
    if cert:
        t = t.mask(cert.span())
    milestone = _milestone(t.text)
    if milestone is None:
        return None
    t = t.mask(milestone[1])
    status = "accepted" if _ACCEPTED.search(t.text) else "done" if _DONE.search(t.text) else None
    if status is None:
        return None
    args: dict = {"contract": contract[0], "milestone": milestone[0], "status": status}
    if cert:
        args["certificate_ref"] = cert.group("cert").upper()
    day = find_date(t.text, today)
    if day:
        args["on"] = day[0]
    return Command("update_delivery_milestone", args)


# -- orders ----------------------------------------------------------------------------------------

_ORDER_OF = rf"(?P<ct>{CT}|{OPP}|[^,:;]+?)"
_NEW_ORDER = (
    rf"(?:open|create|start|raise|place|set\s+up|new)\s+(?:an?\s+|the\s+)?(?:sales\s+|delivery\s+)?order\s+"
    rf"(?:for|on|of|from)\s+{_ORDER_OF}\s*(?::|,|\s+with(?:\s+milestones?)?\s*:?)\s*(?P<ms>.+)",
    rf"(?:sales\s+|delivery\s+)?order\s+for\s+{_ORDER_OF}\s*:\s*(?P<ms>.+)",
    rf"(?:为|给)\s*(?P<ct>{CT}|{OPP}|[^,:;\s]+?)\s*(?:创建|新建|开立|建立|下|开|生成)\s*(?:一个|一张|个|张)?\s*(?:销售|交付)?订单"
    r"\s*(?:[,:]|\s)?\s*(?:里程碑\s*:?)?\s*(?P<ms>.+)",
    rf"(?P<ct>{CT}|{OPP})\s*(?:创建|新建|开立|建立|下|开|生成)\s*(?:一个|一张|个|张)?\s*(?:销售|交付)?订单"
    r"\s*(?:[,:]|\s)?\s*(?:里程碑\s*:?)?\s*(?P<ms>.+)",
    rf"(?:创建|新建|开立|生成)\s*(?:销售|交付)?订单\s*(?:for|给|为)?\s*(?P<ct>{CT}|{OPP})\s*[:,]?\s*(?P<ms>.+)",
)
_ORDER_LINK = rx(r"(?:\s+(?:on|by|due|at|planned(?:\s+for)?)|\s*(?:于|在|计划于?))$")


def _order_milestones(part: Utterance, today: date) -> str | None:
    """'hardware on site 2026-12-10; final acceptance end of February' → the tool's shorthand with ISO dates
    ('hardware on site 2026-12-10; final acceptance 2027-02-28'); every piece needs a name and one date."""
    pieces = _pieces(part, ";")
    if len(pieces) == 1:
        pieces = _pieces(part, ",")
    out = []
    for piece in pieces:
        found = find_date(piece.text, today)
        if found is None or find_date(piece.mask(found[1]).text, today) is not None:
            return None
        iso, (a, b) = found
        name = " ".join(x for x in (piece[:a].value(), piece[b:].value()) if x)
        name = _ORDER_LINK.sub("", name).strip(" :：,，")
        if not name:
            return None
        out.append(f"{name} {iso}")
    return "; ".join(out) if out else None


def _pieces(part: Utterance, sep: str) -> list[Utterance]:
    out, start = [], 0
    for i, ch in enumerate(part.text):
        if ch == sep:
            out.append(part[start:i])
            start = i + 1
    out.append(part[start:])
    return [p for p in out if p.strip().text]


def create_order(u: Utterance, today: date) -> Command | None:
    for m in matches(_NEW_ORDER, u):
        ct = u.part(m, "ct")
        contract = ref_value("CT", ct.text) or opportunity(ct)
        milestones = _order_milestones(u.part(m, "ms"), today)
        if contract and milestones:
            return Command("create_order", {"contract": contract, "milestones": milestones})
    return None


# -- contracts -------------------------------------------------------------------------------------

_SUBMIT_CONTRACT = (
    rf"(?:submit|send)\s+(?:the\s+)?(?:contract\s+)?(?P<ct>{CT})(?:\s+(?:for|to)\s+(?:signature|signing|sign|review|"
    r"approval|legal))?",
    rf"(?:contract\s+)?(?P<ct>{CT})\s+(?:for\s+signature|to\s+sign|submit(?:ted)?|ready\s+to\s+sign)",
    rf"(?:提交|送签|发起签约|提交签约|提交审批|提交审核|送审)\s*(?:合同)?\s*(?P<ct>{CT})\s*(?:签约|审批|送签|签字|签署|审核)?",
    rf"(?:把|将)?\s*(?:合同)?\s*(?P<ct>{CT})\s*(?:提交|送签|发起签约|送审)\s*(?:签约|审批|签字|签署|审核)?",
)


def submit_contract(u: Utterance, today: date) -> Command | None:
    for m in matches(_SUBMIT_CONTRACT, u):
        return Command("submit_contract", {"contract": ref_value("CT", m.group("ct"))})
    return None


_NEW_CONTRACT = (
    rf"(?:(?:create|draft|make|prepare|generate|new|start|open|write)\s+(?:an?\s+|the\s+)?)?contract\s+(?:for|on|from)\s+"
    rf"(?P<opp>{OPP}|[^,:;]+?)(?P<rest>(?:\s*[,;:]|\s+(?:plan|payment|terms|net|with)(?![A-Za-z])).*)?",
    rf"(?:create|draft|make|prepare|generate|write)\s+(?:an?\s+|the\s+)?contract\s+(?P<opp>{OPP})(?P<rest>.*)",
    rf"(?:为|给)?\s*(?P<opp>{OPP}|[^,:;\s]+?)\s*(?:起草|生成|创建|拟定|新建|做|出)\s*(?:一份|份)?\s*合同(?P<rest>.*)",
    rf"(?:起草|生成|创建|拟定|新建)\s*合同\s*(?:for|给|为)?\s*(?P<opp>{OPP})(?P<rest>.*)",
)
_PLAN = rx(r"(?:payment\s+plan|plan|split|付款计划|付款比例|分期|比例)\s*[:=]?\s*(?P<plan>\d+(?:\s*/\s*\d+)+)")
_TERMS = rx(r"(?:(?<![A-Za-z])(?:payment\s+terms|terms|net)(?![A-Za-z])|账期|付款期限|付款账期|付款周期|付款期|回款期|信用期)\s*[:=]?\s*(?P<d>\d+)"
            r"\s*(?:days?|天)?|(?P<d2>\d+)\s*(?:days?|天)\s*(?:payment\s+terms|terms|账期)")


def create_contract(u: Utterance, today: date) -> Command | None:
    for m in matches(_NEW_CONTRACT, u):
        opp = opportunity(u.part(m, "opp"))
        if not opp:
            continue
        args: dict = {"opportunity": opp}
        rest = u.part(m, "rest").text
        plan = _PLAN.search(rest)
        if plan:
            shares = [int(x) for x in re.findall(r"\d+", plan.group("plan"))]
            if sum(shares) == 100 and all(shares):  # only a simple, complete split; else the default plan
                args["payment_plan"] = "/".join(map(str, shares))
        terms = _TERMS.search(rest)
        if terms:
            args["payment_terms_days"] = int(terms.group("d") or terms.group("d2"))
        return Command("create_contract", args)
    return None


RULES = (decide_approval, list_my_approvals, confirm_payment, void_invoice, record_promise, issue_invoice, create_order,
         update_delivery_milestone, submit_contract, record_payment, list_overdue, payment_status, create_contract)
