"""Who may call what: API keys (missing, wrong, revoked, inactive user), scopes × read/write,
RBAC on top of scopes, the audit channel, and the per-key rate limit."""
from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends
from sqlalchemy import update

from bot.api.app import create_api
from bot.api.deps import Caller, caller, uow_dep
from domain.db import tables as t
from domain.services import api_keys as key_svc
from domain.services import leads as lead_svc
from tests.api.conftest import bearer, serve

SCOPED = [s for s in key_svc.SCOPES if s != "*"]


def probe_router() -> APIRouter:
    """A test-only route per scope, plus one that writes through a domain service."""
    router = APIRouter(prefix="/_probe")
    for scope in SCOPED:
        def probe(who: Caller = Depends(caller(scope))) -> dict:
            return {"key": who.name}
        router.add_api_route(f"/{scope.replace(':', '/')}", probe, methods=["GET"], name=f"probe_{scope}")

    @router.post("/lead", status_code=201)
    def make_lead(who: Caller = Depends(caller("leads:write")), uow=Depends(uow_dep)) -> dict:
        with uow:
            view = lead_svc.create_lead({"source": "website", "company": "Probe Ltd", "contact_name": "Ann"},
                                        actor=who.actor, uow=uow)
            uow.commit()
        return {"id": view.id}

    return router


@pytest.fixture
def probe(ctx, org):
    app = create_api(ctx, rate_per_minute=1_000_000)
    app.include_router(probe_router())
    with serve(app) as client:
        yield client


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    assert set(body) == {"code", "message", "field", "allowed", "details", "request_id"}
    return body


# --- authentication -----------------------------------------------------------------------------

def test_no_key_is_unauthenticated(api):
    response = api.get("/whoami")
    _error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ltc_abc", "Bearer ltc__x", "Basic dXNlcjpwdw==",
                                    "Bearer ltc_000000000000_" + "A" * 43])
def test_malformed_or_unknown_key_is_unauthenticated(api, make_key, header):
    make_key("*")
    _error(api.get("/whoami", headers={"Authorization": header}), 401, "unauthenticated")


def test_right_prefix_wrong_secret_is_unauthenticated(api, make_key):
    key = make_key("*")
    forged = key[: key.rindex("_") + 1] + "x" * 43
    body = _error(api.get("/whoami", headers=bearer(forged)), 401, "unauthenticated")
    assert body["message"] == "Invalid API key"  # the same words as an unknown prefix: nothing to probe


def test_revoked_key_is_refused_from_the_next_call(api, make_key, ctx, org):
    key = make_key("*")
    assert api.get("/whoami", headers=bearer(key)).status_code == 200
    with ctx.uow() as uow:
        key_id = key_svc.list_keys(actor=org.actor("admin"), uow=uow)[0].id
        key_svc.revoke_key(key_id, actor=org.actor("admin"), uow=uow)
        uow.commit()
    _error(api.get("/whoami", headers=bearer(key)), 401, "unauthenticated")


def test_key_of_a_deactivated_user_is_refused(api, make_key, engine, org):
    key = make_key("*", user="rep")
    with engine.begin() as conn:
        conn.execute(update(t.users).where(t.users.c.id == org["rep"]).values(active=False))
    _error(api.get("/whoami", headers=bearer(key)), 401, "unauthenticated")


def test_whoami_names_key_user_and_scopes(api, make_key, org, db):
    key = make_key(["leads:read", "payments:write"], user="finance", name="erp")
    response = api.get("/whoami", headers=bearer(key))
    assert response.status_code == 200
    assert response.json() | {"key_id": 0} == {"key_id": 0, "key_name": "erp", "user_id": org["finance"],
                                                "user_email": "finance@example.com",
                                                "scopes": ["leads:read", "payments:write"]}
    assert db.rows(t.api_keys)[0].last_used_at is not None


# --- scopes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("granted", ["leads:read", "leads:write", "payments:write", "webhooks:read"])
def test_a_scope_opens_its_routes_only(probe, make_key, granted):
    key = make_key(granted)
    for scope in SCOPED:
        response = probe.get(f"/_probe/{scope.replace(':', '/')}", headers=bearer(key))
        if scope == granted:
            assert response.status_code == 200, (scope, response.text)
        else:
            body = _error(response, 403, "scope_missing")
            assert body["details"]["scope"] == scope  # write does not imply read, nor read write


def test_star_opens_every_scope(probe, make_key):
    key = make_key("*")
    assert all(probe.get(f"/_probe/{s.replace(':', '/')}", headers=bearer(key)).status_code == 200 for s in SCOPED)


def test_every_keyed_operation_refuses_a_call_without_key(api):
    """Every operation that declares the ApiKey scheme (other helpers' routes too) answers 401 without one."""
    schema = api.get("/openapi.json").json()
    checked = 0
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if not any("ApiKey" in s for s in op.get("security", [])):
                continue
            url = "".join("1" if part.startswith("{") else part for part in _split(path))
            response = api.request(method.upper(), url, json={})
            assert response.status_code == 401, (method, path, response.text)
            checked += 1
    assert checked >= 1


