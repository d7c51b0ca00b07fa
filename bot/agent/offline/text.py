"""What the user typed, made matchable, with the user's own characters kept alongside.

`Utterance.text` is what the rules match: full-width punctuation and digits made ASCII (，→, ：→:
？→? １２→12), 、→, and 。→. , one space between words, politeness ("please", "请", "帮我") and a
trailing "?" / "吗" / "谢谢" removed. `Utterance.raw` holds the same characters as typed, position
for position, so free text (a reason, a note, a name) is passed on exactly as the user wrote it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Command:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


_WIDE = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_WIDE.update({0x3000: 0x20, ord("、"): ord(","), ord("。"): ord("."), ord("￥"): ord("¥"), ord("“"): ord('"'),
              ord("”"): ord('"'), ord("‘"): ord("'"), ord("’"): ord("'"), ord("【"): ord("["), ord("】"): ord("]"),
              ord("×"): ord("x"), ord("—"): ord("-"), ord("–"): ord("-"), ord("→"): ord(">")})
_HEAD = re.compile(
    r"^(?:<@[\w.-]+>[\s,:]*"
    r"|(?:please|pls|plz|kindly)\b[\s,]*"
    r"|(?:can|could|would|will)\s+you\s+(?:please\s+)?"
    r"|(?:i(?:'d| would) like to|i want to|i need to|let'?s|let us|help\s+me(?:\s+to)?)\s+(?=\S)"
    r"|(?:请你?|麻烦你?|烦请|劳驾)\s*(?:帮我|帮忙|给我)?\s*"
    r"|(?:帮我|帮忙)\s*"
    r"|我(?:想|要|需要)(?=\s*(?:查|看|找|搜|记|登记|申请|提交|推进|把|给|为|新建|创建|起草|作废|确认|批准|驳回|报价)))",
    re.I)
_TAIL = re.compile(r"(?:[\s,]*(?:please|pls|plz|thanks|thank you|thx|谢谢你?|多谢|谢啦|谢了)|吗|呢|吧|嘛|啊|[\s?!.~]+)$",
                   re.I)
_SEPS = " ,;:.!?\"'`~=-"


@dataclass(frozen=True)
class Utterance:
    text: str   # normalised, for matching
    raw: str    # the user's characters, same length
    question: bool = False
    ending: str = ""  # the question mark the user ended with ("?" / "？"), kept for questions passed on as typed

    def __getitem__(self, s: slice) -> Utterance:
        return Utterance(self.text[s], self.raw[s], self.question, self.ending)

    def __len__(self) -> int:
        return len(self.text)

    def part(self, m: re.Match, name: str | int) -> Utterance:
        """The span of a group of a match made on `self.text` (empty when the group did not take part)."""
        a, b = m.span(name)
        return self[a:b] if a >= 0 else Utterance("", "")

    def strip(self, chars: str = _SEPS) -> Utterance:
        a, b = 0, len(self.text)
        while a < b and self.text[a] in chars:
            a += 1
        while b > a and self.text[b - 1] in chars:
            b -= 1
        return self[a:b]

    def value(self) -> str:
        """The user's own text of this part, trimmed of separators."""
        return self.strip().raw.strip()

    def mask(self, *spans: tuple[int, int]) -> Utterance:
        """The same utterance with these spans blanked out of `text` (so nothing else matches there)."""
        chars = list(self.text)
        for a, b in spans:
            chars[a:b] = "#" * (b - a)
        return Utterance("".join(chars), self.raw, self.question, self.ending)


