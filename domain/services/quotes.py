"""CPQ: versioned quotes priced from the price book, discount approval by policy, price parity."""
from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import Field

from domain.actor import Actor
from domain.errors import InvalidTransition, NotFound, ValidationFailed
from domain.model import quotes as q
from domain.model.events import QuoteStatusChanged
from domain.model.message_keys import keyed
from domain.model.quotes import Quote, QuoteLine
from domain.model.vocab import ApprovalStatus, MemberRole, Outcome
from domain.rbac import UseCase
from domain.services import approvals as approval_svc
from domain.services import opportunities as opp_svc
from domain.services.base import Ctx, audit, begin, emit, get_or_404, job_date, parse, snapshot
from domain.services.catalog import band_for, check_discount_band
from domain.services.schemas import Input, View

QUOTE_FIELDS = ("status", "version", "total", "list_total", "cost_total", "discount_pct", "margin_pct",
                "valid_until", "approval_id")
DEFAULT_VALIDITY_DAYS = 30
PARITY_WINDOW_DAYS = 365


class QuoteLineIn(Input):
    product: str = Field(min_length=1, max_length=200, description="SKU or product name (zh/en)")
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    discount_pct: Decimal = Field(Decimal("0"), ge=0, le=100, max_digits=5, decimal_places=2)


class QuoteCreate(Input):
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=200)
    valid_until: date | None = Field(None, description=f"defaults to {DEFAULT_VALIDITY_DAYS} days from today")


class QuoteLineView(View):
    position: int
    sku: str
    name: str  # as priced (English)
    name_zh: str | None = None  # the catalog's Chinese name, for Chinese readers
    quantity: Decimal
    list_price: Decimal
    discount_pct: Decimal
    net_unit: Decimal
    net: Decimal


class ParityView(View):
    """What comparable won deals got: the approver's yardstick against discount creep."""

    deals: int
    median_discount_pct: Decimal | None
    p80_discount_pct: Decimal | None
    requester_deals: int
    requester_median_discount_pct: Decimal | None


class QuoteView(View):
    id: int
    ref: str
    opportunity_id: int
    version: int
    status: str
    currency: str
    list_total: Decimal
    total: Decimal
    discount_pct: Decimal
    margin_pct: Decimal | None
    valid_until: date | None
    approval_id: int | None
    lines: list[QuoteLineView]
    message: str = ""


def to_view(quote: Quote, message: str = "", uow=None) -> QuoteView:
    """With `uow`, lines carry the catalog's Chinese product names too."""
    zh = {p.id: p.name_zh for p in uow.catalog.products()} if uow is not None else {}
    return QuoteView(
        id=quote.id, ref=quote.ref, opportunity_id=quote.opportunity_id, version=quote.version, status=quote.status,
        currency=quote.currency, list_total=quote.list_total, total=quote.total, discount_pct=quote.discount_pct,
        margin_pct=quote.margin_pct, valid_until=quote.valid_until, approval_id=quote.approval_id,
        lines=[QuoteLineView(position=ln.position, sku=ln.sku, name=ln.name, name_zh=zh.get(ln.product_id) or None,
                             quantity=ln.quantity,
                             list_price=ln.list_price, discount_pct=ln.discount_pct, net_unit=ln.net_unit,
                             net=ln.net) for ln in quote.lines],
        message=message)


def _require_deal_seller(ctx: Ctx, opp, what: str) -> None:
    """Quotes are built by the AR or the SR of the deal (or the AR's managers)."""
    if ctx.user.id in opp.member_ids(MemberRole.SR):
        return
    opp_svc.require_manager_of(ctx, opp, what)


def _price_lines(uow, opp, lines: list[QuoteLineIn]) -> tuple[int, str, list[QuoteLine]]:
    book = uow.catalog.price_book_for(opp.region, opp.currency)
    if book is None:
        raise ValidationFailed(f"No {opp.currency} price book for region '{opp.region or '-'}'",
                               field="currency", allowed=[f"{b.region}/{b.currency}" for b in uow.catalog.price_books()])
    priced = []
    for position, line in enumerate(lines, start=1):
        product = uow.catalog.find_product(line.product)
        if product is None:
            near = uow.catalog.similar_products(line.product)
            said = (keyed("quote.unknown_product_near", product=line.product, near=", ".join(near)) if near
                    else keyed("quote.unknown_product", product=line.product))
            raise NotFound(f"Unknown product '{line.product}'" + (f"; did you mean {', '.join(near)}?" if near else ""),
                           field=f"lines.{position - 1}.product", allowed=near or None, details=said)
        entry = uow.catalog.entry(book.id, product.id)
        if entry is None:
            raise ValidationFailed(f"{product.sku} has no list price in price book {book.name}",
                                   field=f"lines.{position - 1}.product",
                                   details=keyed("quote.no_list_price", sku=product.sku, book=book.name))
        if product.currency != book.currency:
            raise ValidationFailed(f"{product.sku} is costed in {product.currency}; the quote is in {book.currency}",
                                   field="currency")
        priced.append(QuoteLine(product_id=product.id, sku=product.sku, name=product.display_name(),
                                quantity=line.quantity, list_price=entry.list_price, discount_pct=line.discount_pct,
                                unit_cost=product.cost, floor_price=product.floor_price, position=position))
    return book.id, book.currency, priced


