"""The command language (English / 中文) → one tool call. Documented in README ("Command language / 命令语言").

`parse` normalises the text (full-width punctuation, spaces, "please" / "请" / "帮我", a trailing "?")
and tries the rules from the most specific to the most general; the first that fits gives the call.
Anything that fits no rule is None: the model then answers with help, never with a guess.
"""
from __future__ import annotations

import re
from datetime import date

from bot.agent.offline import rules_analytics, rules_cash, rules_deals, rules_leads, rules_quotes
from bot.agent.offline.rules_common import Rule, first_of, matches, rx
from bot.agent.offline.text import Command, Utterance, utterance
from prompts.messages import render

__all__ = ["Command", "detect_locale", "has_chinese", "help_text", "parse"]

_CJK = re.compile(r"[\u4e00-\u9fff]")


_WORD = re.compile(r"[A-Za-z][A-Za-z']*|[\u4e00-\u9fff]+")
_NOT_LANGUAGE = {"opp", "lead", "acc", "apr", "q", "ct", "inv", "pay", "so", "co", "atc", "atb", "ati", "ar", "sr", "fr",
                 "x", "k", "m", "w"}  # references, gate and role codes, amount suffixes: no language of their own


def detect_locale(text: str, default: str = "en") -> str:
    """The language the user wrote in. A message opening in Chinese is Chinese; one without any Han
    character is English; one opening in Latin letters with Chinese inside ("Acme 的回款情况", or
    "new lead 青岛海湾化工, contact 于洋") is either, so the user's own language (`default`) decides."""
    for word in _WORD.findall(text or ""):
        if _CJK.match(word):
            return "zh"
        if word.lower() not in _NOT_LANGUAGE:
            return default if has_chinese(text) else "en"
    return default


def has_chinese(text: str) -> bool:
    return bool(_CJK.search(text or ""))


# -- questions for the playbooks (the last rule: only what no command took) -----------------------

_TOPIC = rx(r"(?<![A-Za-z])(?:ATI|ATB|ATC|leads?|deals?|opportunit\w*|quotes?|quoting|discounts?|contracts?|invoic\w*|"
            r"payments?|collect\w*|overdue|bid\w*|tender\w*|solution\w*|iron\s+triangle|AR|SR|FR|customers?|accounts?|"
            r"pric\w+|margins?|deliver\w*|acceptance|milestones?|negotiat\w*|qualif\w*|BANT|approv\w*|sign\w*|"
            r"decision\s+makers?|stakeholders?|competitors?|renewals?|upsell\w*|pipeline|forecast\w*)(?![A-Za-z])"
            r"|线索|商机|机会点|立项|投标|签约|报价|折扣|合同|回款|发票|逾期|交付|验收|铁三角|客户|方案|谈判|决策|审批|毛利|价格|催收|收款|竞争|竞品|关键人")
_QUESTION = (
    r"(?:how|why|when|where|which|what\s+should|what\s+do|what\s+does|what\s+are\s+the|what\s+is\s+the\s+best|"
    r"what's\s+the\s+best|any\s+tips|tips|best\s+practices?|explain|what\s+is|what's|what\s+are|tell\s+me\s+about)"
    r"(?![A-Za-z]).+",
    r"(?:怎么|怎样|如何|为什么|为啥|什么时候|何时|哪些|有什么|该怎么|应该|需要注意|请问|什么是).+",
    r".+(?:是什么|是啥|怎么做|怎么办|怎么准备|如何准备|有哪些|要注意什么|注意事项)",
)
_PLAYBOOK = (
    r"(?:playbooks?|guide|guidance|best\s+practices?)\s+(?:for|on|about)?\s*(?P<q>.+)",
    r"(?:打法|指南|最佳实践|攻略|作战手册)\s*[:]?\s*(?P<q>.+)",
)


def search_playbooks(u: Utterance, today: date) -> Command | None:
    for m in matches(_PLAYBOOK, u):
        query = u.part(m, "q").value()
        if query:
            return Command("search_playbooks", {"query": query})
    if next(matches(_QUESTION, u), None) and _TOPIC.search(u.text):
        return Command("search_playbooks", {"query": u.value() + u.ending})
    return None


# Specific to general: commands on a reference (APR-3, CT-…, OPP-12) first, then leads and activities, then
# the open-ended lists, views and searches, and questions for the playbooks last.
RULES: tuple[Rule, ...] = (*rules_analytics.RULES, *rules_cash.RULES, *rules_quotes.RULES, *rules_deals.RULES,
                           *rules_leads.RULES, rules_deals.list_deals, rules_leads.account_360,
                           rules_leads.search_records,
                           search_playbooks)

