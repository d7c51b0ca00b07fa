"""Key-value parts of a command: "…, contact Li Wei, budget 2M, source trade show" / "联系人 王芳 预算 200万".

A field is found by its key words (English or Chinese); its value runs to the next key. The text
before the first key is the head (e.g. the company of a new lead). A key whose value does not parse
(a "phone" that is no phone number) is not a key: it stays part of the value before it. A greedy
field (next step, notes) takes everything after it, keys included.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.agent.offline import numbers, vocab
from bot.agent.offline.dates import date_value
from bot.agent.offline.text import Utterance

Parse = Callable[[str, Utterance, Utterance, date], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Field:
    name: str
    en: str             # regex of the English key words (must stand alone)
    zh: str             # regex of the Chinese key words
    parse: Parse        # (name, key, value, today) → the args it gives, or None when it does not parse
    greedy: bool = False


LINK = re.compile(
    r"^(?:\s|[:=,]|(?:is|are|was|to|of|as|be|at|about|around)(?![A-Za-z])|改为|改成|改到|调整为|调整到|更新为|更新成|设为|设置为|设成|"
    r"变更为|变为|推迟到|延期到|提前到|约|大约|大概|为|是|:)+", re.I)


def key_pattern(f: Field) -> str:
    parts = [rf"(?<![A-Za-z])(?:{f.en})(?![A-Za-z])"] if f.en else []
    return "|".join(parts + ([f"(?:{f.zh})"] if f.zh else []))


def split(u: Utterance, fields: Sequence[Field], today: date) -> tuple[Utterance, dict[str, Any]] | None:
    """(head, args) of `u`, or None when a key's value that must parse does not (after merging)."""
    pattern = re.compile("|".join(f"(?P<f{i}>{key_pattern(f)})" for i, f in enumerate(fields)), re.I)
    hits: list[tuple[int, int, Field]] = []
    for m in pattern.finditer(u.text):
        if hits and hits[-1][2].greedy:
            break
        index = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
        hits.append((m.start(), m.end(), fields[index]))
    head_end = hits[0][0] if hits else len(u.text)
    args: dict[str, Any] = {}
    pending: list[tuple[int, int, int, Field]] = []  # key start, key end, value end, field
    for i, (a, b, f) in enumerate(hits):
        end = hits[i + 1][0] if i + 1 < len(hits) and not f.greedy else len(u.text)
        pending.append((a, b, end, f))
    kept: list[tuple[int, int, int, Field]] = []
    for a, b, end, f in pending:
        value = link_stripped(u[b:end])
        if f.parse(f.name, u[a:b], value, today) is None:
            if kept:  # not a key after all: part of the value before it
                ka, kb, _, kf = kept[-1]
                kept[-1] = (ka, kb, end, kf)
            else:
                head_end = end
            continue
        kept.append((a, b, end, f))
    for a, b, end, f in kept:
        got = f.parse(f.name, u[a:b], link_stripped(u[b:end]), today)
        if got is None:
            return None
        for k, v in got.items():
            args.setdefault(k, v)
    return u[:head_end], args


def link_stripped(value: Utterance) -> Utterance:
    m = LINK.match(value.text)
    return value[m.end():] if m else value


# -- value parsers --------------------------------------------------------------------------------

def text(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    v = value.value()
    return {name: v} if v else None


def optional_text(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    v = value.value()
    return {name: v} if v else {}


def money(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    found = numbers.amount(value.strip().text)
    if found is None:
        return None
    out: dict[str, Any] = {name: found.value}
    if found.currency:
        out["currency"] = found.currency
    return out


def day(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    iso = date_value(value.strip().text, today)
    return {name: iso} if iso else None


def currency(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    code = vocab.lookup(vocab.CURRENCIES, value.strip().text) or numbers.currency_code(value.strip().text)
    if code is None and re.fullmatch(r"[A-Za-z]{3}", value.strip().text):
        code = value.strip().text.upper()
    return {name: code} if code else None


def source(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    found = vocab.find(vocab.SOURCES, value.text)
    if found:
        return {name: found[0]}
    return {name: "other"} if value.value() else None


def source_flag(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    """The key is the source itself ('referral', '客户转介绍')."""
    found = vocab.find(vocab.SOURCES, key.text)
    return {name: found[0]} if found else None


def email(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    """'email li@acme.com'; a bare 'email' before the address (which the address field takes) gives nothing."""
    v = value.strip().text
    if not v:
        return {}
    return {name: value.value()} if re.fullmatch(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", v) else None


def phone(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    v = value.strip().text
    return {name: value.value()} if re.fullmatch(r"\+?[\d\s()-]{6,20}(?:\s*(?:ext\.?|x|转)\s*\d{1,6})?", v) else None


def timeline(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    found = vocab.timeline(key.text + " " + value.text)
    return {name: found[0]} if found else None


def authority(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    found = vocab.find(vocab.AUTHORITY, key.text + " " + value.text)
    return {name: found[0]} if found else None


def contact(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    """'Li Wei (CTO)' / 'Li Wei, CTO' / '王芳 采购经理' → contact_name + title (or authority)."""
    v = value.strip()
    if not v.text:
        return None
    extra: Utterance | None = None
    m = re.fullmatch(r"(.+?)\s*\((.+)\)", v.text)
    if m:
        v, extra = v.part(m, 1), v.part(m, 2)
    elif "," in v.text:
        i = v.text.index(",")
        v, extra = v[:i], v[i + 1:]
    elif re.search(r"[\u4e00-\u9fff]", v.text) and " " in v.text:
        i = v.text.index(" ")
        v, extra = v[:i], v[i + 1:]
    out: dict[str, Any] = {name: v.value()}
    if extra is not None and extra.value():
        role = vocab.lookup(vocab.AUTHORITY, extra.strip().text)
        out["authority" if role else "title"] = role or extra.value()
    return out if out[name] else None


def flag_text(name: str, key: Utterance, value: Utterance, today: date) -> dict[str, Any] | None:
    """The key is the value (an e-mail address written without 'email')."""
    return {name: key.value()}
