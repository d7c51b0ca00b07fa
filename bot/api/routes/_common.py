"""What the resource routes share: paging parameters and answers, money in JSON, writes, error docs.

Not a resource module (no `router`): the leading underscore keeps it out of router discovery.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from bot.api import cursor as cursors
from bot.api.errors import RESPONSES
from domain.model.vocab import CURRENCIES
from domain.services import listing
from domain.services.listing import DEFAULT_LIMIT, MAX_LIMIT, Slice

V = TypeVar("V")
ERRORS = RESPONSES  # the one error schema, documented on every operation

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page; omit for "
                                                                 "the first page")]
DEFAULT = DEFAULT_LIMIT
Id = Annotated[int, Query(ge=1, le=2**31 - 1)]
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database: larger ones are a 422, not a 500
Currency = Literal[CURRENCIES]


class Body(BaseModel):
    """Request bodies: unknown fields are refused (a typo never silently does nothing)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_DECIMAL = re.compile(r"^\d{1,14}(\.\d{1,2})?$")


def _decimal_text(value: Any) -> Any:
    """Money and quantities travel as decimal strings: a JSON number may already have lost cents in a float."""
    if not isinstance(value, str) or not _DECIMAL.match(value.strip()):
        raise ValueError('a decimal string with at most 2 decimals is expected, e.g. "1250000.00"')
    return value.strip()


def _decimal(example: str):
    return (BeforeValidator(_decimal_text),
            WithJsonSchema({"type": "string", "pattern": _DECIMAL.pattern, "examples": [example]}))


MoneyText = Annotated[Decimal, *_decimal("1250000.00"), Field(ge=0, max_digits=16, decimal_places=2)]
PositiveMoneyText = Annotated[MoneyText, Field(gt=0)]
DecimalText = Annotated[Decimal, *_decimal("12.50")]


def page(got: Slice[V]) -> dict[str, Any]:
    """A domain slice as the API's Page: the next cursor is opaque, built from the last id."""
    after = got.next_after_id
    return {"items": got.items, "next_cursor": cursors.encode(after) if after is not None else None}


def after(text: str | None) -> int | None:
    return cursors.decode(text)


def write(uow, service: Callable[..., V], *args: Any, **kwargs: Any) -> V:
    """One use case, one transaction: run the service and commit (leaving the block rolls back)."""
    with uow:
        view = service(*args, uow=uow, **kwargs)
        uow.commit()
    return view


def read(uow, service: Callable[..., V], *args: Any, **kwargs: Any) -> V:
    with uow:
        return service(*args, uow=uow, **kwargs)


def body(model) -> dict[str, Any]:
    """A request body as the plain values the services parse (money as exact strings, dates ISO)."""
    return model.model_dump(mode="json", exclude_unset=True)


def act(uow, who, kind: str, id_: int | None, service: Callable[..., V], *args: Any, field: str = "id",
        **kwargs: Any) -> V:
    """A write on (or naming) a record: missing and hidden records get the same 404, then one service, commit."""
    with uow:
        listing.check_visible(kind, id_, actor=who.actor, uow=uow, field=field)
        view = service(*args, actor=who.actor, uow=uow, **kwargs)
        uow.commit()
    return view
