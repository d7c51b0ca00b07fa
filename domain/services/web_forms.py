"""Website lead capture: web forms (a public endpoint each, with its own secret) and their submissions.

Admins and sales ops create, list, rotate and disable forms; each change is audited and the secret
is shown once (only its SHA-256 is stored). A submission runs as the system user on the api
channel: secret check (constant time), spam checks (a honeypot field, links, a time trap, a flood
of posts from one address), the same field rules as create_lead, de-duplication against existing
leads (the message joins that lead as a note), otherwise a new lead through the leads service, so
assignment, audit and the LeadCreated/LeadAssigned events (the owner's chat notice) are the usual
ones. Every submission leaves one row in web_form_submissions: outcome, lead, reason and a keyed
hash of the sender's address, never the fields themselves.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from pydantic import Field, field_validator
from sqlalchemy import func, insert, select, update

from domain.actor import Actor
from domain.db import tables as t
from domain.errors import Conflict, NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from domain.model.leads import OPEN_STATUSES
from domain.model.message_keys import keyed
from domain.model.vocab import LeadSource, Role
from domain.normalize import email_norm, identity_norm, phone_norm
from domain.rbac import UseCase
from domain.services import activities as activity_svc
from domain.services import leads as lead_svc
from domain.services.base import Ctx, audit, begin, parse
from domain.services.schemas import Input, Name, View

wf, ws = t.web_forms, t.web_form_submissions

MANAGERS = frozenset({Role.ADMIN, Role.SALES_OPS})
SECRET_PREFIX = "ltcf_"
OUTCOMES = ("created", "merged", "spam", "rejected")

# The public form's field names (what a web page sends) → the lead's fields.
FIELD_MAP = {"name": "contact_name", "contact_name": "contact_name", "company": "company", "title": "title",
             "email": "email", "phone": "phone", "region": "region", "message": "need", "need": "need"}
HONEYPOT = "website"  # hidden from people by the page's CSS; bots fill every field in
SECRET_FIELD = "form_secret"
RENDERED_AT = "rendered_at"  # when the page showed the form (epoch seconds or ms, or ISO 8601)
TRACKING = ("page", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

DEDUP_WINDOW = timedelta(days=30)
MAX_FIELDS = 50
MAX_LINKS = 2  # more links than this in one message is spam
MIN_FILL = timedelta(seconds=3)  # nobody types a contact form in less
FLOOD_WINDOW, FLOOD_LIMIT = timedelta(minutes=10), 10  # posts from one address to one form
_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")
_URL = re.compile(r"^https?://\S+$")


# -- schemas ------------------------------------------------------------------------------------

class FormCreate(Input):
    name: Name
    slug: str = Field(min_length=2, max_length=60, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                      description="its address: lowercase letters, digits and dashes, e.g. contact",
                      examples=["contact"])
    source: LeadSource = Field(LeadSource.WEBSITE, description="the source of the leads it makes")
    region: str = Field("", max_length=50, description="the leads' region when the visitor gives none (routing)")
    allowed_origins: list[str] = Field(default_factory=list, max_length=20,
                                       description="web origins allowed to post from a browser, "
                                                   "e.g. https://www.example.com; empty = any")
    redirect_url: str | None = Field(None, max_length=500,
                                     description="where a plain HTML form sends the visitor after posting")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        out = []
        for origin in v:
            o = origin.strip().rstrip("/").lower()
            if not _ORIGIN.match(o):
                raise ValueError(f"'{origin}' is not an origin (scheme://host[:port], no path)")
            if o not in out:
                out.append(o)
        return out

    @field_validator("redirect_url")
    @classmethod
    def _redirect(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not _URL.match(v):
            raise ValueError("not an http(s) URL")
        return v


class FormView(View):
    id: int
    slug: str
    name: str
    source: str
    region: str
    allowed_origins: list[str]
    redirect_url: str | None
    active: bool
    created_by: int
    created_at: datetime
    secret_rotated_at: datetime | None
    submissions: dict[str, int] = Field(default_factory=dict, description="how many, by outcome")
    last_received_at: datetime | None = None


class FormSecretView(View):
    form: FormView
    secret: str = Field(description="shown once; only its hash is kept")
    message: str


class PublicFormView(View):
    """What the public endpoint may know before a secret is checked (CORS, redirects)."""

    allowed_origins: list[str]
    redirect_url: str | None


class SubmissionView(View):
    id: int
    form_id: int
    outcome: str
    lead_id: int | None
    lead_ref: str | None
    reason: str | None
    field: str | None = None
    redirect_url: str | None = None


# -- administration -----------------------------------------------------------------------------

def _begin_manager(uow, actor: Actor) -> Ctx:
    ctx = begin(uow, actor, UseCase.SEARCH_RECORDS)  # everyone passes: resolves the user
    if not ctx.user.roles & MANAGERS:
        have = ", ".join(sorted(r.value for r in ctx.user.roles)) or "no role"
        allowed = sorted(r.value for r in MANAGERS)
        raise PermissionDenied(f"manage_web_forms needs one of the roles {', '.join(allowed)}; you have {have}",
                               allowed=allowed, details=keyed("rbac.needs_role", use_case="manage_web_forms",
                                                              roles=", ".join(allowed), have_roles=have))
    return ctx


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> tuple[str, str]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(24)
    return secret, hash_secret(secret)


def _row(uow, slug: str, *, for_update: bool = False):
    q = select(wf).where(wf.c.slug == (slug or "").strip().lower())
    row = uow.session.execute(q.with_for_update() if for_update else q).first()
    if row is None:
        raise NotFound(f"Web form '{slug}' does not exist", field="slug")
    return row


def _view(row, counts: dict[str, int] | None = None, last: datetime | None = None) -> FormView:
    return FormView(id=row.id, slug=row.slug, name=row.name, source=row.source, region=row.region,
                    allowed_origins=list(row.allowed_origins or []), redirect_url=row.redirect_url,
                    active=bool(row.active), created_by=row.created_by, created_at=row.created_at,
                    secret_rotated_at=row.secret_rotated_at, submissions=counts or {}, last_received_at=last)


def _public(row) -> dict:
    """A form as the audit trail shows it (never its secret or hash)."""
    return {"slug": row.slug, "name": row.name, "source": row.source, "region": row.region,
            "allowed_origins": list(row.allowed_origins or []), "redirect_url": row.redirect_url,
            "active": bool(row.active)}


def create_form(data: FormCreate | dict, *, actor: Actor, uow) -> FormSecretView:
    """A new web form; its secret is returned this once."""
    ctx = _begin_manager(uow, actor)
    cmd = parse(FormCreate, data)
    if uow.session.execute(select(wf.c.id).where(wf.c.slug == cmd.slug)).first():
        raise Conflict(f"A web form with the slug '{cmd.slug}' already exists; pick another", field="slug")
    secret, digest = _new_secret()
    form_id = uow.session.execute(insert(wf).values(
        slug=cmd.slug, name=cmd.name, secret_hash=digest, source=cmd.source.value, region=cmd.region,
        allowed_origins=cmd.allowed_origins, redirect_url=cmd.redirect_url, active=True,
        created_by=ctx.user.id, created_at=uow.now())).inserted_primary_key[0]
    row = _row(uow, cmd.slug)
    audit(uow, ctx, "web_form", form_id, "create", None, _public(row))
    return FormSecretView(form=_view(row), secret=secret,
                          message=f"Web form '{row.slug}' created; keep its secret now, it is not shown again")


def list_forms(*, actor: Actor, uow) -> list[FormView]:
    _begin_manager(uow, actor)
    counts: dict[int, dict[str, int]] = {}
    last: dict[int, datetime] = {}
    q = select(ws.c.form_id, ws.c.outcome, func.count(), func.max(ws.c.received_at)).group_by(ws.c.form_id, ws.c.outcome)
    for form_id, outcome, n, at in uow.session.execute(q):
        counts.setdefault(form_id, {})[outcome] = n
        if form_id not in last or at > last[form_id]:
            last[form_id] = at
    rows = uow.session.execute(select(wf).order_by(wf.c.id)).all()
    return [_view(r, counts.get(r.id, {}), last.get(r.id)) for r in rows]


def rotate_secret(slug: str, *, actor: Actor, uow) -> FormSecretView:
    """A new secret for the form; the old one stops working at once."""
    ctx = _begin_manager(uow, actor)
    row = _row(uow, slug, for_update=True)
    secret, digest = _new_secret()
    now = uow.now()
    uow.session.execute(update(wf).where(wf.c.id == row.id).values(secret_hash=digest, secret_rotated_at=now))
    audit(uow, ctx, "web_form", row.id, "rotate_secret", {"secret_rotated_at": _iso(row.secret_rotated_at)},
          {"secret_rotated_at": _iso(now)})
    return FormSecretView(form=_view(_row(uow, row.slug)), secret=secret,
                          message=f"Web form '{row.slug}' has a new secret; the old one no longer works")


def set_form_active(slug: str, active: bool, *, actor: Actor, uow) -> FormView:
    """Disable a form (its endpoint answers 404) or enable it again."""
    ctx = _begin_manager(uow, actor)
    row = _row(uow, slug, for_update=True)
    if bool(row.active) != active:
        uow.session.execute(update(wf).where(wf.c.id == row.id).values(active=active))
        audit(uow, ctx, "web_form", row.id, "enable" if active else "disable",
              {"active": bool(row.active)}, {"active": active})
    return _view(_row(uow, row.slug))


def disable_form(slug: str, *, actor: Actor, uow) -> FormView:
    return set_form_active(slug, False, actor=actor, uow=uow)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- the public side ----------------------------------------------------------------------------

def public_form(slug: str, *, uow) -> PublicFormView | None:
    """An active form's browser settings (allowed origins, redirect), or None. Nothing secret."""
    row = uow.session.execute(select(wf).where(wf.c.slug == (slug or "").strip().lower(), wf.c.active)).first()
    if row is None:
        return None
    return PublicFormView(allowed_origins=list(row.allowed_origins or []), redirect_url=row.redirect_url)


