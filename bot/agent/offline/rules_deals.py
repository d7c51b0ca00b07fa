"""Rules for deals (商机): what next, gate requests, lost / abandoned, the SR's solution and the FR's delivery
plan and deliverability sign-off, edits, the iron triangle, stages, new deals and deal lists. A deal is
OPP-12 (any spelling) or, where the sentence delimits it, a name."""
from __future__ import annotations

import re
from datetime import date

from bot.agent.offline import fields as F
from bot.agent.offline import vocab
from bot.agent.offline.fields import Field
from bot.agent.offline.rules_common import matches, rx, trailing_text
from bot.agent.offline.text import OPP, Command, Utterance, find_ref, opportunity, ref_value

STAGE = vocab.alt(vocab.STAGES)
DEC = vocab.alt(vocab.DECISIONS)
REF = rf"(?P<opp>{OPP})"
NAME = r"(?P<opp>.+?)"


def _opp(u: Utterance, m: re.Match) -> str | None:
    return opportunity(u.part(m, "opp"))


# -- what next -------------------------------------------------------------------------------------

_ASK_NEXT = (r"(?:what(?:'s|\s+is|\s+are)?\s+(?:the\s+)?next(?:\s+steps?)?|next\s+steps?|"
             r"what\s+(?:should|do|can)\s+(?:i|we)\s+do\s+next|what\s+now)")
_WHAT_NEXT = (
    _ASK_NEXT + r"\s+(?:on|for|with|in|about)\s+" + NAME,
    _ASK_NEXT + r"\s*" + REF,
    NAME + r"\s*[:,]?\s*(?:what(?:'s|\s+is)?\s+next|next\s+steps?|what\s+now|what\s+should\s+(?:i|we)\s+do(?:\s+next)?)",
    NAME + r"\s*(?:的)?\s*(?:下一步|接下来|下步)\s*(?:该|应该|要|需要)?\s*"
           r"(?:做什么|干什么|干啥|做啥|怎么办|怎么做|怎么走|是什么|是啥|建议)?",
    r"(?:下一步|接下来)\s*(?:该|应该|要)?\s*(?:做什么|干什么|怎么办|怎么做)?\s*" + REF,
)


def what_next(u: Utterance, today: date) -> Command | None:
    for m in matches(_WHAT_NEXT, u):
        opp = _opp(u, m)
        if opp:
            return Command("what_next", {"opportunity": opp})
    return None


# -- request a decision (gate) ---------------------------------------------------------------------

_REST = r"(?P<rest>(?:\s*[:;,]|\s+(?:note|with\s+note|because|备注|说明)(?![A-Za-z])|\s*(?:备注|说明)).*)?"
_REQUEST = (
    rf"(?:request|ask\s+for|apply\s+for|raise|open|start|submit|book|schedule)\s+(?:an?\s+|the\s+)?(?P<dec>{DEC})"
    rf"(?:\s+(?:decision|review|gate|meeting|approval))?(?:\s+(?:for|on|of|to))?\s+{NAME}{_REST}",
    rf"{REF}\s*[:,]?\s*(?:request|ask\s+for|apply\s+for|submit|needs?)\s+(?:an?\s+|the\s+)?(?P<dec>{DEC})"
    rf"(?:\s+(?:decision|review|gate|meeting))?{_REST}",
    rf"(?:为|给)?\s*{NAME}\s*(?:申请|发起|提请|提交|召开)\s*(?P<dec>{DEC})\s*(?:决策|评审|会议|审批|会)?{_REST}",
    rf"(?:申请|发起|提请|召开)\s*(?P<dec>{DEC})\s*(?:决策|评审|会议|审批|会)?\s*(?:for|给|为)?\s*{NAME}{_REST}",
)


def request_decision(u: Utterance, today: date) -> Command | None:
    for m in matches(_REQUEST, u):
        opp = _opp(u, m)
        decision = vocab.lookup(vocab.DECISIONS, m.group("dec"))
        if opp and decision:
            args = {"opportunity": opp, "decision": decision}
            note = trailing_text(u.part(m, "rest"))
            if note:
                args["note"] = note
            return Command("request_decision", args)
    return None


# -- close lost / abandoned ------------------------------------------------------------------------