def _split(path: str) -> list[str]:
    import re

    return re.split(r"(\{[^}]+\})", path)


# --- RBAC on top of scopes, audit channel --------------------------------------------------------

def test_scope_does_not_override_roles(probe, make_key):
    key = make_key("leads:write", user="finance")  # finance may not create leads, whatever the key says
    _error(probe.post("/_probe/lead", headers=bearer(key)), 403, "permission_denied")


def test_writes_are_audited_as_the_service_user_on_channel_api(probe, make_key, db, org):
    key = make_key("leads:write", user="sales_ops")
    response = probe.post("/_probe/lead", headers={**bearer(key), "X-Request-ID": "erp-req-42"})
    assert response.status_code == 201, response.text
    rows = db.rows(t.audit_log, t.audit_log.c.entity == "lead")
    assert [(r.actor_id, r.channel, r.request_id) for r in rows] == [(org["sales_ops"], "api", "erp-req-42")]
    assert response.headers["X-Request-ID"] == "erp-req-42"


def test_every_call_is_audited_reads_and_refusals_too(api, make_key, db, org):
    key = make_key("leads:read", user="sales_ops")
    assert api.get("/leads", headers={**bearer(key), "X-Request-ID": "erp-read-1"}).status_code == 200
    assert api.post("/leads", json={"company": "X"}, headers={**bearer(key), "X-Request-ID": "erp-w-2"}
                    ).status_code == 403  # no leads:write
    assert api.get("/leads").status_code == 401  # no key: no user to record
    rows = db.rows(t.audit_log, t.audit_log.c.entity == "api_call")
    assert [(r.actor_id, r.channel, r.request_id, r.action, r.after) for r in rows] == [
        (org["sales_ops"], "api", "erp-read-1", "GET /leads", {"status": 200}),
        (org["sales_ops"], "api", "erp-w-2", "POST /leads", {"status": 403}),
    ]


# --- rate limit -----------------------------------------------------------------------------------

def test_rate_limit_is_per_key_with_retry_after(ctx, org, make_key):
    first, second = make_key("*", name="a"), make_key("*", name="b")
    with serve(create_api(ctx, rate_per_minute=2)) as client:
        assert [client.get("/whoami", headers=bearer(first)).status_code for _ in range(2)] == [200, 200]
        limited = client.get("/whoami", headers=bearer(first))
        body = _error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) >= 1
        assert body["details"]["limit_per_minute"] == 2
        assert client.get("/whoami", headers=bearer(second)).status_code == 200  # its own bucket


# --- the key's life cycle through the CLI --------------------------------------------------------

def test_cli_creates_lists_and_revokes_a_working_key(api, db_url, capsys, db):
    from bot.cli import main

    assert main(["--db", db_url, "apikey", "create", "--name", "erp", "--user", "finance@example.com",
                 "--scope", "payments:write", "--scope", "invoices:read"]) == 0
    key = next(line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("ltc_"))
    assert api.get("/whoami", headers=bearer(key)).json()["scopes"] == ["invoices:read", "payments:write"]
    [row] = db.rows(t.api_keys)
    assert key.split("_", 2)[2] not in str(tuple(row))  # only the hash is stored

    assert main(["--db", db_url, "apikey", "list"]) == 0
    listing = capsys.readouterr().out
    assert "erp" in listing and "finance@example.com" in listing and key not in listing

    assert main(["--db", db_url, "apikey", "revoke", str(row.id)]) == 0
    assert api.get("/whoami", headers=bearer(key)).status_code == 401
    assert main(["--db", db_url, "apikey", "revoke", str(row.id)]) == 1  # already revoked: said plainly
    assert "already revoked" in capsys.readouterr().err
    assert [r.action for r in db.rows(t.audit_log, t.audit_log.c.entity == "api_key")] == ["create", "revoke"]


def test_only_an_admin_manages_keys(api, db_url, capsys):
    from bot.cli import main

    assert main(["--db", db_url, "apikey", "create", "--as", "sales_ops@example.com", "--name", "x",
                 "--user", "rep@example.com", "--scope", "*"]) == 1
    assert "manage_api_keys" in capsys.readouterr().err


def test_ltc_serve_mounts_the_api_at_api_v1(ctx, make_key):
    from fastapi.testclient import TestClient

    from bot.server import create_server

    class NoBackground:
        def start(self): return self

        def stop(self): pass

    with TestClient(create_server(ctx, background=NoBackground())) as client:
        assert client.get("/api/v1/whoami", headers=bearer(make_key("*"))).status_code == 200
        schema = client.get("/api/v1/openapi.json").json()
        assert schema["servers"] == [{"url": "/api/v1"}] and "/whoami" in schema["paths"]
        assert client.get("/api/v1/docs").status_code == 200
        assert client.get("/healthz").json()["ok"] is True
