"""Website lead capture: the public submission endpoint of each web form, and the forms' administration.

`POST /forms/{slug}/submissions` needs no API key: the form's own secret (header
`X-LTC-Form-Secret` or field `form_secret`) proves the post comes from its page or server. It takes
JSON or form fields and answers 202 `{"status": "received"}` whether the post made a lead, joined
an existing one or was judged spam (bots learn nothing); a plain HTML form with a redirect URL is
sent on with 303 instead. Invalid fields answer 422, so the page can show what to fix. Browsers
get CORS answers for the origins the form lists (none listed = any origin).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bot.api.deps import Caller, app_context, caller, uow_dep
from bot.api.errors import STATUS, ApiError, ErrorBody, error_response
from bot.api.routes._common import ERRORS, read, write
from domain.actor import Channel
from domain.errors import Conflict, LTCError, ValidationFailed
from domain.services import web_forms as svc
from domain.services.web_forms import FormCreate, FormSecretView, FormView

router = APIRouter(tags=["forms"], responses=ERRORS)

Slug = Annotated[str, Path(min_length=1, max_length=60, description="the form's slug, e.g. contact")]
MAX_BODY = 64 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
PREFLIGHT = {"Access-Control-Allow-Methods": "POST, OPTIONS",
             "Access-Control-Allow-Headers": "Content-Type, X-LTC-Form-Secret",
             "Access-Control-Max-Age": "600"}


class Received(BaseModel):
    status: Literal["received"] = "received"


class SubmissionIn(BaseModel):
    """What a web form may send (documentation: unknown fields are ignored)."""

    name: str | None = Field(None, max_length=100, description="the visitor's name (required)", examples=["张伟"])
    company: str | None = Field(None, max_length=200, description="their company (required)",
                                examples=["华东电力集团有限公司"])
    email: str | None = Field(None, max_length=200, description="email; an email or a phone is required",
                              examples=["zhang.wei@example.com"])
    phone: str | None = Field(None, max_length=50, description="phone, at least 6 digits", examples=["+86 21 5555 0101"])
    title: str | None = Field(None, max_length=100, description="job title")
    region: str | None = Field(None, max_length=50, description="sales region (default: the form's)")
    message: str | None = Field(None, max_length=4000, description="what they need")
    form_secret: str | None = Field(None, max_length=200, description="the form's secret, if not in the header")
    website: str | None = Field(None, max_length=200, description="honeypot: must stay empty (hidden from people)")
    rendered_at: str | None = Field(None, max_length=40,
                                    description="when the page showed the form (epoch seconds or ms, or ISO 8601)")


_SCHEMA = SubmissionIn.model_json_schema()
_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _SCHEMA},
    "application/x-www-form-urlencoded": {"schema": _SCHEMA},
}}}


# -- the public endpoint --------------------------------------------------------------------------

@router.post("/forms/{slug}/submissions", status_code=202, response_model=Received,
             summary="Submit a web form (public: the form's secret, no API key)", openapi_extra=_BODY_DOC,
             responses={303: {"description": "Received; a plain HTML form is sent to the form's redirect URL"},
                        413: {"model": ErrorBody, "description": "The post is larger than 64 KiB"},
                        415: {"model": ErrorBody, "description": "Neither JSON nor form fields"}})
async def submit_form(
    slug: Slug,
    request: Request,
    x_ltc_form_secret: Annotated[str | None, Header(max_length=200, description="the form's secret")] = None,
) -> Response:
    origin = request.headers.get("origin")
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    try:
        fields = await _fields(request, kind)
        secret = x_ltc_form_secret or fields.pop(svc.SECRET_FIELD, None)
        view = await run_in_threadpool(_submit, request, slug, secret, fields, origin)
        if view.outcome == "rejected":
            raise ValidationFailed(view.reason or "invalid fields", field=view.field)
    except LTCError as exc:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        return await _error(request, slug, origin, status, exc.code, exc.message, field=exc.field,
                            details=exc.details)
    except ApiError as exc:
        return await _error(request, slug, origin, exc.status, exc.code, exc.message)
    cors = _allow(origin)
    if kind in FORM_TYPES and view.redirect_url:
        return RedirectResponse(view.redirect_url, status_code=303, headers=cors)
    return JSONResponse(Received().model_dump(), status_code=202, headers=cors)


@router.options("/forms/{slug}/submissions", include_in_schema=False)
async def preflight(slug: Slug, request: Request) -> Response:
    origin = request.headers.get("origin")
    form = await run_in_threadpool(_public, request, slug)
    if form is None:
        return error_response(request, 404, "not_found", f"Web form '{slug}' does not exist or is disabled")
    if origin and form.allowed_origins and origin.rstrip("/").lower() not in form.allowed_origins:
        return error_response(request, 403, "permission_denied", f"This form does not accept posts from {origin}")
    return Response(status_code=204, headers={**_allow(origin), **PREFLIGHT})


async def _fields(request: Request, kind: str) -> dict[str, str]:
    declared = request.headers.get("content-length") or "0"
    if declared.isdigit() and int(declared) > MAX_BODY:  # refused before reading it
        raise ApiError(413, "too_large", f"A form post is at most {MAX_BODY // 1024} KiB")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "too_large", f"A form post is at most {MAX_BODY // 1024} KiB")
    if kind == "application/json":
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ValidationFailed("The body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ValidationFailed("Send the form's fields as one JSON object")
        out = {}
        for key, value in data.items():
            if isinstance(value, dict | list):
                raise ValidationFailed(f"{key}: a form field is text, not a list or object", field=str(key))
            out[str(key)] = "" if value is None else str(value)
        return out
    if kind in FORM_TYPES:
        form = await request.form(max_files=0, max_fields=svc.MAX_FIELDS * 2)
        out = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                out.setdefault(key, value)  # a repeated field keeps its first value
        return out
    raise ApiError(415, "unsupported_media_type",
                   "Send the fields as application/json or application/x-www-form-urlencoded")


def _submit(request: Request, slug: str, secret: str | None, fields: dict[str, str],
            origin: str | None) -> svc.SubmissionView:
    ctx = app_context(request)
    actor = dataclasses.replace(ctx.system_actor(Channel.API), request_id=request.state.request_id)
    # A browser's post counts against its address (flood check); a server posting with the secret in
    # the header and no Origin is trusted with many senders behind one address (a proxy, a CMS).
    server_post = origin is None and request.headers.get("x-ltc-form-secret") is not None
    remote = None if server_post or request.client is None else request.client.host
    for attempt in (1, 2):
        try:
            with ctx.uow() as uow:
                view = svc.submit(slug, secret, fields, actor=actor, uow=uow, remote=remote, origin=origin)
                uow.commit()
            return view
        except Conflict:
            # Two posts of one sender at once: the loser's lead broke a unique rule and nothing was
            # saved; run again and it joins the winner's lead.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _public(request: Request, slug: str) -> svc.PublicFormView | None:
    with app_context(request).uow() as uow:
        return svc.public_form(slug, uow=uow)


def _allow(origin: str | None) -> dict[str, str]:
    """The service has checked the origin against the form's list by now: echo it."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