_OUTCOME = (("lost", r"lost|lose|dead|丢单|输单|失单|丢标|未中标|没中标"), ("abandoned", r"abandon(?:ed)?|drop(?:ped)?|放弃(?:跟进)?"))
_OUT = vocab.alt(_OUTCOME)
_WHY = r"(?P<rest>(?:\s*[:;,]|\s+(?:because|reason|due\s+to|as|since)(?![A-Za-z])|\s*(?:原因|理由|因为|由于)).+)"
_CLOSE = (
    rf"(?:mark|set|close|flag)\s+{NAME}\s+(?:as\s+)?(?P<out>{_OUT}){_WHY}",
    rf"{REF}\s*(?:is\s+|was\s+|has\s+been\s+)?(?:closed\s+)?(?:as\s+)?(?P<out>{_OUT}){_WHY}",
    rf"(?:we\s+)?(?P<out>lose|lost|abandon|drop)\s+{NAME}{_WHY}",
    rf"(?:把|将|关闭)?\s*{NAME}\s*(?:标记为|标为|设为|关闭为|已经?|被)?\s*(?P<out>{_OUT})(?:了)?{_WHY}",
    rf"(?P<out>放弃)\s*{NAME}{_WHY}",
)


def close_opportunity(u: Utterance, today: date) -> Command | None:
    for m in matches(_CLOSE, u):
        opp = _opp(u, m)
        outcome = vocab.lookup(_OUTCOME, m.group("out"))
        reason = trailing_text(u.part(m, "rest"))
        if opp and outcome and reason:
            return Command("close_opportunity", {"opportunity": opp, "outcome": outcome, "reason": reason})
    return None


# -- the SR's solution, the FR's delivery plan and sign-off ----------------------------------------

_NOTE_TEXT = r"\s*:\s*(?P<text>.+)"  # the note follows a colon: what comes before it is the deal
_PLAN = r"delivery\s+plan"
_ZH_PLAN = r"交付(?:计划|方案|安排)"
_DELIVERY_PLAN = (
    rf"(?:(?:record|set|log|add|update)\s+(?:the\s+)?)?{_PLAN}\s+(?:for|on|of)\s+{NAME}{_NOTE_TEXT}",
    rf"{REF}\s*(?:'s)?\s*{_PLAN}{_NOTE_TEXT}",
    rf"(?:为|给)\s*{NAME}\s*(?:记录|登记|录入)\s*{_ZH_PLAN}{_NOTE_TEXT}",
    rf"(?:记录|登记|录入|更新)?\s*{NAME}\s*(?:的)?\s*{_ZH_PLAN}{_NOTE_TEXT}",
)
_SOLUTION = r"solution(?:\s+(?:summary|overview|outline))?"
_ZH_SOLUTION = r"(?<!交付)(?:解决)?方案(?:概要|摘要|要点|简介|说明)?"
_SOLUTION_NOTE = (
    rf"(?:(?:record|set|log|add|update)\s+(?:the\s+)?)?{_SOLUTION}\s+(?:for|on|of)\s+{NAME}{_NOTE_TEXT}",
    rf"{REF}\s*(?:'s)?\s*{_SOLUTION}{_NOTE_TEXT}",
    rf"(?:为|给)\s*{NAME}\s*(?:记录|登记|录入)\s*{_ZH_SOLUTION}{_NOTE_TEXT}",
    rf"(?:记录|登记|录入|更新)?\s*{NAME}\s*(?:的)?\s*{_ZH_SOLUTION}{_NOTE_TEXT}",
)


def _note(u: Utterance, patterns: tuple[str, ...], tool: str, field: str) -> Command | None:
    for m in matches(patterns, u):
        opp, text = _opp(u, m), u.part(m, "text").value()
        if opp and text:
            return Command(tool, {"opportunity": opp, field: text})
    return None


def record_delivery_plan(u: Utterance, today: date) -> Command | None:
    return _note(u, _DELIVERY_PLAN, "record_delivery_plan", "plan")


def record_solution(u: Utterance, today: date) -> Command | None:
    return _note(u, _SOLUTION_NOTE, "record_solution", "summary")


_SIGNED = r"(?:signed[- ]?off|confirmed|approved|ok(?:ay)?|green)"
_SIGN_OFF = (
    rf"{NAME}\s*(?:'s)?\s+deliverability\s+(?:is\s+|was\s+|has\s+been\s+)?{_SIGNED}",
    rf"(?:sign\s*[- ]?off|confirm|approve)\s+(?:the\s+)?deliverability\s+(?:of|for|on)\s+{NAME}",
    rf"(?:sign\s*[- ]?off|confirm)\s+{NAME}\s+(?:as\s+)?deliverable",
    rf"{REF}\s+(?:is\s+)?deliverable(?:\s+as\s+(?:promised|planned))?",
    rf"(?:确认|签字确认|签署确认|签批)\s*{NAME}\s*(?:的)?\s*可交付性",
    rf"{NAME}\s*(?:的)?\s*可交付性\s*(?:已经?|已)?\s*(?:确认|签字确认|签署确认|签批|通过|没问题)(?:了)?",
    rf"{REF}\s*(?:可以交付|能够交付|可交付)\s*(?:,\s*)?(?:FR\s*)?(?:已经?|已)?\s*确认(?:了)?",
)


