"""One error schema for every non-2xx answer: domain errors, request validation, unknown
routes and methods, bad cursors, and crashes (500 without internals)."""
from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from bot.api import cursor
from bot.api.app import create_api
from domain import errors as e
from tests.api.conftest import serve

KEYS = {"code", "message", "field", "allowed", "details", "request_id"}
CASES = [  # error class → (status, code)
    (e.NotFound, 404, "not_found"),
    (e.PermissionDenied, 403, "permission_denied"),
    (e.Unauthenticated, 401, "unauthenticated"),
    (e.ValidationFailed, 422, "validation_failed"),
    (e.InvalidTransition, 409, "invalid_transition"),
    (e.Conflict, 409, "conflict"),
    (e.ApprovalRequired, 409, "approval_required"),
]


class Body(BaseModel):
    amount: int = Field(gt=0)
    name: str


def error_router() -> APIRouter:
    router = APIRouter(prefix="/_err")

    @router.get("/domain/{index}")
    def domain_error(index: int) -> dict:
        cls = CASES[index][0]
        raise cls("Stage ATB needs an approved quote", field="stage", allowed=["bid"], missing=["quote"],
                  details={"gate": "atb"})

    @router.post("/body")
    def body(payload: Body, page: int = Query(1, ge=1)) -> dict:
        return {}

    @router.get("/cursor")
    def read_cursor(after: str | None = None) -> dict:
        return {"after_id": cursor.decode(after)}

    @router.get("/crash")
    def crash() -> dict:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    return router


@pytest.fixture
def client(ctx):
    app = create_api(ctx)
    app.include_router(error_router())
    with serve(app) as c:
        yield c


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == KEYS
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[2] for c in CASES])
def test_domain_errors_map_to_status_and_schema(client, index):
    _, status, code = CASES[index]
    err = _error(client.get(f"/_err/domain/{index}"), status, code)
    assert err["message"] == "Stage ATB needs an approved quote"
    assert (err["field"], err["allowed"]) == ("stage", ["bid"])
    assert err["details"] == {"gate": "atb", "missing": ["quote"]}


def test_request_validation_uses_the_same_schema(client):
    err = _error(client.post("/_err/body", json={"amount": 0, "name": "x"}), 422, "validation_failed")
    assert err["field"] == "amount" and err["details"]["problems"][0]["loc"] == ["body", "amount"]
    err = _error(client.post("/_err/body?page=0", json={"amount": 1, "name": "x"}), 422, "validation_failed")
    assert err["field"] == "page"
    _error(client.post("/_err/body", content=b"{not json", headers={"Content-Type": "application/json"}),
           422, "validation_failed")


def test_unknown_path_and_method(client):
    _error(client.get("/no/such/thing"), 404, "not_found")
    response = client.delete("/_err/crash")
    _error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"


def test_a_bad_cursor_is_422_naming_the_field(client):
    for bad in ("nonsense", cursor.encode(5)[:-2] + "!!", "YWJj"):
        assert _error(client.get("/_err/cursor", params={"after": bad}), 422, "validation_failed")["field"] == "cursor"
    assert client.get("/_err/cursor", params={"after": cursor.encode(41)}).json() == {"after_id": 41}


def test_a_crash_is_500_without_internals_and_logged_with_the_request_id(client, caplog):
    with caplog.at_level(logging.ERROR, logger="ltc.api"):
        response = client.get("/_err/crash", headers={"X-Request-ID": "trace-7"})
    err = _error(response, 500, "internal")
    assert err["request_id"] == "trace-7"
    assert "hunter2" not in response.text and "RuntimeError" not in response.text and "Traceback" not in response.text
    assert any("trace-7" in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_unsafe_request_id_is_replaced(client):
    response = client.get("/no/such/thing", headers={"X-Request-ID": "x" * 65})
    assert response.json()["error"]["request_id"] != "x" * 65


def test_openapi_documents_the_error_schema(api):
    schema = api.get("/openapi.json").json()
    assert schema["info"] == {"title": "LTC Copilot API", "version": "1", "description": schema["info"]["description"]}
    assert "ErrorBody" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's own 422 shape is not ours