_HELP = rx(r"(?:help|usage|commands?|menu|h|/help|帮助|使用说明|用法|命令|命令列表|怎么用|能做什么|你能做什么|"
           r"what\s+can\s+you\s+do|what\s+can\s+i\s+(?:say|do))(?:(?:\s*:\s*|\s+|(?<=[\u4e00-\u9fff]))(?P<topic>.+))?")


def parse(text: str, *, today: date) -> Command | None:
    """The tool call a command means, or None when it is not in the command language."""
    u = utterance(text)
    if not u.text or _help_topic(u.text) is not None:
        return None
    return first_of(RULES, u, today)


def _help_topic(text: str) -> str | None:
    """'' for "help" / "帮助", the family for "help quotes" / "帮助 报价", None when the text is no request for help
    ("help me find Acme" is a search, not a request for the manual)."""
    m = _HELP.fullmatch(text)
    if m is None:
        return None
    if not m.group("topic"):
        return ""
    topic = re.sub(r"^(?:on|for|about|with)\s+", "", m.group("topic").strip(), flags=re.I)
    return next((name for name, en, zh in FAMILIES if re.fullmatch(rf"(?:{en})|(?:{zh})", topic, re.I)), None)


# -- help ------------------------------------------------------------------------------------------

# (family, English words, Chinese words): the first family whose words a text holds gets its usage as the hint.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("reports", r"forecast\w*|win\s+rate|funnel|aging|ageing|DSO|targets?|quotas?|stuck|reconciliation|"
                r"sales\s+cycle|reports?", "预测|赢单率|漏斗|账龄|目标|停滞|环比|同比|回款率|对账|销售周期|报表"),
    ("approvals", r"approv\w*|reject\w*|APR", "审批|批准|驳回"),
    ("payments", r"payments?|paid|PAY|bank\s*ref", "回款|收款|到账|流水"),
    ("collections", r"overdue|promise\w*", "逾期|承诺|催收"),
    ("invoices", r"invoic\w*|INV|void", "发票|开票|作废"),
    ("delivery", r"milestones?|deliver\w*|accept\w*|certificate", "里程碑|交付|验收"),
    ("contracts", r"contracts?|CT|signature", "合同|签约"),
    ("quotes", r"quot\w*|discount\w*|Q", "报价|折扣|几折"),
    ("decisions", r"ATI|ATB|ATC|decision|review|gate", "决策|评审|立项"),
    ("team", r"team|AR|SR|FR|iron\s+triangle|solution|delivery\s+plan|deliverability", "铁三角|客户经理|方案经理|交付经理|方案|交付计划|可交付性"),
    ("stages", r"stage|move|advance|lost|abandon\w*|won", "阶段|推进|丢单|放弃|赢单"),
    ("deals", r"deals?|opportunit\w*|OPP|pipeline|next\s+steps?", "商机|机会点|下一步"),
    ("leads", r"leads?|LEAD|qualif\w*|convert\w*", "线索|合格"),
    ("activities", r"log|call|meeting|visit|email|note", "记录|拜访|电话|会议|邮件|备注"),
    ("accounts", r"accounts?|customers?|360|find|search", "客户|查找|搜索"),
    ("playbooks", r"playbooks?", "打法|指南|作战手册"),  # not how / 怎么: half of all small talk starts so
)
USAGE_ORDER = ("leads", "activities", "accounts", "deals", "team", "stages", "decisions", "quotes", "approvals",
               "contracts", "delivery", "invoices", "payments", "collections", "reports", "playbooks")
_FAMILY_RX = [(name, re.compile(rf"(?<![A-Za-z])(?:{en})(?![A-Za-z])|{zh}", re.I)) for name, en, zh in FAMILIES]


def _family(text: str) -> str | None:
    for name, pattern in _FAMILY_RX:
        if pattern.search(text):
            return name
    return None


def usage(locale: str) -> str:
    """The whole command language with examples, in one language."""
    sections = [render(f"offline.usage.{name}", locale) for name in USAGE_ORDER]
    return render("offline.usage.title", locale) + "\n\n" + "\n\n".join(sections)


def help_text(locale: str, text: str = "") -> str:
    """Full usage when asked ("help", "帮助", "?"); the usage of the nearest command family when the text
    looks like one; else the short help."""
    u = utterance(text)
    asked = _help_topic(u.text) if u.text else None
    if asked is not None or (not u.text and "?" in (text or "").translate({0xFF1F: 0x3F})):
        return render(f"offline.usage.{asked}", locale) if asked else usage(locale)
    family = _family(u.text) if u.text else None
    if family:
        return render("offline.usage.hint", locale, usage=render(f"offline.usage.{family}", locale))
    return render("offline.help", locale)