def sign_off_deliverability(u: Utterance, today: date) -> Command | None:
    for m in matches(_SIGN_OFF, u):
        opp = _opp(u, m)
        if opp:
            return Command("sign_off_deliverability", {"opportunity": opp})
    return None


# -- edit a deal -----------------------------------------------------------------------------------

OPP_FIELDS = (
    Field("amount", r"amount|value|deal\s+size|size", r"金额|合同额|总金额|总额|额度", F.money),
    Field("currency", r"currency", r"币种|货币", F.currency),
    Field("expected_close_date", r"(?:expected\s+)?clos(?:e|ing)(?:\s+date)?(?:\s+by)?",
          r"预计签约(?:日期|时间)?|签约(?:日期|时间)|预计成交(?:日期|时间)?|成交(?:日期|时间)|预计关闭(?:日期)?|结单日期", F.day),
    Field("next_step", r"next\s*steps?", r"下一步(?:计划|行动|动作)?|下步", F.text, greedy=True),
    Field("name", r"(?:deal\s+|opportunity\s+)?name|title", r"商机名称|项目名称|名称|名字", F.text),
)
_UPDATE = (
    rf"(?:(?:set|change|update|edit|modify|把|将|修改|更新|调整|更改)\s*)?{REF}\s*(?:'s|的)?\s*[:,]?\s*(?P<rest>.+)",
    rf"(?:set|change|update|edit|modify)\s+(?:the\s+)?(?P<rest>.+?)\s+(?:of|for|on)\s+{REF}\s+(?P<rest2>to\s+.+)",
)


def update_opportunity(u: Utterance, today: date) -> Command | None:
    m = rx(rf"rename\s+{REF}\s+(?:to|as)\s+(?P<name>.+)").fullmatch(u.text)
    if m and u.part(m, "name").value():
        return Command("update_opportunity", {"opportunity": ref_value("OPP", m.group("opp")),
                                              "name": u.part(m, "name").value()})
    for m in matches(_UPDATE, u):
        rest = u.part(m, "rest")
        if m.re.groupindex.get("rest2"):
            extra = u.part(m, "rest2")
            rest = Utterance(rest.text + " " + extra.text, rest.raw + " " + extra.raw)
        parsed = F.split(rest, OPP_FIELDS, today)
        if parsed is None or parsed[0].strip().text or not parsed[1]:
            continue
        return Command("update_opportunity", {"opportunity": ref_value("OPP", m.group("opp")), **parsed[1]})
    return None


# -- the iron triangle -----------------------------------------------------------------------------

_ROLE = rx(vocab.alt(vocab.ROLES))
_TEAM_WORDS = (r"(?:\s|[,;:#.]|(?:assign(?:ed)?|set|add|put|appoint|make|team|iron\s+triangle|members?|the|to|on|for|of|"
               r"and|as|is|=|with)(?![A-Za-z])|给|为|的|指定|任命|分配|设置|设定|安排|铁三角|团队|成员|是|由|担任|来做|做|当|和|及)*")
_FILLER = rx(_TEAM_WORDS)
_LEFT = rx("^" + _TEAM_WORDS)
_RIGHT = rx(_TEAM_WORDS + "$")


def _name(part: Utterance) -> Utterance:
    """The person in 'to Zhang San and' / '是张三': the words around it that only link are dropped."""
    a = _LEFT.match(part.text)
    part = part[a.end():] if a else part
    b = _RIGHT.search(part.text)
    return part[:b.start()] if b else part


