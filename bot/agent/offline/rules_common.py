"""Small pieces every rule module uses: compiled patterns, trailing reasons / notes, the rule type."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from functools import lru_cache

from bot.agent.offline.text import Command, Utterance

Rule = Callable[[Utterance, date], "Command | None"]


@lru_cache(maxsize=None)
def rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


def matches(patterns: Iterable[str], u: Utterance) -> Iterator[re.Match]:
    """Every pattern that matches the whole utterance, in order (a rule takes the first that parses)."""
    for p in patterns:
        m = rx(p).fullmatch(u.text)
        if m:
            yield m


_LEAD_IN = re.compile(
    r"^(?:\s|[:;,.\-]|(?:because(?:\s+of)?|reason(?:\s+is)?|due\s+to|since|note|with\s+(?:a\s+)?note|comments?|"
    r"with\s+(?:a\s+)?comment|saying)(?![A-Za-z])|原因(?:是)?|理由(?:是)?|因为|由于|备注|说明|意见|批注)+", re.I)


def trailing_text(part: Utterance) -> str:
    """A reason / comment / note after its lead-in ('because', ':', '原因', '备注'), as typed; '' if none."""
    m = _LEAD_IN.match(part.text)
    return (part[m.end():] if m else part).value()


_SENTENCE_BREAK = re.compile(r"[.!?](?:\s+|(?=[\u4e00-\u9fff]))\S|(?:^|\s)['\"]")


def one_clause(u: Utterance) -> bool:
    """The text is a single command, not a pasted passage (several sentences, a quotation) whose words a
    scanning rule would otherwise pick up: "… P.S. record a payment of 2,496,000 …" is no payment."""
    return not _SENTENCE_BREAK.search(u.text)


def first_of(rules: Iterable[Rule], u: Utterance, today: date) -> Command | None:
    for rule in rules:
        found = rule(u, today)
        if found is not None:
            return found
    return None
