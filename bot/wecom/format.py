"""Agent replies made fit for WeCom: no monospace there, and messages of at most 2048 bytes.

A monospace table (tools.format.table: header, dashed rule, rows) does not line up in WeCom's
proportional font, so each row becomes one line of its cells joined by " · ", the header in bold
when markdown is on. Long replies are cut at line ends into messages of at most 2048 UTF-8 bytes;
a single longer line is cut at a character boundary.
"""
from __future__ import annotations

import re

from tools.format import width

TEXT_LIMIT = 2048  # bytes, text and markdown messages alike
RULE = re.compile(r"^-+( +-+)+\s*$")
SEP = " · "


def _spans(rule: str) -> list[tuple[int, int]]:
    """Display-column spans of the dashed runs: one per column."""
    return [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """Cut a padded row at the rule's column starts, counting display width (CJK takes two)."""
    starts = [s for s, _ in spans[1:]]
    cells, current, col = [], "", 0
    for ch in line:
        if starts and col >= starts[0]:
            cells.append(current)
            current = ""
            starts.pop(0)
        current += ch
        col += width(ch)
    cells.append(current)
    return [c.strip() for c in cells]


def flatten_tables(text: str, *, markdown: bool = False) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and RULE.match(lines[i + 1]) and lines[i].strip():
            spans = _spans(lines[i + 1])
            head = SEP.join(c for c in _cells(lines[i], spans) if c)
            out.append(f"**{head}**" if markdown else head)
            i += 2
            while i < len(lines) and len(spans) > 1 and sum(1 for c in _cells(lines[i], spans) if c) >= 2:
                out.append("• " + SEP.join(c for c in _cells(lines[i], spans) if c))  # a row fills 2+ columns
                i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def has_table(text: str) -> bool:
    return any(RULE.match(line) for line in text.split("\n"))


def _cut_line(line: str, limit: int) -> list[str]:
    parts, current, size = [], "", 0
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            parts.append(current)
            current, size = "", 0
        current += ch
        size += n
    parts.append(current)
    return parts


def chunks(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Messages of at most `limit` bytes, cut at line ends where possible; never an empty one."""
    out: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = _cut_line(line, limit) if len(line.encode()) > limit else [line]
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate.encode()) <= limit:
                current = candidate
                continue
            if current.strip():
                out.append(current)
            current = piece
    if current.strip():
        out.append(current)
    return out