def assign_iron_triangle(u: Utterance, today: date) -> Command | None:
    found = find_ref("OPP", u.text)
    if found is None:
        return None
    ref, span = found
    t = u.mask(span)
    roles = list(_ROLE.finditer(t.text))
    if not roles:
        return None
    args: dict[str, str] = {"opportunity": ref}
    before_first = t[:roles[0].start()]
    if _FILLER.fullmatch(before_first.text):  # "SR Zhang San, FR Li Si"
        ends = [r.start() for r in roles[1:]] + [len(t.text)]
        values = [t[r.end():end] for r, end in zip(roles, ends)]
    else:  # "Zhang San as SR, Li Si as FR"
        starts = [0] + [r.end() for r in roles[:-1]]
        values = [t[s:r.start()] for s, r in zip(starts, roles)]
        if not _FILLER.fullmatch(t[roles[-1].end():].text):
            return None
    for r, value in zip(roles, values):
        name = _name(value)
        if not name.value() or "#" in name.text:  # empty, or the deal reference sits inside a "name"
            return None
        args[vocab.lookup(vocab.ROLES, r.group())] = name.value()
    return Command("assign_iron_triangle", args)


# -- stages ----------------------------------------------------------------------------------------

_STAGE_END = r"\s*(?:stage|phase|阶段)?"
_ADVANCE_TO = (
    rf"(?:move|advance|push|progress|promote|bring|take|set|put|change)\s+{NAME}\s+(?:forward\s+)?"
    rf"(?:to|into|on\s+to|onto)\s+(?:the\s+)?(?P<stage>{STAGE}){_STAGE_END}",
    rf"{REF}\s*(?:stage\s*|阶段\s*)?(?:->|>|to|:|\s)\s*(?:the\s+)?(?P<stage>{STAGE}){_STAGE_END}",
    rf"(?:mark|set)\s+{NAME}\s+(?:as\s+)?(?P<stage>won)",
    rf"{REF}\s+(?:is\s+|was\s+|has\s+been\s+)?(?:closed\s+)?(?P<stage>won)",
    rf"(?:we\s+)?(?P<stage>won)\s+{NAME}",
    rf"(?:把|将)?\s*{NAME}\s*(?:推进|推动|推|转入|转|移|提升|升级|进|改)(?:到|至|入|为)\s*(?P<stage>{STAGE}){_STAGE_END}",
    rf"{NAME}\s*(?:进入|转入)\s*(?P<stage>{STAGE}){_STAGE_END}",
    rf"(?:推进|推动)\s*{NAME}\s*(?:到|至)\s*(?P<stage>{STAGE}){_STAGE_END}",
    rf"(?:把|将)?\s*{NAME}\s*(?:标记为|标为|设为)?\s*(?:已经?)?(?P<stage>赢单|签约成功|成交|中标)(?:了)?",
)
_ADVANCE = (
    rf"(?:advance|progress|promote)\s+{REF}(?:\s+(?:forward|to\s+(?:the\s+)?next\s+stage))?",
    rf"(?:move|push)\s+{REF}\s+(?:forward|on|ahead|to\s+(?:the\s+)?next\s+stage)",
    rf"{REF}\s*(?:next\s+stage|advance|move\s+forward|推进|往前推|推进一步|进入下一阶段|下一阶段)",
    rf"(?:推进|推动)\s*{REF}(?:\s*(?:到|进入)?\s*下一阶段)?",
)


def advance_stage(u: Utterance, today: date) -> Command | None:
    for m in matches(_ADVANCE_TO, u):
        opp, stage = _opp(u, m), vocab.lookup(vocab.STAGES, m.group("stage"))
        if opp and stage:
            return Command("advance_stage", {"opportunity": opp, "to_stage": stage})
    for m in matches(_ADVANCE, u):
        return Command("advance_stage", {"opportunity": ref_value("OPP", m.group("opp"))})
    return None


# -- new deal --------------------------------------------------------------------------------------

NEW_OPP_FIELDS = (
    Field("account", r"for|account|customer|client", r"客户|账户", F.text),
    Field("name", r"name|named|called|title", r"商机名称|项目名称|名称", F.text),
    Field("amount", r"amount|value|worth|size", r"金额|总额|价值", F.money),
    Field("currency", r"currency", r"币种", F.currency),
    Field("expected_close_date", r"(?:expected\s+)?clos(?:e|ing)(?:\s+date)?(?:\s+(?:by|on))?",
          r"预计签约(?:日期|时间)?|签约(?:日期|时间)|预计成交(?:日期|时间)?", F.day),
)
_NEW_OPP = (
    r"(?:new|create|add|open|start)\s+(?:an?\s+)?(?:opportunity|opp|deal)\s*[:,]?\s*(?P<rest>.+)",
    r"(?:新建|创建|新增|添加|新|录入)\s*(?:一个|个)?\s*商机\s*[:,]?\s*(?P<rest>.+)",
    r"(?:为|给)\s*(?P<acc>.+?)\s*(?:新建|创建|新增|添加|录入)\s*(?:一个|个)?\s*商机\s*[:,]?\s*(?P<rest>.+)",
)