def _floor_check(quote: Quote) -> None:
    under = quote.below_floor()
    if under:
        line = under[0]
        raise ValidationFailed(
            f"{line.sku} at {line.discount_pct}% off nets {line.net_unit} per {line.name}, below its floor price "
            f"{line.floor_price}: refused", field=f"lines.{line.position - 1}.discount_pct",
            details=keyed("quote.below_floor", {"sku": line.sku, "floor_price": str(line.floor_price)}, sku=line.sku,
                          pct=line.discount_pct, net_unit=line.net_unit, name=line.name, floor=line.floor_price))


def _record(uow, ctx: Ctx, quote: Quote, action: str, before: dict | None) -> None:
    """Audit the change; a status change is also an event (nudges, chat notices)."""
    entry = audit(uow, ctx, "quote", quote.id, action, before, snapshot(quote, QUOTE_FIELDS))
    if before is not None and before.get("status") != quote.status:
        emit(uow, QuoteStatusChanged(quote_id=quote.id, opportunity_id=quote.opportunity_id,
                                     from_status=before["status"], to_status=quote.status, audit_id=entry.id))


def create_quote(opp_id: int, data: QuoteCreate | dict, *, actor: Actor, uow) -> QuoteView:
    """A new version for the deal; earlier open versions are superseded (their approvals cancelled)."""
    ctx = begin(uow, actor, UseCase.BUILD_QUOTE)
    cmd = parse(QuoteCreate, data)
    opp = opp_svc.visible_opportunity(uow, ctx, opp_id, for_update=True)
    _require_deal_seller(ctx, opp, "quote it")
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; closed deals get no new quotes", field="stage",
                               details=keyed("quote.deal_closed", ref=opp.ref, stage=opp.stage))
    contract = uow.contracts.for_opportunity(opp.id)
    if contract is not None and contract.status != "draft":
        how = ("withdraw it to draft first" if contract.status == "under_review"
               else "its price changes by change order, not by a new quote")
        said = keyed("quote.contract_under_review" if contract.status == "under_review" else "quote.contract_signed",
                     ref=opp.ref, contract=contract.ref, contract_status=contract.status)
        raise ValidationFailed(f"{opp.ref} has contract {contract.ref} ({contract.status}): {how}", field="stage",
                               details=said)
    today = uow.now().date()
    if cmd.valid_until is not None and cmd.valid_until < today:
        raise ValidationFailed(f"valid_until {cmd.valid_until} is in the past", field="valid_until")
    book_id, currency, lines = _price_lines(uow, opp, cmd.lines)
    earlier = uow.quotes.for_opportunity(opp.id)
    quote = Quote(opportunity_id=opp.id, version=max((x.version for x in earlier), default=0) + 1, status=q.DRAFT,
                  total=Decimal("0"), currency=currency, created_at=uow.now(), price_book_id=book_id,
                  valid_until=cmd.valid_until or today + timedelta(days=DEFAULT_VALIDITY_DAYS),
                  created_by=ctx.user.id, lines=lines)
    quote.recompute()
    _floor_check(quote)
    for old in earlier:
        if old.status in q.OPEN:
            _supersede(uow, ctx, old)
    uow.quotes.add(quote)
    _record(uow, ctx, quote, "create", None)
    return to_view(quote, uow=uow, message=f"{quote.ref} v{quote.version} drafted: {quote.currency} {quote.total} "
                                           f"({quote.discount_pct}% off list, margin {quote.margin_pct}%)")


