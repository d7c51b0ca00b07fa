"""Catalog and price books: what we sell, what it costs us, the floor, and list prices per region."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(eq=False)
class Product:
    sku: str
    name_en: str
    name_zh: str
    unit: str
    currency: str  # of cost and floor price
    cost: Decimal
    floor_price: Decimal  # the lowest net unit price ever allowed: below it a quote is refused
    active: bool = True
    id: int | None = None

    def display_name(self, locale: str = "en") -> str:
        return self.name_zh if locale == "zh" and self.name_zh else self.name_en


@dataclass(eq=False)
class PriceBook:
    name: str
    region: str
    currency: str
    active: bool = True
    id: int | None = None


@dataclass(eq=False)
class PriceBookEntry:
    price_book_id: int
    product_id: int
    list_price: Decimal
    id: int | None = None


@dataclass(eq=False)
class DiscountBand:
    """One row of the discount policy (data): up to `max_discount_pct`, for deals up to
    `max_amount` (None = any size) with margin at least `min_margin_pct` (None = any), these
    approvers decide, in order (empty = approved automatically)."""

    priority: int
    max_discount_pct: Decimal
    steps: list
    max_amount: Decimal | None = None
    min_margin_pct: Decimal | None = None
    label: str = ""
    id: int | None = None

    def matches(self, discount_pct: Decimal, amount: Decimal, margin_pct: Decimal) -> bool:
        return (discount_pct <= self.max_discount_pct
                and (self.max_amount is None or amount <= self.max_amount)
                and (self.min_margin_pct is None or margin_pct >= self.min_margin_pct))