def submit(slug: str, secret: str | None, fields: dict[str, str], *, actor: Actor, uow,
           remote: str | None = None, origin: str | None = None, now: datetime | None = None) -> SubmissionView:
    """One post of a public form, as the system user on the api channel (`actor`).

    Raises NotFound (unknown or disabled form), Unauthenticated (wrong or missing secret),
    PermissionDenied (a browser origin the form does not allow). Otherwise the outcome is
    logged and returned: created, merged, spam, or rejected (with the reason and the field).
    """
    begin(uow, actor, UseCase.CREATE_LEAD)
    now = now or uow.now()
    row = uow.session.execute(select(wf).where(wf.c.slug == (slug or "").strip().lower())).first()
    if row is None or not row.active:  # one answer for both: a disabled form reveals nothing
        raise NotFound(f"Web form '{slug}' does not exist or is disabled", field="slug")
    # Constant time whatever the input: a missing secret is compared like a wrong one.
    if not hmac.compare_digest(hash_secret(secret or ""), row.secret_hash):
        raise Unauthenticated("Wrong or missing form secret (header X-LTC-Form-Secret or field form_secret)")
    allowed = list(row.allowed_origins or [])
    if origin and allowed and origin.rstrip("/").lower() not in allowed:
        raise PermissionDenied(f"This form does not accept posts from {origin}", field="origin")
    remote_hash = _remote_hash(row.secret_hash, remote)
    # NUL is no text anyone types, and PostgreSQL refuses it in a string.
    fields = {str(k).strip().lower(): ("" if v is None else str(v)).replace("\x00", "").strip()
              for k, v in fields.items()}

    def log(outcome: str, *, lead=None, reason: str | None = None, field: str | None = None) -> SubmissionView:
        sub_id = uow.session.execute(insert(ws).values(
            form_id=row.id, received_at=now, outcome=outcome, lead_id=lead.id if lead else None,
            reason=(reason or "")[:300] or None, remote_hash=remote_hash)).inserted_primary_key[0]
        return SubmissionView(id=sub_id, form_id=row.id, outcome=outcome, lead_id=lead.id if lead else None,
                              lead_ref=lead.ref if lead else None, reason=reason, field=field,
                              redirect_url=row.redirect_url)

    spam = _spam_reason(uow, row.id, remote_hash, fields, now)
    if spam:
        return log("spam", reason=spam)
    try:
        cmd = _lead_input(row, fields)
    except ValidationFailed as e:
        return log("rejected", reason=e.message, field=e.field)
    found = uow.leads.find_duplicate(email_norm(cmd.email), phone_norm(cmd.phone),
                                     identity_norm(cmd.company, cmd.contact_name))
    if found:
        lead, why = found
        return _merge(uow, actor, row, lead, cmd, why, now, log)
    view = lead_svc.create_lead(cmd, actor=actor, uow=uow)
    lead = uow.leads.get(view.id)
    if not view.created:  # created meanwhile by someone else: the leads service returned it
        return _merge(uow, actor, row, lead, cmd, "same details", now, log)
    return log("created", lead=lead, reason=view.message)


