"""Comparing an analytics view with the oracle: every mismatch collected, reported together.

Money must equal the oracle's figure exactly (both rounded half-up to 0.01). Fractions and hours
have no rounding rule in DEFINITIONS.md: they must be within 0.0005 (fractions, i.e. right to
0.1 %) / 0.05 (hours) of the exact value.
"""
from __future__ import annotations

from decimal import Decimal

from tests.integration.analytics_oracle import Money, Span

FRACTION = Decimal("0.001")
HOURS = Decimal("0.1")


def same(got, exp, tol: Decimal) -> bool:
    """Equal, except that an amount whose exact value lies on a half cent may be off by `tol`
    (inside lists, tuples and dicts too)."""
    if isinstance(got, Decimal) and isinstance(exp, Money):
        return got == exp or (abs(got - exp) <= tol and exp.fragile)
    if isinstance(got, (list, tuple)) and isinstance(exp, (list, tuple)):
        return len(got) == len(exp) and all(same(a, b, tol) for a, b in zip(got, exp))
    if isinstance(got, dict) and isinstance(exp, dict):
        return got.keys() == exp.keys() and all(same(got[k], exp[k], tol) for k in got)
    return got == exp


class Diff:
    """`tol`: 0 on PostgreSQL. On SQLite the services sum money as floating point (SQLite has no
    decimal type), so an amount whose exact value is x.xx5 may come out as x.xx4999… and round
    down: there, and only there, a difference of 0.01 is accepted (and listed in `tolerated`)."""

    def __init__(self, backend: str = "postgresql") -> None:
        self.errors: list[str] = []
        self.tol = Decimal("0.01") if backend == "sqlite" else Decimal(0)
        self.tolerated: list[str] = []

    def eq(self, where: str, got, exp) -> None:
        if got == exp:
            return
        if self.tol and same(got, exp, self.tol):
            self.tolerated.append(where)
            return
        self.errors.append(f"{where}: got {got!r}, expected {exp!r}")

    def approx(self, where: str, got, exp, coarsest: Decimal = FRACTION) -> None:
        """`got` is `exp` to within half of `coarsest` (no rounding rule is defined for these)."""
        if exp is None or got is None:
            self.eq(where, got, exp)
            return
        if abs(Decimal(got) - Decimal(exp)) > coarsest / 2:
            self.errors.append(f"{where}: got {got!r}, expected {exp!r} (± {coarsest / 2})")

    def period(self, where: str, got, exp: Span | None) -> None:
        if exp is None:
            self.eq(f"{where}.period", got, None)
            return
        if got is None:
            self.errors.append(f"{where}.period: got None, expected {exp}")
            return
        self.eq(f"{where}.period", (got.start, got.end, got.label, got.kind),
                (exp.start, exp.end, exp.label, exp.kind))

    def scoped(self, where: str, view, scope, currency: str = "CNY") -> None:
        self.eq(f"{where}.currency", view.currency, currency)
        self.eq(f"{where}.scope", view.scope, scope.name)
        got = None if view.owner_ids is None else sorted(view.owner_ids)
        self.eq(f"{where}.owner_ids", got, None if scope.owners is None else sorted(scope.owners))

    def fields(self, where: str, got, exp: dict, names: tuple[str, ...], fractions: tuple[str, ...] = (),
               coarsest: Decimal = FRACTION) -> None:
        for name in names:
            value = getattr(got, name) if not isinstance(got, dict) else got[name]
            if name in fractions:
                self.approx(f"{where}.{name}", value, exp[name], coarsest)
            else:
                self.eq(f"{where}.{name}", value, exp[name])

    def descending(self, where: str, values: list) -> None:
        if any(a < b for a, b in zip(values, values[1:])):
            self.errors.append(f"{where}: not sorted descending: {values}")

    def check(self) -> None:
        assert not self.errors, f"{len(self.errors)} mismatches:\n" + "\n".join(self.errors[:60])