async def _error(request: Request, slug: str, origin: str | None, status: int, code: str, message: str,
                 *, field: str | None = None, details: dict | None = None) -> JSONResponse:
    """An error a browser's script may read when the form exists and allows its origin."""
    headers = {}
    if origin and status != 403:
        form = await run_in_threadpool(_public, request, slug)
        if form is not None and (not form.allowed_origins or origin.rstrip("/").lower() in form.allowed_origins):
            headers = _allow(origin)
    if status == 401:
        headers["WWW-Authenticate"] = "X-LTC-Form-Secret"
    return error_response(request, status, code, message, field=field, details=details, headers=headers or None)


# -- administration (API key with forms:read / forms:write; admin or sales ops) -------------------

@router.get("/forms", response_model=list[FormView], summary="List web forms with their submission counts")
def list_forms(who: Caller = Depends(caller("forms:read")), uow=Depends(uow_dep)):
    return read(uow, svc.list_forms, actor=who.actor)


@router.post("/forms", response_model=FormSecretView, status_code=201,
             summary="Create a web form (its secret is returned this once)")
def create_form(data: FormCreate, who: Caller = Depends(caller("forms:write")), uow=Depends(uow_dep)):
    return write(uow, svc.create_form, data.model_dump(mode="json"), actor=who.actor)


@router.post("/forms/{slug}/rotate-secret", response_model=FormSecretView,
             summary="Give a web form a new secret (the old one stops working)")
def rotate_secret(slug: Slug, who: Caller = Depends(caller("forms:write")), uow=Depends(uow_dep)):
    return write(uow, svc.rotate_secret, slug, actor=who.actor)


@router.post("/forms/{slug}/disable", response_model=FormView, summary="Disable a web form (its endpoint answers 404)")
def disable_form(slug: Slug, who: Caller = Depends(caller("forms:write")), uow=Depends(uow_dep)):
    return write(uow, svc.set_form_active, slug, False, actor=who.actor)


@router.post("/forms/{slug}/enable", response_model=FormView, summary="Enable a disabled web form again")
def enable_form(slug: Slug, who: Caller = Depends(caller("forms:write")), uow=Depends(uow_dep)):
    return write(uow, svc.set_form_active, slug, True, actor=who.actor)