def _supersede(uow, ctx: Ctx, old: Quote) -> None:
    before = snapshot(old, QUOTE_FIELDS)
    if old.status == q.PENDING and old.approval_id:
        request = uow.approvals.get_for_update(old.approval_id)
        if request is not None and request.is_pending:
            approval_svc.close_request(uow, ctx, request, ApprovalStatus.CANCELLED, "a newer quote version")
    old.move_to(q.SUPERSEDED)
    _record(uow, ctx, old, "supersede", before)


def _visible_quote(uow, ctx: Ctx, quote_id: int, *, for_update: bool = False) -> tuple[Quote, object]:
    quote = get_or_404(uow.quotes, quote_id, "Quote", f"Q-{quote_id:05d}" if isinstance(quote_id, int) else None)
    opp = opp_svc.visible_opportunity(uow, ctx, quote.opportunity_id, for_update=for_update)
    if for_update:
        quote = uow.quotes.get_for_update(quote.id)
        if not opp.is_open:
            raise ValidationFailed(f"{opp.ref} is {opp.stage}; its quotes can no longer change", field="stage",
                                   details=keyed("quote.deal_closed_frozen", ref=opp.ref, stage=opp.stage))
    return quote, opp


def update_quote(quote_id: int, data: QuoteCreate | dict, *, actor: Actor, uow) -> QuoteView:
    """Re-price the lines. An approved quote stays approved unless the discount rose or the margin fell."""
    ctx = begin(uow, actor, UseCase.BUILD_QUOTE)
    cmd = parse(QuoteCreate, data)
    quote, opp = _visible_quote(uow, ctx, quote_id, for_update=True)
    _require_deal_seller(ctx, opp, "edit its quotes")
    if quote.status not in q.EDITABLE:
        raise InvalidTransition(f"{quote.ref} is {quote.status}; only draft, rejected or approved quotes can be edited",
                                field="status", allowed=sorted(q.EDITABLE),
                                details=keyed("quote.not_editable", ref=quote.ref, quote_status=quote.status))
    before = snapshot(quote, QUOTE_FIELDS)
    _, _, lines = _price_lines(uow, opp, cmd.lines)
    quote.lines[:] = []
    uow.flush()
    quote.lines.extend(lines)
    if cmd.valid_until is not None:
        quote.valid_until = cmd.valid_until
    quote.recompute()
    _floor_check(quote)
    if quote.status == q.APPROVED and (quote.worse_than_approved() or _needs_stricter_chain(uow, quote)):
        quote.move_to(q.DRAFT)
        quote.approval_id = None
        message = f"{quote.ref} changed for the worse (discount up or margin down): submit it for approval again"
    elif quote.status == q.REJECTED:
        quote.move_to(q.DRAFT)
        message = f"{quote.ref} revised; submit it again"
    else:
        message = f"{quote.ref} updated" + (" and stays approved" if quote.status == q.APPROVED else "")
    _record(uow, ctx, quote, "update", before)
    return to_view(quote, uow=uow, message=message)


def _needs_stricter_chain(uow, quote: Quote) -> bool:
    """A bigger deal can fall into a band with more approvers than the one that approved it."""
    band = band_for(uow.catalog.discount_bands(), quote.routing_discount_pct, quote.total, quote.margin_pct)
    approved_by = len(uow.approvals.get(quote.approval_id).steps) if quote.approval_id else 0
    return band is None or len(band.steps) > approved_by


def price_parity(uow, product_ids: list[int], requester_id: int, now: datetime) -> ParityView:
    """Median and 80th percentile line discount that won deals got for these products in 12 months."""
    rows = uow.quotes.won_line_discounts(product_ids, since=now - timedelta(days=PARITY_WINDOW_DAYS))
    all_d = sorted(d for d, _owner, _opp in rows)
    mine = sorted(d for d, owner, _opp in rows if owner == requester_id)

    def pct(values: list[Decimal], p: float) -> Decimal | None:
        if not values:
            return None
        k = (len(values) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(values) - 1)
        return q.cents(values[lo] + (values[hi] - values[lo]) * Decimal(str(k - lo)))

    return ParityView(deals=len({o for _d, _w, o in rows}),
                      median_discount_pct=q.cents(Decimal(statistics.median(all_d))) if all_d else None,
                      p80_discount_pct=pct(all_d, 0.8), requester_deals=len({o for _d, w, o in rows if w == requester_id}),
                      requester_median_discount_pct=q.cents(Decimal(statistics.median(mine))) if mine else None)


