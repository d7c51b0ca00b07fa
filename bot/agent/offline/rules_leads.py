"""Rules for leads (线索), activities (跟进记录), the account 360 view and record search."""
from __future__ import annotations

import re
from datetime import date

from bot.agent.offline import fields as F
from bot.agent.offline import vocab
from bot.agent.offline.fields import Field
from bot.agent.offline.rules_common import matches, rx, trailing_text
from bot.agent.offline.text import ANY_REF, LEAD, Command, Utterance, name_or_ref, ref_value

_SOURCE_EN = "|".join(rx for _, rx in vocab.SOURCES)
_SOURCE_ZH = "展会|展览|会展|博览会|官网|网站|网页|转介绍|介绍|推荐|社交|微信|微博|广告|合作伙伴|渠道|代理商|经销商"

LEAD_FIELDS = (
    Field("source", rf"(?:from|via|through)(?=\s+(?:the\s+|an?\s+)?(?:{_SOURCE_EN})(?![A-Za-z]))|(?:lead\s+)?source",
          rf"来源|来自|通过(?={_SOURCE_ZH})", F.source),
    # a source said on its own between commas: "…, referral, …" / "…，客户转介绍，…"
    Field("source", rf"(?<=,)\s*(?:(?:from|via)\s+)?(?:an?\s+|the\s+)?(?:{_SOURCE_EN})(?=\s*(?:,|$))",
          rf"(?:老?客户|朋友|同事|伙伴)?转介绍(?:的)?|(?<=,)\s*(?:来自|通过)?(?:{_SOURCE_ZH})(?:来的)?(?=\s*(?:,|$))", F.source_flag),
    Field("contact_name", r"contact(?:\s+person|\s+name)?", r"联系人|对接人", F.contact),
    Field("title", r"title|job\s+title|position", r"职位|职务|头衔|岗位", F.text),
    Field("budget", r"budget", r"预算", F.money),
    Field("currency", r"currency", r"币种", F.currency),
    Field("need", r"needs?|requirements?|wants?|looking\s+for", r"需求|痛点", F.text),
    Field("email", r"e-?mail", r"邮箱|电子邮件|邮件", F.email),
    Field("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "", F.flag_text),
    Field("phone", r"phone|tel|mobile|cell", r"联系电话|电话|手机号?", F.phone),
    Field("region", r"region|territory", r"区域|地区|大区|片区", F.text),
    Field("timeline", r"timeline|timeframe|(?:within|in\s+the\s+next)\s+(?:\d+|a|one|three|six|twelve)\s+(?:months?|years?)"
                      r"|(?:over|more\s+than)\s+(?:a|one|1)\s+years?",
          r"采购时间|时间线|(?:\d+|[一二两三四五六七八九十]+)\s*个?\s*(?:月|年)\s*(?:内|以内|之内)|半年\s*(?:内|以内|之内)|一年以上|超过一年",
          F.timeline),
    Field("authority", r"authority|decision[- ]maker|influencer", r"决策角色|决策人|决策者|拍板人|影响者", F.authority),
    Field("notes", r"notes?|remarks?|comments?", r"备注", F.text, greedy=True),
)
UPDATE_LEAD_FIELDS = (Field("company", r"company(?:\s+name)?", r"公司名称|公司名|公司", F.text), *LEAD_FIELDS)


def _lead(part: Utterance) -> str | None:
    """A lead: 'LEAD-3' (canonical) or a company name, without the words 'lead' / '线索' / '的' around it."""
    m = rx(r"(?:(?:the\s+)?lead\s+|线索\s*)?(?P<v>.+?)\s*(?:'s|的|线索)?").fullmatch(part.strip().text)
    if not m:
        return None
    v = part.strip().part(m, "v")
    found = ref_value("LEAD", v.text)
    if found:
        return found
    if ANY_REF.search(v.text) or re.search(r"[:;]", v.text) or not v.value():
        return None
    return v.value()


# -- activities ------------------------------------------------------------------------------------

_KIND = vocab.alt(vocab.ACTIVITY_KINDS)
_ABOUT = r"(?P<about>[^:]+?)"
_ACTIVITY = (
    rf"(?:log|record|add|enter|note\s+down)\s+(?:an?\s+)?(?P<kind>{_KIND})\s+(?:with|to|for|on|about|from|at)?\s*{_ABOUT}"
    r"\s*(?::|\s-\s)\s*(?P<text>.+)",
    rf"(?:log|record|add)\s+(?:an?\s+)?(?P<kind>{_KIND})\s+(?:with|to|for|on|at)\s+{_ABOUT}\s+(?:about|re|regarding)\s+"
    r"(?P<text>.+)",
    rf"(?:add\s+(?:an?\s+)?)?(?P<kind>note)\s+(?:on|for|to|about)\s+{_ABOUT}\s*:\s*(?P<text>.+)",
    rf"(?P<kind>called|phoned|rang|met\s+with|met|visited|emailed)\s+{_ABOUT}\s*(?::|\s-\s|\s+about\s+)\s*(?P<text>.+)",
    rf"(?:记录|登记|添加|新增|记|写)(?:一下|一个|一次|一条|个|条)?\s*(?:了)?\s*(?:与|和|跟|给)?\s*(?P<kind>{_KIND})\s*(?:了)?"
    rf"\s*(?:与|和|跟|给)?\s*{_ABOUT}\s*:\s*(?P<text>.+)",
    rf"(?:记录|登记|添加)?\s*(?:与|和|跟)\s*{_ABOUT}\s*的\s*(?P<kind>{_KIND})\s*(?:记录)?\s*:\s*(?P<text>.+)",
    rf"(?P<kind>拜访|致电|约见|见了)(?:了)?\s*{_ABOUT}\s*:\s*(?P<text>.+)",
    rf"(?:给|跟|和)\s*{_ABOUT}\s*(?P<kind>打了?电话|发了?邮件|开了?会)\s*:\s*(?P<text>.+)",
    rf"(?:给)?\s*{_ABOUT}\s*(?:加|添加|记)?\s*(?P<kind>备注|跟进记录|笔记)\s*:\s*(?P<text>.+)",
    rf"(?:记录|备注)\s*{_ABOUT}\s*:\s*(?P<text>.+)",
)
SUBJECT_MAX = 80


def log_activity(u: Utterance, today: date) -> Command | None:
    for m in matches(_ACTIVITY, u):
        about = name_or_ref(u.part(m, "about"))
        text = u.part(m, "text").value()
        if not about or not text:
            continue
        kind_word = m.groupdict().get("kind")
        kind = vocab.lookup(vocab.ACTIVITY_KINDS, kind_word) if kind_word else "note"
        if kind is None and kind_word and "会" in kind_word:
            kind = "meeting"
        args = {"about": about, "kind": kind or "note", **_subject_body(text)}
        return Command("log_activity", args)
    return None


def _subject_body(text: str) -> dict[str, str]:
    """A short text is the subject; a long one keeps its first sentence as the subject and all of it as the body."""
    if len(text) <= SUBJECT_MAX:
        return {"subject": text}
    first = re.split(r"(?<=[.!?。！？；;\n])", text, maxsplit=1)[0].strip()
    if len(first) > SUBJECT_MAX:
        first = first[:SUBJECT_MAX - 1].rstrip() + "…"
    return {"subject": first, "body": text}


# -- leads -----------------------------------------------------------------------------------------

_NEW_LEAD = (
    r"(?:new|add|create|log|capture|register|enter)\s+(?:an?\s+)?(?:new\s+)?lead\s*[:,]?\s*(?P<body>.+)",
    r"(?:新线索|新的线索|新来线索|来了个线索|线索录入|(?:新建|新增|添加|创建|录入|登记)\s*(?:一条|一个|个|条)?\s*线索)"
    r"\s*[:,]?\s*(?P<body>.+)",
)


def create_lead(u: Utterance, today: date) -> Command | None:
    for m in matches(_NEW_LEAD, u):
        parsed = F.split(u.part(m, "body"), LEAD_FIELDS, today)
        if parsed is None:
            continue
        head, args = parsed
        company = head.value()
        if not company or "contact_name" not in args or ANY_REF.search(head.text):
            continue
        return Command("create_lead", {"company": company, **args})
    return None


_UPDATE_LEAD = (
    r"(?:update|edit|change|set|modify)\s+(?:the\s+)?lead\s+(?P<body>.+)",
    rf"(?:update|edit|change|set|modify|更新|修改|编辑|更改|调整)\s*(?P<body>{LEAD}.+)",
    r"lead\s+(?P<body>.+)",
    r"(?:更新|修改|编辑|更改|调整)\s*线索\s*(?P<body>.+)",
    r"(?:把|将)?\s*线索\s*(?P<body>.+)",
)


def update_lead(u: Utterance, today: date) -> Command | None:
    for m in matches(_UPDATE_LEAD, u):
        parsed = F.split(u.part(m, "body"), UPDATE_LEAD_FIELDS, today)
        if parsed is None or not parsed[1]:
            continue
        lead = _lead(parsed[0])
        if lead:
            return Command("update_lead", {"lead": lead, **parsed[1]})
    return None


_NOT = r"(?<![不未没非无])"
_QUALIFY = (
    r"qualify\s+(?:the\s+)?(?:lead\s+)?(?P<lead>.+)",
    r"(?:mark|set)\s+(?:the\s+)?(?:lead\s+)?(?P<lead>.+?)\s+(?:as\s+)?qualified",
    r"(?P<lead>lead\s+.+?)\s+(?:is\s+)?qualified",
    rf"(?:确认|标记)?\s*线索\s*(?P<lead>.+?)\s*(?:为|是|已经?)?\s*{_NOT}(?:合格|验证通过|有效|确认合格)",
    rf"(?P<lead>.+?)\s*(?:的)?\s*线索\s*(?:已经?)?\s*{_NOT}(?:合格|验证通过|有效)",
    rf"(?:把|将)\s*(?:线索)?\s*(?P<lead>.+?)\s*(?:标为|标记为|设为|确认为)\s*{_NOT}合格(?:线索)?",
    r"(?:合格|确认)\s*线索\s*(?P<lead>.+)",
)


def qualify_lead(u: Utterance, today: date) -> Command | None:
    for m in matches(_QUALIFY, u):
        lead = _lead(u.part(m, "lead"))
        if lead:
            return Command("qualify_lead", {"lead": lead})
    return None


_WHY = r"(?P<rest>(?:\s*[:;,]|\s+(?:because|reason|due\s+to|as|since)(?![A-Za-z])|\s*(?:原因|理由|因为|由于)).+)"
_DISQUALIFY = (
    rf"disqualify\s+(?:the\s+)?(?:lead\s+)?(?P<lead>.+?){_WHY}",
    rf"(?:mark\s+)?(?:the\s+)?(?P<lead>lead\s+.+?)\s+(?:as\s+)?(?:not\s+qualified|unqualified|disqualified){_WHY}",
    rf"线索\s*(?P<lead>.+?)\s*(?:为|是|已经?)?\s*(?:不合格|无效|取消资格|不符合条件){_WHY}",
    rf"(?P<lead>.+?)\s*(?:的)?\s*线索\s*(?:不合格|无效){_WHY}",
    rf"(?:取消|作废)\s*线索\s*(?P<lead>.+?)\s*(?:的)?\s*(?:资格)?{_WHY}",
    rf"(?:把|将)\s*(?:线索)?\s*(?P<lead>.+?)\s*(?:标为|标记为|设为)\s*不合格(?:线索)?{_WHY}",
)


def disqualify_lead(u: Utterance, today: date) -> Command | None:
    for m in matches(_DISQUALIFY, u):
        lead, reason = _lead(u.part(m, "lead")), trailing_text(u.part(m, "rest"))
        if lead and reason:
            return Command("disqualify_lead", {"lead": lead, "reason": reason})
    return None


CONVERT_FIELDS = (
    Field("opportunity_name", r"(?:to|into|as)\s+(?:an?\s+|new\s+)*(?:opportunity|deal|opp)(?:\s+(?:named|called))?"
                              r"|named|called|(?:opportunity|deal)\s+name",
          r"(?:转化|转换|转)\s*(?:为|成)?\s*商机\s*(?:名称|名为|叫)?|商机名称|名称", F.optional_text),
    Field("amount", r"amount|value|worth", r"金额|价值", F.money),
    Field("expected_close_date", r"(?:expected\s+)?clos(?:e|ing)(?:\s+date)?(?:\s+(?:by|on))?",
          r"预计签约(?:日期|时间)?|签约(?:日期|时间)|预计成交(?:日期|时间)?", F.day),
    Field("account", r"account|customer|under\s+account", r"客户|账户", F.text),
)
_CONVERT = (
    r"convert\s+(?:the\s+)?(?P<body>.+)",
    r"(?:转化|转换)\s*(?P<body>线索.+)",
    r"(?:把|将)?\s*(?P<body>.+?(?:转化|转换|转)\s*(?:为|成)?\s*商机.*)",
)


def convert_lead(u: Utterance, today: date) -> Command | None:
    for m in matches(_CONVERT, u):
        parsed = F.split(u.part(m, "body"), CONVERT_FIELDS, today)
        if parsed is None:
            continue
        lead = _lead(parsed[0])
        if lead:
            return Command("convert_lead", {"lead": lead, **parsed[1]})
    return None


# -- account 360 and search ------------------------------------------------------------------------

_ACCOUNT_360 = (
    r"(?:(?:show|open|view|see|get)\s+(?:me\s+)?)?(?:the\s+)?(?:account|customer|client)\s+"
    r"(?:360|overview|view|profile|summary|details)?\s*(?:(?:of|for|on)\s+)?(?P<acc>.+)",
    r"(?P<acc>.+?)\s+(?:account\s+)?(?:360|overview|profile)",
    r"(?:360|overview|profile)\s+(?:of|for|on)?\s*(?P<acc>.+)",
    r"(?P<acc>.+?)\s*(?:的)?\s*(?:客户\s*360|客户全景|全景视图|全景|客户概况|客户画像|客户视图|客户档案|客户详情|360)",
    r"(?:查看|看看|打开|显示)?\s*(?:客户\s*360|客户全景|客户概况|客户画像|客户视图|客户档案|客户详情)\s*(?P<acc>.+)",
    r"(?:查看|看看|打开|显示)\s*客户\s*(?P<acc>.+)",
    r"客户\s+(?P<acc>.+)",
)


def account_360(u: Utterance, today: date) -> Command | None:
    for m in matches(_ACCOUNT_360, u):
        part = u.part(m, "acc")
        account = ref_value("ACC", part.strip().text) or part.value()
        if account and not re.search(r"[:;]", part.text) and (ref_value("ACC", part.strip().text)
                                                                 or not ANY_REF.search(part.text)):
            return Command("account_360", {"account": account})
    return None


_KINDS = (("lead", r"leads?|线索"), ("account", r"accounts?|customers?|clients?|客户"),
          ("opportunity", r"deals?|opportunit(?:y|ies)|opps?|商机|机会点?"))
_SEARCH = (
    rf"(?:find|search(?:\s+for)?|look\s*up|lookup|look\s+for|where\s+is)\s+(?:(?:the|a|an)\s+)?"
    rf"(?:(?P<kind>{vocab.alt(_KINDS)})\s+(?:(?:named|called|for|with|of)\s+)?)?(?P<q>.+)",
    r"(?:查找|搜索|查询|搜一下|查一下|找一下|搜|找|查)\s*(?:(?P<kind>线索|客户|商机|机会点?)\s*)?(?P<q>.+)",
)


def search_records(u: Utterance, today: date) -> Command | None:
    for m in matches(_SEARCH, u):
        query = u.part(m, "q").value()
        if not query:
            continue
        args: dict = {"query": query}
        if m.group("kind"):
            args["kinds"] = [vocab.lookup(_KINDS, m.group("kind"))]
        return Command("search_records", args)
    return None


RULES = (log_activity, convert_lead, disqualify_lead, qualify_lead, create_lead, update_lead)
