"""Bearer tokens end to end: one bare 401 for every bad token, only a hash stored, no token in the logs,
SUPER_ADMIN tokens out of an ADMIN's reach (in Python and in the database), and the audited CLI."""

from __future__ import annotations

import hashlib
import json
import logging

import psycopg
import pytest
import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from tests.support.cli import run
from worker.db import session_scope
from worker.logging import configure_logging
from worker.models import ApiToken, AuditAction, AuditLog
from worker.web.admin.app import create_admin_app

BARE_401 = {"code": "unauthorized", "message": "a valid bearer token is required", "field": None}


def test_every_bad_token_gets_the_same_bare_401(api: TestClient, world: World) -> None:
    """Missing, malformed, unknown, revoked and expired tokens are indistinguishable from outside."""
    unknown = "mwk_" + "A" * 43
    with session_scope() as s:
        s.execute(update(ApiToken).where(ApiToken.id == world.token_ids["ADMIN"])
                  .values(revoked_at=func.now(), revoked_by="cli:test"))
        s.execute(update(ApiToken).where(ApiToken.id == world.token_ids["CUSTOMER_SUPPORT"])
                  .values(expires_at=func.now()))
    attempts = {
        "missing": {},
        "not-bearer": {"Authorization": f"Basic {world.secrets['SUPER_ADMIN']}"},
        "malformed": {"Authorization": "Bearer nope"},
        "unknown": {"Authorization": f"Bearer {unknown}"},
        "revoked": world.auth("ADMIN"),
        "expired": world.auth("CUSTOMER_SUPPORT"),
    }
    for name, headers in attempts.items():
        response = api.get("/stations", headers=headers)
        assert response.status_code == 401, name
        assert response.json() == BARE_401, name
        assert response.headers["www-authenticate"] == "Bearer", name
    assert api.get("/stations", headers=world.auth("SUPER_ADMIN")).status_code == 200


def test_only_the_hash_is_stored(world: World) -> None:
    """The row holds SHA-256 of the token and nothing from which the token can be read back."""
    secret = world.secrets["SUPER_ADMIN"]
    with session_scope() as s:
        row = s.execute(select(ApiToken).where(ApiToken.id == world.token_ids["SUPER_ADMIN"])).scalar_one()
        dumped = json.dumps({c.name: str(getattr(row, c.key)) for c in ApiToken.__table__.columns})
        assert row.token_hash == hashlib.sha256(secret.encode()).digest()
        audit = " ".join(json.dumps(r.new_values) + r.actor for r in s.execute(select(AuditLog)).scalars())
    assert secret not in dumped
    assert secret[4:] not in dumped
    assert secret[4:] not in audit


def test_a_token_never_appears_in_the_logs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Requests that succeed, fail auth or fail validation log nothing of the token (app logging configured)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("DEBUG", "json")
        with TestClient(create_admin_app(), raise_server_exceptions=False) as api:
            api.get("/threads", headers=world.auth("SUPER_ADMIN"))
            api.get("/threads", headers={"Authorization": world.auth("ADMIN")["Authorization"] + "x"})
            api.post("/sends", json={"nope": 1}, headers=world.auth("STATION_MANAGER"))
            created = api.post("/tokens", json={"name": "new", "role": "ADMIN"}, headers=world.auth("SUPER_ADMIN"))
        logging.getLogger("uvicorn.access").info('"GET /threads" Authorization: Bearer %s', world.secrets["ADMIN"])
        out = capsys.readouterr()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
    logged = out.err + out.out
    for secret in [*world.secrets.values(), created.json()["token"]]:
        assert secret[4:] not in logged


def test_an_admin_cannot_mint_or_revoke_a_super_admin(api: TestClient, world: World) -> None:
    """403 through the API for an ADMIN; a SUPER_ADMIN may do both."""
    body = {"name": "root2", "role": "SUPER_ADMIN"}
    refused = api.post("/tokens", json=body, headers=world.auth("ADMIN"))
    assert refused.status_code == 403
    assert refused.json()["field"] == "role"
    assert api.post(f"/tokens/{world.token_ids['SUPER_ADMIN']}/revoke", headers=world.auth("ADMIN")).status_code == 403
    assert api.post("/tokens", json=body, headers=world.auth("SUPER_ADMIN")).status_code == 201


def test_the_database_refuses_an_admin_minting_a_super_admin(world: World) -> None:
    """Even past the Python check, the api_tokens policy refuses the row for an ADMIN's request."""
    with session_scope() as s:
        s.execute(text("SET LOCAL ROLE msgworker_api"))
        s.execute(text("SELECT set_config('app.role', 'ADMIN', true), set_config('app.actor', 'api:x', true)"))
        s.add(ApiToken(name="sneaky", role="SUPER_ADMIN", token_hash=b"\x01" * 32, created_by="api:x"))
        with pytest.raises(ProgrammingError) as caught:
            s.flush()
        assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege)
        s.rollback()


def test_a_station_manager_token_needs_a_station(api: TestClient, world: World) -> None:
    """Without stations a STATION_MANAGER token is refused (422); an ADMIN token with stations too."""
    r1 = api.post("/tokens", json={"name": "m", "role": "STATION_MANAGER"}, headers=world.auth("ADMIN"))
    r2 = api.post("/tokens", json={"name": "m", "role": "ADMIN", "station_ids": [str(world.a.station_id)]},
                  headers=world.auth("SUPER_ADMIN"))
    assert (r1.status_code, r2.status_code) == (422, 422)
    assert r1.json()["field"] == r2.json()["field"] == "stations"


def _audit(action: AuditAction) -> int:
    with session_scope() as s:
        return int(s.execute(select(func.count()).select_from(AuditLog).where(
            AuditLog.resource_type == "api_token", AuditLog.action == action)).scalar_one())


def test_the_cli_creates_lists_and_revokes_audited(cli: CliRunner, world: World) -> None:
    """token create prints the token once (and it works), list and revoke write audit rows, revoked gets 401."""
    creates, views, updates = _audit(AuditAction.CREATE), _audit(AuditAction.VIEW), _audit(AuditAction.UPDATE)
    code, out = run(cli, "token", "create", "--name", "dash", "--role", "STATION_MANAGER", "--station", world.a.code,
                    "--json")
    assert code == 0, out
    issued = json.loads(out.strip().splitlines()[-1])
    assert issued["stations"] == [world.a.code]
    assert _audit(AuditAction.CREATE) == creates + 1
    with TestClient(create_admin_app()) as api:
        headers = {"Authorization": f"Bearer {issued['token']}"}
        assert api.get("/threads", headers=headers).status_code == 200
        code, out = run(cli, "token", "list", "--json")
        assert code == 0
        assert issued["token"] not in out
        assert issued["token"][4:] not in out
        assert _audit(AuditAction.VIEW) == views + 1
        code, out = run(cli, "token", "revoke", issued["id"])
        assert code == 0, out
        assert _audit(AuditAction.UPDATE) == updates + 1
        assert api.get("/threads", headers=headers).status_code == 401
    code, out = run(cli, "token", "revoke", issued["id"])
    assert code == 1
    assert "already revoked" in out
    code, out = run(cli, "token", "create", "--name", "x", "--role", "STATION_MANAGER")
    assert code == 1
    assert "needs at least one station" in out
