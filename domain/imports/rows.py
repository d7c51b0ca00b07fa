"""One file row → typed values, with every problem found (no database needed).

Problems are (field, sentence); the importer names the file's column for the field. A row can
have several (a bad amount AND a bad date are both reported).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from domain.errors import ValidationFailed
from domain.imports import values as v
from domain.imports.fields import Columns, key
from domain.imports.reader import Row
from domain.model.vocab import Authority, DecisionChainRole, LeadSource, LeadStatus, Stage, Tier, Timeline


class StageMap:
    """Source stage names → our stages: ours by name (any case), plus the --stage-map pairs."""

    def __init__(self, pairs: dict[str, str] | None = None) -> None:
        self.names: dict[str, Stage] = {key(s.value): s for s in Stage}
        self.mapped: list[str] = []
        for source, target in (pairs or {}).items():
            try:
                stage = Stage(target.strip().lower())
            except ValueError:
                raise ValidationFailed(f"--stage-map '{source}={target}': '{target}' is not one of our stages",
                                       field="stage_map", allowed=[s.value for s in Stage]) from None
            self.names[key(source)] = stage
            self.mapped.append(source)

    def __call__(self, value: object) -> Stage:
        found = self.names.get(key(str(value)))
        if found is None:
            mapped = f"; mapped: {', '.join(self.mapped)}" if self.mapped else ""
            raise ValueError(f"'{value}' is not a stage we know: map it with --stage-map \"{value}=<stage>\" "
                             f"(stages: {', '.join(s.value for s in Stage)}{mapped})")
        return found


def _status(value: object) -> str:
    status = v.choice(value, LeadStatus)
    if status == LeadStatus.CONVERTED.value:
        raise ValueError("a lead cannot be imported as converted: import its account and opportunity instead, "
                         "or leave the status empty")
    return status


def parsers(kind: str, stages: StageMap, day_first: bool) -> dict[str, Callable[[object], Any]]:
    day = partial(v.day, day_first=day_first)
    common = {"owner": v.text, "title": v.text, "email": v.text, "phone": v.text, "region": v.text,
              "currency": v.currency, "budget": v.money}
    return {
        "leads": {**common, "company": v.text, "contact_name": v.text, "source": partial(v.choice, enum=LeadSource),
                  "need": v.text, "timeline": partial(v.choice, enum=Timeline),
                  "authority": partial(v.choice, enum=Authority), "notes": v.text, "status": _status,
                  "disqualify_reason": v.text},
        "accounts": {**common, "name": v.text, "industry": v.text, "tier": partial(v.choice, enum=Tier)},
        "contacts": {**common, "account": v.text, "name": v.text,
                     "decision_role": partial(v.choice, enum=DecisionChainRole),
                     "relationship": partial(v.whole, lo=1, hi=5)},
        "opportunities": {**common, "name": v.text, "account": v.text, "amount": v.money, "stage": stages,
                          "close_date": day, "created_on": day, "next_step": v.text, "customer_need": v.text,
                          "competitors": v.items, "close_reason": v.text},
    }[kind]


@dataclass
class Prepared:
    number: int
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str | None, str]] = field(default_factory=list)


def prepare(row: Row, columns: Columns, parse: dict[str, Callable[[object], Any]]) -> Prepared:
    out = Prepared(row.number)
    for name, index in columns.at.items():
        raw = v.text(row.get(index)) if not _typed(row.get(index)) else row.get(index)
        spec = columns.kind.field(name)
        if raw is None:
            if spec is not None and spec.required:
                out.problems.append((name, f"{columns.header(name)} is empty"))
            continue
        try:
            out.values[name] = parse[name](raw)
        except ValueError as exc:
            out.problems.append((name, str(exc)))
    return out


def _typed(cell: object) -> bool:
    """Numbers and dates from a spreadsheet stay typed (an XLSX amount is a number, not text)."""
    return cell is not None and not isinstance(cell, str)