def _remote_hash(key: str, remote: str | None) -> str | None:
    """Pseudonymous: keyed with the form's secret hash, so the log alone does not give addresses back."""
    if not remote:
        return None
    return hmac.new(key.encode(), remote.encode(), hashlib.sha256).hexdigest()[:32]


def _spam_reason(uow, form_id: int, remote_hash: str | None, fields: dict[str, str], now: datetime) -> str | None:
    if fields.get(HONEYPOT):
        return "honeypot field filled in"
    texts = [v for k, v in fields.items() if k not in (HONEYPOT, SECRET_FIELD, RENDERED_AT, *TRACKING)]
    links = sum(len(_LINK.findall(v)) for v in texts)
    if links > MAX_LINKS:
        return f"{links} links in the message"
    if any(_LINK.search(fields.get(k, "")) for k in ("name", "contact_name", "company")):
        return "a link in the name or company"
    rendered = _instant(fields.get(RENDERED_AT))
    if rendered is not None and timedelta(0) <= now - rendered < MIN_FILL:
        return f"filled in within {(now - rendered).total_seconds():.1f} s"
    if remote_hash is not None:
        recent = uow.session.scalar(select(func.count()).where(
            ws.c.form_id == form_id, ws.c.remote_hash == remote_hash, ws.c.received_at > now - FLOOD_WINDOW))
        if recent >= FLOOD_LIMIT:
            return f"more than {FLOOD_LIMIT} posts from one address within {FLOOD_WINDOW.seconds // 60} minutes"
    return None


