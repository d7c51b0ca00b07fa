"""Shared field types for the services' input schemas."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.model.vocab import CURRENCIES

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(v: str | None) -> str | None:
    if v in (None, ""):
        return None
    if not _EMAIL.match(v):
        raise ValueError("not an email address (expected name@example.com)")
    return v


def _phone(v: str | None) -> str | None:
    if v in (None, ""):
        return None
    if len(re.sub(r"\D", "", v)) < 6:
        raise ValueError("a phone number needs at least 6 digits")
    return v


def _currency(v: str) -> str:
    v = v.upper()
    if v not in CURRENCIES:
        raise ValueError(f"unknown currency (allowed: {', '.join(CURRENCIES)})")
    return v


Email = Annotated[str | None, AfterValidator(_email)]
Phone = Annotated[str | None, AfterValidator(_phone)]
Currency = Annotated[str, AfterValidator(_currency)]
def _cents(v: Decimal) -> Decimal:
    return v.quantize(Decimal("0.01"))


Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2), AfterValidator(_cents)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=4000)]


class Input(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class View(BaseModel):
    model_config = ConfigDict(frozen=True)
