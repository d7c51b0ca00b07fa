"""Catalog administration and look-ups: products, price books, the discount policy."""
from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from domain.actor import Actor
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.model.catalog import DiscountBand, PriceBook, PriceBookEntry, Product
from domain.model.message_keys import keyed
from domain.rbac import UseCase
from domain.services.base import audit, begin, parse, snapshot
from domain.services.schemas import Currency, Input, Money, View

PRODUCT_FIELDS = ("sku", "name_en", "name_zh", "unit", "currency", "cost", "floor_price", "active")


class ProductCreate(Input):
    sku: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    name_en: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(min_length=1, max_length=200)
    unit: str = Field("unit", min_length=1, max_length=20)
    currency: Currency = "CNY"
    cost: Money
    floor_price: Money


class PriceBookCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    region: str = Field(min_length=1, max_length=50)
    currency: Currency = "CNY"
    prices: dict[str, Money] = Field(description="list price per SKU")


class ProductView(View):
    id: int
    sku: str
    name_en: str
    name_zh: str
    unit: str
    currency: str
    cost: Decimal
    floor_price: Decimal
    active: bool


def product_view(p: Product) -> ProductView:
    return ProductView(id=p.id, sku=p.sku, name_en=p.name_en, name_zh=p.name_zh, unit=p.unit, currency=p.currency,
                       cost=p.cost, floor_price=p.floor_price, active=p.active)


def create_product(data: ProductCreate | dict, *, actor: Actor, uow) -> ProductView:
    ctx = begin(uow, actor, UseCase.MANAGE_CATALOG)
    cmd = parse(ProductCreate, data)
    if uow.catalog.product_by_sku(cmd.sku) is not None:
        raise Conflict(f"A product with SKU {cmd.sku} already exists", field="sku")
    product = uow.catalog.add(Product(**cmd.model_dump()))
    audit(uow, ctx, "product", product.id, "create", None, snapshot(product, PRODUCT_FIELDS))
    return product_view(product)


def create_price_book(data: PriceBookCreate | dict, *, actor: Actor, uow) -> int:
    ctx = begin(uow, actor, UseCase.MANAGE_CATALOG)
    cmd = parse(PriceBookCreate, data)
    if any(b.region == cmd.region and b.currency == cmd.currency for b in uow.catalog.price_books()):
        raise Conflict(f"Region {cmd.region} already has a {cmd.currency} price book", field="region")
    book = uow.catalog.add(PriceBook(name=cmd.name, region=cmd.region, currency=cmd.currency))
    for sku, price in cmd.prices.items():
        product = uow.catalog.product_by_sku(sku)
        if product is None:
            raise NotFound(f"Unknown SKU {sku}", field="prices")
        uow.catalog.add(PriceBookEntry(price_book_id=book.id, product_id=product.id, list_price=price))
    audit(uow, ctx, "price_book", book.id, "create", None,
          {"name": book.name, "region": book.region, "currency": book.currency,
           "prices": {k: str(v) for k, v in cmd.prices.items()}})
    return book.id


def list_products(*, actor: Actor, uow) -> list[ProductView]:
    begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    return [product_view(p) for p in uow.catalog.products() if p.active]


def band_for(bands: list[DiscountBand], discount_pct: Decimal, amount: Decimal,
             margin_pct: Decimal | None) -> DiscountBand | None:
    """The first band (by priority) that covers this discount, deal size and margin."""
    margin = margin_pct if margin_pct is not None else Decimal("-100")
    return next((b for b in sorted(bands, key=lambda b: b.priority) if b.matches(discount_pct, amount, margin)),
                None)


def check_discount_band(bands: list[DiscountBand], discount_pct: Decimal, amount: Decimal,
                        margin_pct: Decimal | None) -> DiscountBand:
    band = band_for(bands, discount_pct, amount, margin_pct)
    if band is None:
        top = max((b.max_discount_pct for b in bands), default=Decimal("0"))
        raise ValidationFailed(
            f"No approval band allows a {discount_pct}% discount on {amount} with margin "
            f"{margin_pct if margin_pct is not None else '-'}%: the policy stops at {top}%. "
            "Redesign the offer (scope, phasing, payment terms) instead of discounting further",
            field="discount_pct",
            details=keyed("quote.discount_beyond_policy", {"max_discount_pct": str(top)}, pct=discount_pct,
                          amount=amount, margin=margin_pct if margin_pct is not None else "-", top=top))
    return band


class DiscountBandView(View):
    priority: int
    label: str
    max_discount_pct: Decimal
    max_amount: Decimal | None
    min_margin_pct: Decimal | None
    approver_roles: list[str]  # in order; empty = approved automatically

    @property
    def automatic(self) -> bool:
        return not self.approver_roles


class DiscountPolicyView(View):
    bands: list[DiscountBandView]
    band: DiscountBandView | None = None  # the band a given discount falls in (None: none given, or beyond policy)
    band_with_margin: DiscountBandView | None = None  # a laxer band the discount would get with enough margin
    beyond_policy: bool = False


def _band_view(b: DiscountBand) -> DiscountBandView:
    return DiscountBandView(priority=b.priority, label=b.label, max_discount_pct=b.max_discount_pct,
                            max_amount=b.max_amount, min_margin_pct=b.min_margin_pct,
                            approver_roles=[s["role"] for s in b.steps])


def discount_policy(*, actor: Actor, uow, discount_pct: Decimal | None = None, amount: Decimal | None = None,
                    margin_pct: Decimal | None = None) -> DiscountPolicyView:
    """The discount bands (policy data) and, for a discount on a deal size, the band that decides it.

    An unknown margin counts as failing any margin floor; `band_with_margin` then names the band
    the discount would get with a margin high enough."""
    begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    bands = sorted(uow.catalog.discount_bands(), key=lambda b: b.priority)
    views = [_band_view(b) for b in bands]
    if discount_pct is None:
        return DiscountPolicyView(bands=views)
    size = amount if amount is not None else Decimal("0")
    band = band_for(bands, discount_pct, size, margin_pct)
    laxer = band_for(bands, discount_pct, size, Decimal("100")) if margin_pct is None else None
    return DiscountPolicyView(bands=views, band=_band_view(band) if band else None,
                              band_with_margin=_band_view(laxer) if laxer is not None and laxer is not band else None,
                              beyond_policy=band is None)