def _instant(text: str | None) -> datetime | None:
    """A rendered_at value as naive UTC; anything unreadable is no evidence either way."""
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if number > 1e12:  # JavaScript's Date.now() counts milliseconds
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def _lead_input(form, fields: dict[str, str]) -> lead_svc.LeadCreate:
    if len(fields) > MAX_FIELDS:
        raise ValidationFailed(f"Too many fields ({len(fields)}); a form sends at most {MAX_FIELDS}")
    data: dict[str, str] = {}
    for name, target in FIELD_MAP.items():
        if fields.get(name) and target not in data:
            data[target] = fields[name]
    for required, label in (("contact_name", "name"), ("company", "company")):
        if not data.get(required):
            raise ValidationFailed(f"{label}: required", field=label)
    if not data.get("email") and not data.get("phone"):
        raise ValidationFailed("Give an email address or a phone number", field="email")
    data.setdefault("region", form.region)
    tracking = "; ".join(f"{k}={fields[k]}" for k in TRACKING if fields.get(k))
    data["notes"] = f"Web form: {form.name} ({form.slug})" + (f"; {tracking}" if tracking else "")
    try:
        cmd = parse(lead_svc.LeadCreate, {"source": form.source, **data})
    except ValidationFailed as e:  # name the form's field, not the lead's
        public = {v: k for k, v in FIELD_MAP.items() if k not in ("contact_name", "need")}
        field = public.get(e.field or "", e.field)
        raise ValidationFailed(e.message.replace(f"{e.field}:", f"{field}:", 1) if e.field else e.message,
                               field=field) from None
    return cmd


def _merge(uow, actor: Actor, form, lead, cmd: lead_svc.LeadCreate, why: str, now: datetime,
           log) -> SubmissionView:
    """The sender is already a lead: their message joins it as a note, no second lead."""
    details = [f"{label}: {value}" for label, value in (
        ("Name", cmd.contact_name), ("Company", cmd.company), ("Title", cmd.title), ("Email", cmd.email),
        ("Phone", cmd.phone)) if value]
    body = "\n".join([*details, "", cmd.need or "(no message)"])
    activity_svc.log_activity({"kind": "note", "subject": f"Web form: {form.name}"[:200], "body": body[:4000],
                               "lead_id": lead.id}, actor=actor, uow=uow)
    recent = lead.created_at is not None and now - lead.created_at <= DEDUP_WINDOW
    # The schema keeps one lead per email, phone and company + contact, so an older or closed match
    # still takes the message; the reason says so, for whoever reads the log.
    is_open = lead.status in {s.value for s in OPEN_STATUSES}
    note = "" if recent and is_open else f" ({lead.status}, created {lead.created_at:%Y-%m-%d})"
    return log("merged", lead=lead, reason=f"{why} as {lead.ref}{note}")