def submit_quote(quote_id: int, *, actor: Actor, uow) -> QuoteView:
    """Route the quote by the discount policy: approved at once, or a discount approval with price parity."""
    ctx = begin(uow, actor, UseCase.BUILD_QUOTE)
    quote, opp = _visible_quote(uow, ctx, quote_id, for_update=True)
    _require_deal_seller(ctx, opp, "submit its quotes")
    if quote.status != q.DRAFT:
        quote.move_to(q.PENDING)  # raises InvalidTransition naming what is allowed
    _floor_check(quote)
    band = check_discount_band(uow.catalog.discount_bands(), quote.routing_discount_pct, quote.total,
                               quote.margin_pct)
    before = snapshot(quote, QUOTE_FIELDS)
    quote.submitted_at = uow.now()
    if not band.steps:
        quote.move_to(q.APPROVED)
        quote.approved_discount_pct, quote.approved_margin_pct = quote.discount_pct, quote.margin_pct
        _record(uow, ctx, quote, "approve:auto", before)
        return to_view(quote, uow=uow,
                       message=f"{quote.ref} approved automatically ({band.label or 'within the auto band'})")
    parity = price_parity(uow, [ln.product_id for ln in quote.lines], ctx.user.id, uow.now())
    context = {"quote_ref": quote.ref, "opportunity_ref": opp.ref, "opportunity_name": opp.name,
               "amount": str(quote.total), "currency": quote.currency, "discount_pct": str(quote.discount_pct),
               "margin_pct": str(quote.margin_pct), "band": band.label, "parity": parity.model_dump(mode="json")}
    request = approval_svc.open_request(uow, ctx, kind="discount", subject_type="quote", subject_id=quote.id,
                                        title=f"Discount {quote.discount_pct}%: {quote.ref} for {opp.ref} {opp.name}",
                                        steps=list(band.steps), context=context)
    quote.move_to(q.PENDING)
    quote.approval_id = request.id
    _record(uow, ctx, quote, "submit", before)
    who = " then ".join(s["role"] for s in band.steps)
    return to_view(quote, uow=uow, message=f"{quote.ref} sent for discount approval ({who}): {request.ref}")


def send_quote(quote_id: int, *, actor: Actor, uow) -> QuoteView:
    """Send an approved, still valid quote to the customer."""
    ctx = begin(uow, actor, UseCase.SEND_QUOTE)
    quote, opp = _visible_quote(uow, ctx, quote_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "send its quotes")
    if quote.status != q.APPROVED:
        raise InvalidTransition(f"{quote.ref} is {quote.status}: only an approved quote can be sent to the customer",
                                field="status", allowed=sorted(q.TRANSITIONS[quote.status]),
                                details=keyed("quote.send_needs_approval", ref=quote.ref, quote_status=quote.status))
    if quote.valid_until and quote.valid_until < uow.now().date():
        raise ValidationFailed(f"{quote.ref} expired on {quote.valid_until}; create a new version", field="valid_until",
                               details=keyed("quote.expired_create", ref=quote.ref, valid_until=quote.valid_until))
    before = snapshot(quote, QUOTE_FIELDS)
    quote.move_to(q.SENT)
    quote.sent_at = uow.now()
    _record(uow, ctx, quote, "send", before)
    return to_view(quote, uow=uow, message=f"{quote.ref} sent to the customer")


def accept_quote(quote_id: int, *, actor: Actor, uow) -> QuoteView:
    """Record that the customer accepted the sent quote (a contract is created from it)."""
    ctx = begin(uow, actor, UseCase.SEND_QUOTE)
    quote, opp = _visible_quote(uow, ctx, quote_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "record the customer's acceptance")
    if quote.status == q.SENT and quote.valid_until and quote.valid_until < uow.now().date():
        raise ValidationFailed(f"{quote.ref} expired on {quote.valid_until}; send a new version", field="valid_until",
                               details=keyed("quote.expired_send", ref=quote.ref, valid_until=quote.valid_until))
    before = snapshot(quote, QUOTE_FIELDS)
    quote.move_to(q.ACCEPTED)
    quote.accepted_at = uow.now()
    _record(uow, ctx, quote, "accept", before)
    if opp.amount != quote.total:  # the deal is worth what the customer accepted
        opp_before = {"amount": str(opp.amount)}
        opp.amount, opp.updated_at = quote.total, uow.now()
        audit(uow, ctx, "opportunity", opp.id, "amount_from_quote", opp_before,
              {"amount": str(opp.amount), "quote": quote.ref})
    return to_view(quote, uow=uow, message=f"{quote.ref} accepted by the customer; {opp.ref} is now worth "
                                           f"{quote.currency} {quote.total}: draft the contract next")