def create_opportunity(u: Utterance, today: date) -> Command | None:
    for m in matches(_NEW_OPP, u):
        rest, args = u.part(m, "rest"), {}
        step = rx(r"(?<![A-Za-z])next\s*steps?(?![A-Za-z])|下一步(?:计划|行动)?").search(rest.text)
        if step:  # the next step takes the rest of the sentence, commas and all
            if F.link_stripped(rest[step.end():]).value():
                args["next_step"] = F.link_stripped(rest[step.end():]).value()
            rest = rest[:step.start()]
        if m.re.groupindex.get("acc"):
            args["account"] = u.part(m, "acc").value()
        bare: list[Utterance] = []
        for piece in _pieces(rest, r"[,;:]"):
            parsed = F.split(piece, NEW_OPP_FIELDS, today)
            if parsed is None:
                return None
            head, got = parsed
            for k, v in got.items():
                args.setdefault(k, v)
            if re.search(r"[\u4e00-\u9fff]", head.text):
                bare += _pieces(head, r"\s")
            elif head.strip().text:
                bare.append(head)
        for piece in bare:
            if not _bare(piece, args, today):
                return None
        if {"account", "name", "amount"} <= args.keys():
            order = ("account", "name", "amount", "currency", "expected_close_date", "next_step")
            return Command("create_opportunity", {k: args[k] for k in order if k in args})
    return None


def _bare(piece: Utterance, args: dict, today: date) -> bool:
    """An unlabelled part: an amount, a date, else the account, then the deal's name."""
    got = F.money("amount", piece, piece, today)
    if got and "amount" not in args:
        args.update({k: v for k, v in got.items() if k not in args})
        return True
    iso = F.day("expected_close_date", piece, piece, today)
    if iso and "expected_close_date" not in args:
        args.update(iso)
        return True
    slot = "account" if "account" not in args else "name" if "name" not in args else None
    if slot is None or not piece.value():
        return False
    args[slot] = piece.value()
    return True


def _pieces(part: Utterance, seps: str) -> list[Utterance]:
    out, start = [], 0
    for m in re.finditer(seps, part.text):
        out.append(part[start:m.start()])
        start = m.end()
    out.append(part[start:])
    return [p for p in out if p.strip().text]


# -- list deals ------------------------------------------------------------------------------------

_DEALS = r"(?:deals|opportunities|opps|pipeline)"
_LIST_DEALS = (
    rf"(?:(?:show|list|view|see|get)\s+(?:me\s+)?)?(?:(?P<me>my|our)\s+|all\s+(?:the\s+)?|the\s+|(?P<owner>[^,:;]+?)'s\s+)?"
    rf"(?:open\s+)?(?:(?P<stage>{STAGE})(?:\s+stage)?\s+)?{_DEALS}"
    rf"(?:\s+(?:of|for|owned\s+by|by)\s+(?P<owner2>[^,:;]+?))?"
    rf"(?:\s+(?:in|at)\s+(?:the\s+)?(?P<stage2>{STAGE})(?:\s+stage)?)?",
    rf"(?:查看|看看|看下|列出|显示)?\s*(?:(?P<me>我)|所有|全部|(?P<owner>[^\s,:;的在]+?)(?=\s*[的在]))??\s*(?:在|的)?\s*"
    rf"(?:(?:处于)?(?P<stage>{STAGE})\s*(?:阶段)?\s*的?)?\s*(?:商机|机会点?|项目)(?:列表|清单)?",
)


def list_deals(u: Utterance, today: date) -> Command | None:
    for m in matches(_LIST_DEALS, u):
        args: dict[str, str] = {}
        owner = m.group("owner") or (m.groupdict().get("owner2"))
        if m.group("me"):
            args["owner"] = "me"
        elif owner:
            key = "owner" if m.group("owner") else "owner2"
            args["owner"] = u.part(m, key).value()
        stage = m.group("stage") or m.groupdict().get("stage2")
        if stage:
            args["stage"] = vocab.lookup(vocab.STAGES, stage)
        return Command("list_deals", args)
    return None


RULES = (what_next, request_decision, close_opportunity, record_delivery_plan, record_solution, sign_off_deliverability,
         update_opportunity, assign_iron_triangle, advance_stage, create_opportunity)
