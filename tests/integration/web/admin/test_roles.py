"""The role table (issue 12): for every operation and every role, an allow test and a deny test.

ROLE_TABLE is the specification (docs/admin-api.md has the same table). For each cell:

- the role's request gets the table's answer: success where allowed, 403 where not, and a
  refused request leaves no audit row behind (nothing was done);
- the same request with the same role's token once it is revoked, and once it has expired,
  gets the same bare 401, so no cell can be reached by a token that is no longer good.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tests.integration.web.admin.operations import BY_ID, OPERATIONS
from tests.support.admin_world import World
from tests.support.asgi import TestClient
from worker.db import session_scope
from worker.models import ApiToken, AuditLog
from worker.web.admin.app import create_admin_app

ROLES = ("SUPER_ADMIN", "ADMIN", "CUSTOMER_SUPPORT", "STATION_MANAGER")
Y, N = True, False
ROLE_TABLE: dict[str, tuple[bool, bool, bool, bool]] = {
    #                         SUPER_ADMIN ADMIN CUSTOMER_SUPPORT STATION_MANAGER
    "list_stations":         (Y, Y, Y, Y),
    "get_station":           (Y, Y, Y, Y),
    "create_station":        (Y, Y, N, N),
    "list_senders":          (Y, Y, Y, Y),
    "create_sender":         (Y, Y, N, N),
    "list_threads":          (Y, Y, Y, Y),
    "get_thread":            (Y, Y, Y, Y),
    "list_thread_messages":  (Y, Y, Y, Y),
    "lookup_consent":        (Y, Y, Y, Y),
    "staff_opt_out":         (Y, Y, Y, N),
    "staff_opt_in":          (Y, Y, N, N),
    "list_reviews":          (Y, Y, Y, Y),
    "resolve_review":        (Y, Y, Y, N),
    "list_held":             (Y, Y, N, Y),
    "release_held":          (Y, Y, N, Y),
    "cancel_held":           (Y, Y, N, Y),
    "create_send":           (Y, Y, N, Y),
    "get_send":              (Y, Y, Y, Y),
    "list_campaigns":        (Y, Y, N, Y),
    "create_campaign":       (Y, Y, N, Y),
    "get_campaign":          (Y, Y, N, Y),
    "campaign_status":       (Y, Y, N, Y),
    "preview_campaign":      (Y, Y, N, Y),
    "start_campaign":        (Y, Y, N, Y),
    "pause_campaign":        (Y, Y, N, Y),
    "resume_campaign":       (Y, Y, N, Y),
    "cancel_campaign":       (Y, Y, N, Y),
    "redeem_coupon":         (Y, Y, N, Y),
    "list_escalations":      (Y, Y, Y, Y),
    "export_opt_outs":       (Y, Y, N, Y),
    "export_dossier":        (Y, Y, N, N),
    "list_audit_log":        (Y, Y, N, N),
    "list_tokens":           (Y, Y, N, N),
    "create_token":          (Y, Y, N, N),
    "revoke_token":          (Y, Y, N, N),
}
CELLS = [(op, role, allowed) for op, row in ROLE_TABLE.items() for role, allowed in zip(ROLES, row, strict=True)]


def _call(api: TestClient, world: World, op_id: str, role: str) -> tuple[int, dict[str, object]]:
    method, path, body = BY_ID[op_id].request(world.a, world)
    response = api.request(method, path, json=body, headers=world.auth(role))
    if not response.headers["content-type"].startswith("application/json"):  # a streamed export
        return response.status_code, {"content-type": response.headers["content-type"], "bytes": len(response.content)}
    return response.status_code, response.json()


def _audit_rows() -> int:
    with session_scope() as s:
        return int(s.execute(select(func.count()).select_from(AuditLog)).scalar_one())


def test_the_table_covers_every_operation() -> None:
    """Every operation the app serves has a row in the role table and a request in operations.py, and no more."""
    paths = create_admin_app().openapi()["paths"]
    served = {operation["operationId"] for item in paths.values() for operation in item.values()}
    assert served == set(ROLE_TABLE) == {op.op_id for op in OPERATIONS}


@pytest.mark.parametrize(("op_id", "role", "allowed"), CELLS, ids=[f"{o}-{r}" for o, r, _ in CELLS])
def test_cell_allows_or_refuses_by_role(api: TestClient, world: World, op_id: str, role: str, allowed: bool) -> None:
    """The role's request succeeds where the table allows it and gets 403 (writing nothing) where it does not."""
    before = _audit_rows()
    status, body = _call(api, world, op_id, role)
    if allowed:
        assert status == BY_ID[op_id].ok, body
    else:
        assert status == 403, body
        assert body == {"code": "forbidden", "message": f"a {role} token may not do this", "field": None}
        assert _audit_rows() == before


@pytest.mark.parametrize(("op_id", "role", "allowed"), CELLS, ids=[f"{o}-{r}" for o, r, _ in CELLS])
@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_cell_refuses_a_dead_token(api: TestClient, world: World, op_id: str, role: str, allowed: bool,
                                   how: str) -> None:
    """The same request with the role's token revoked or expired gets the one bare 401, whatever the table says."""
    with session_scope() as s:
        values = ({"revoked_at": func.now(), "revoked_by": "cli:test"} if how == "revoked"
                  else {"expires_at": datetime.now(UTC) - timedelta(seconds=1)})
        s.execute(update(ApiToken).where(ApiToken.id == world.token_ids[role]).values(**values))
    before = _audit_rows()
    status, body = _call(api, world, op_id, role)
    assert status == 401
    assert body == {"code": "unauthorized", "message": "a valid bearer token is required", "field": None}
    assert _audit_rows() == before