def expire_quotes(*, actor: Actor, uow, as_of: date | None = None) -> list[str]:
    """Daily job: open quotes past their validity become expired (their pending approvals are cancelled)."""
    ctx = begin(uow, actor, UseCase.RUN_JOBS)
    today = job_date(uow, as_of)
    expired = []
    for candidate in uow.quotes.open_past_validity(today):
        uow.opportunities.get_for_update(candidate.opportunity_id)
        quote = uow.quotes.get_for_update(candidate.id)
        if quote.status not in q.OPEN or quote.status == q.ACCEPTED:
            continue
        before = snapshot(quote, QUOTE_FIELDS)
        if quote.status == q.PENDING and quote.approval_id:
            request = uow.approvals.get_for_update(quote.approval_id)
            if request is not None and request.is_pending:
                approval_svc.close_request(uow, ctx, request, ApprovalStatus.CANCELLED,
                                           f"{quote.ref} expired on {quote.valid_until}")
                before = snapshot(quote, QUOTE_FIELDS)  # the closed approval put it back to draft
        if quote.status in q.OPEN:
            quote.move_to(q.EXPIRED)
            _record(uow, ctx, quote, "expire", before)
            expired.append(quote.ref)
    return expired


def get_quote(quote_id: int, *, actor: Actor, uow) -> QuoteView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    quote, _ = _visible_quote(uow, ctx, quote_id)
    return to_view(quote, uow=uow)


def list_quotes(opp_id: int, *, actor: Actor, uow) -> list[QuoteView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    opp = opp_svc.visible_opportunity(uow, ctx, opp_id)
    return [to_view(x, uow=uow) for x in uow.quotes.for_opportunity(opp.id)]


# --- the approval engine's side: quotes as subjects of discount approvals ----------------------

def _quote_subject(uow, subject_id: int) -> approval_svc.Subject:
    quote = uow.quotes.get(subject_id)
    if quote is None:
        raise NotFound(f"Quote {subject_id} does not exist")
    opp = uow.opportunities.get(quote.opportunity_id)
    return approval_svc.Subject(
        ref=quote.ref, owner_id=opp.owner_id, region=opp.region,
        visible=lambda ctx: ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage))


def _lock_quote(uow, subject_id: int) -> None:
    quote = uow.quotes.get(subject_id)
    if quote is not None:
        uow.opportunities.get_for_update(quote.opportunity_id)  # the deal first, as everywhere
        uow.quotes.get_for_update(subject_id)


def _discount_approved(uow, ctx: Ctx, request) -> None:
    quote = uow.quotes.get(request.subject_id) if request.subject_type == "quote" else None
    if quote is None or quote.status != q.PENDING or quote.approval_id != request.id:
        return  # superseded meanwhile: the decision no longer applies
    before = snapshot(quote, QUOTE_FIELDS)
    quote.move_to(q.APPROVED)
    quote.approved_discount_pct, quote.approved_margin_pct = quote.discount_pct, quote.margin_pct
    _record(uow, ctx, quote, "approve", before)


def _discount_rejected(uow, ctx: Ctx, request) -> None:
    quote = uow.quotes.get(request.subject_id) if request.subject_type == "quote" else None
    if quote is None or quote.status != q.PENDING or quote.approval_id != request.id:
        return
    before = snapshot(quote, QUOTE_FIELDS)
    if request.last_decision().outcome == Outcome.REVISE.value:  # changes requested: back to its author
        quote.move_to(q.DRAFT)
        quote.approval_id = None
        _record(uow, ctx, quote, "changes_requested", before)
        return
    quote.move_to(q.REJECTED)
    _record(uow, ctx, quote, "reject", before)


approval_svc.SUBJECTS["quote"] = _quote_subject
approval_svc.SUBJECT_LOCKS["quote"] = _lock_quote
def _discount_closed(uow, ctx: Ctx, request) -> None:
    """A cancelled or expired discount approval gives the quote back to its author as a draft."""
    quote = uow.quotes.get(request.subject_id) if request.subject_type == "quote" else None
    if quote is None or quote.status != q.PENDING or quote.approval_id != request.id:
        return
    before = snapshot(quote, QUOTE_FIELDS)
    quote.move_to(q.DRAFT)
    quote.approval_id = None
    _record(uow, ctx, quote, f"approval_{request.status}", before)


approval_svc.ON_APPROVED["discount"] = _discount_approved
approval_svc.ON_REJECTED["discount"] = _discount_rejected
approval_svc.ON_CLOSED["discount"] = _discount_closed
