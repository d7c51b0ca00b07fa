"""Outbound webhooks: endpoints (ERP/billing receivers), the delivery log, replay.

Admin or sales ops only (the key's user), with the scopes webhooks:read / webhooks:write. The
signing secret is in the answer of `POST /webhooks/endpoints` only. Event types, payloads, headers
and the signature scheme: bot/webhooks/README.md.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from bot.api import cursor as cursors
from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import DEFAULT, ERRORS, MAX_ID, Body, Cursor, Id, Limit, after, read, write
from domain.services import webhooks as svc
from domain.services.webhooks import DeliveryView, EndpointView

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERRORS)

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, description="the endpoint's id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="the delivery's id")]
EventType = Literal[svc.EVENT_TYPES]
Subscription = Literal[(*svc.EVENT_TYPES, svc.ALL_EVENTS)]
Status = Literal[svc.STATUSES]
URL_PATTERN = r"^https?://([A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!-~]*)?$"


class EndpointIn(Body):
    url: str = Field(min_length=1, max_length=2000, pattern=URL_PATTERN,
                     description="where events are POSTed: an http(s) URL in ASCII (punycode for IDN hosts)",
                     examples=["https://erp.example.com/hooks/ltc"])
    events: list[Subscription] = Field(min_length=1, max_length=len(svc.EVENT_TYPES) + 1,
                                       description="event types to receive, or '*' for all",
                                       examples=[["invoice.issued", "payment.recorded"]])
    description: str | None = Field(None, max_length=200, examples=["ERP billing"])


@router.get("/endpoints", response_model=Page[EndpointView], summary="List webhook endpoints")
def list_endpoints(active: bool | None = None, who: Caller = Depends(caller("webhooks:read")),
                   uow=Depends(uow_dep)):
    """Every endpoint (never its secret); `active` filters."""
    return {"items": read(uow, svc.list_endpoints, actor=who.actor, active=active), "next_cursor": None}


@router.post("/endpoints", response_model=EndpointView, status_code=201, summary="Add a webhook endpoint")
def create_endpoint(data: EndpointIn, who: Caller = Depends(caller("webhooks:write")), uow=Depends(uow_dep)):
    """Subscribe a URL to event types. The answer carries the signing secret: the only time it is shown."""
    return write(uow, svc.add_endpoint, data.model_dump(), actor=who.actor)


@router.get("/endpoints/{endpoint_id}", response_model=EndpointView, summary="Get a webhook endpoint")
def get_endpoint(endpoint_id: EndpointId, who: Caller = Depends(caller("webhooks:read")), uow=Depends(uow_dep)):
    return read(uow, svc.get_endpoint, endpoint_id, actor=who.actor)


@router.post("/endpoints/{endpoint_id}/disable", response_model=EndpointView, summary="Disable an endpoint")
def disable_endpoint(endpoint_id: EndpointId, who: Caller = Depends(caller("webhooks:write")),
                     uow=Depends(uow_dep)):
    """It gets nothing until enabled again; its pending deliveries wait."""
    return write(uow, svc.disable_endpoint, endpoint_id, actor=who.actor)


@router.post("/endpoints/{endpoint_id}/enable", response_model=EndpointView, summary="Enable an endpoint")
def enable_endpoint(endpoint_id: EndpointId, who: Caller = Depends(caller("webhooks:write")),
                    uow=Depends(uow_dep)):
    return write(uow, svc.enable_endpoint, endpoint_id, actor=who.actor)


@router.get("/deliveries", response_model=Page[DeliveryView], summary="The delivery log")
def list_deliveries(endpoint_id: Id | None = None, status: Status | None = None, event_type: EventType | None = None,
                    limit: Limit = DEFAULT, cursor: Cursor = None, who: Caller = Depends(caller("webhooks:read")),
                    uow=Depends(uow_dep)):
    """Deliveries newest first (status, attempts, last status code and error); filter by endpoint, status, type."""
    items = read(uow, svc.list_deliveries, actor=who.actor, endpoint_id=endpoint_id, status=status,
                 event_type=event_type, before_id=after(cursor), limit=limit)
    return {"items": items, "next_cursor": cursors.next_cursor(items, limit)}


@router.get("/deliveries/{delivery_id}", response_model=DeliveryView, summary="Get a delivery")
def get_delivery(delivery_id: DeliveryId, who: Caller = Depends(caller("webhooks:read")), uow=Depends(uow_dep)):
    """One delivery with the JSON body sent and every attempt (time, status code, error, duration)."""
    return read(uow, svc.get_delivery, delivery_id, actor=who.actor)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryView, status_code=202,
             summary="Replay a delivery")
def replay_delivery(delivery_id: DeliveryId, who: Caller = Depends(caller("webhooks:write")),
                    uow=Depends(uow_dep)):
    """Send it again: the same delivery (same event id, same body) goes back to pending, due now."""
    return write(uow, svc.replay_delivery, delivery_id, actor=who.actor)