def utterance(text: str) -> Utterance:
    raw = text or ""
    norm = raw.translate(_WIDE)
    t_chars: list[str] = []
    r_chars: list[str] = []
    for n, r in zip(norm, raw):
        if n.isspace():
            if not t_chars or t_chars[-1] == " ":
                continue
            n, r = " ", ("\n" if r == "\n" else " ")
        t_chars.append(n)
        r_chars.append(r)
    u = Utterance("".join(t_chars), "".join(r_chars))
    question = False
    while True:
        head = _HEAD.match(u.text)
        if head and head.end() > 0:
            u = u[head.end():]
            continue
        tail = _TAIL.search(u.text)
        if tail and tail.start() < len(u.text):
            question = question or "?" in tail.group() or "吗" in tail.group()
            u = u[:tail.start()]
            continue
        break
    u = u.strip(" ")
    stripped = raw.rstrip()
    ending = stripped[-1] if stripped[-1:] in ("?", "？") else ""
    return Utterance(u.text, u.raw, question, ending)


# -- references -----------------------------------------------------------------------------------

_B = r"(?<![A-Za-z0-9])"
OPP = rf"{_B}opp(?:ortunity)?\s*[-_#]?\s*\d{{1,9}}(?!\d)"
APR = rf"{_B}(?:apr|approval)\s*[-_#]?\s*\d{{1,9}}(?!\d)"
QUOTE = rf"{_B}(?:q|quote)\s*[-_#]?\s*\d{{1,9}}(?!\d)"
LEAD = rf"{_B}lead\s*[-_#]?\s*\d{{1,9}}(?!\d)"
ACC = rf"{_B}(?:acc|account)\s*[-_#]?\s*\d{{1,9}}(?!\d)"
CT = rf"{_B}ct\s*-?\s*\d{{4}}\s*-\s*\d{{1,9}}(?!\d)"
INV = rf"{_B}inv\s*-?\s*\d{{4}}\s*-\s*\d{{1,9}}(?!\d)"
PAY = rf"{_B}pay\s*-?\s*\d{{4}}\s*-\s*\d{{1,9}}(?!\d)"
_SHORT = {"OPP": OPP, "APR": APR, "Q": QUOTE, "LEAD": LEAD, "ACC": ACC}
_YEARLY = {"CT": CT, "INV": INV, "PAY": PAY}
REFS = {**_SHORT, **_YEARLY}
_COMPILED = {k: re.compile(v, re.I) for k, v in REFS.items()}
ANY_REF = re.compile("|".join(REFS.values()), re.I)


def canon(kind: str, text: str) -> str:
    """'opp 12' → 'OPP-12', 'OPP-00012' → 'OPP-00012', 'ct-2026-00001' → 'CT-2026-00001': the prefix and the
    dashes normalised, the digits as the user wrote them (the tools read every spelling)."""
    digits = re.findall(r"\d+", text)
    if kind in _YEARLY:
        return f"{kind}-{digits[0]}-{digits[1]}"
    return f"{kind}-{digits[-1]}"


def find_ref(kind: str, text: str) -> tuple[str, tuple[int, int]] | None:
    m = _COMPILED[kind].search(text)
    return (canon(kind, m.group()), m.span()) if m else None


def ref_value(kind: str, text: str) -> str | None:
    """The canonical reference when the whole text is one reference of this kind."""
    m = _COMPILED[kind].fullmatch(text.strip())
    return canon(kind, m.group()) if m else None


def any_ref_value(text: str) -> str | None:
    """The canonical reference when the whole text is a reference of any kind."""
    for kind in REFS:
        found = ref_value(kind, text)
        if found:
            return found
    return None


def name_or_ref(part: Utterance) -> str | None:
    """A record named by reference (canonical) or by name (as typed); None when empty."""
    value = part.value()
    if not value:
        return None
    return any_ref_value(part.strip().text) or value


def opportunity(part: Utterance) -> str | None:
    """A deal: 'OPP-12' (canonical) or a name; never another kind of reference."""
    text = part.strip().text
    if not text:
        return None
    found = ref_value("OPP", text)
    if found:
        return found
    if ANY_REF.search(text) or len(text) > 100 or re.search(r"[:;,]", text):
        return None  # a name is one short phrase, not a sentence or a list
    return part.value()


def ref_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in ANY_REF.finditer(text)]
