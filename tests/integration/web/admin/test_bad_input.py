"""Bad input gets a 4xx with the error body ({code, message, field}), never a 500, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from worker.db import session_scope
from worker.models import AuditLog, ConsentEvent, OutboundMessage
from worker.web.admin.app import MAX_BODY_BYTES


def _counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return tuple(int(s.execute(select(func.count()).select_from(t)).scalar_one())  # type: ignore[return-value]
                     for t in (AuditLog, ConsentEvent, OutboundMessage))


def _send(world: World, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {"station_id": str(world.a.station_id), "to": world.a.phone, "body": "hi",
                               "purpose": "transactional", "client_key": "k-1"}
    body.update(changes)
    return body


CASES = {
    "malformed-json": ("POST", "/sends", b'{"station_id": ', 422, None),
    "wrong-type": ("POST", "/consent/lookup", {"phone": 4155550123}, 422, "phone"),
    "unknown-field": ("POST", "/consent/opt-out", {"phone": "+14155550123", "reason": "x"}, 422, "reason"),
    "phone-does-not-parse": ("POST", "/consent/opt-out", {"phone": "call me maybe"}, 422, "phone"),
    "id-of-the-wrong-shape": ("GET", "/threads/not-a-uuid", None, 422, "thread_id"),
    "bad-cursor": ("GET", "/threads?cursor=bm90IG91cnM", None, 422, "cursor"),
    "unknown-enum": ("POST", "/consent/opt-out", {"phone": "+14155550123", "purpose": "sometimes"}, 422, "purpose"),
    "bad-state": ("POST", "/held/00000000-0000-0000-0000-000000000000/release", {"state": "ZZ"}, 422, None),
    "no-such-route": ("GET", "/nothing-here", None, 404, None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_a_4xx_with_the_error_body(api: TestClient, world: World, case: str) -> None:
    """Each kind of bad input answers its 4xx in the one error shape, naming the field where there is one."""
    method, path, body, status, field = CASES[case]
    before = _counts()
    kwargs = {"content": body, "headers": {**world.auth("ADMIN"), "content-type": "application/json"}} \
        if isinstance(body, bytes) else {"json": body, "headers": world.auth("ADMIN")}
    response = api.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"code", "message", "field"}
    assert payload["message"]
    if field is not None:
        assert payload["field"] == field
    assert _counts() == before


def test_an_oversize_body_is_refused_before_it_is_read(api: TestClient, world: World) -> None:
    """A body over the limit, declared or streamed, is 413 with the error body."""
    huge = b'{"phone": "' + b"1" * (MAX_BODY_BYTES + 10) + b'"}'
    response = api.post("/consent/lookup", content=huge,
                        headers={**world.auth("ADMIN"), "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"

    def chunks():  # no Content-Length: the middleware counts what arrives
        yield b'{"phone": "'
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"1" * 4096
        yield b'"}'

    streamed = api.post("/consent/lookup", content=chunks(),
                        headers={**world.auth("ADMIN"), "content-type": "application/json"})
    assert streamed.status_code == 413


def test_the_same_client_key_for_another_text_is_a_conflict(api: TestClient, world: World) -> None:
    """A retried send returns the first row (200); the key reused for a different text is 409, nothing queued."""
    first = api.post("/sends", json=_send(world), headers=world.auth("ADMIN"))
    again = api.post("/sends", json=_send(world), headers=world.auth("ADMIN"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    before = _counts()
    other = api.post("/sends", json=_send(world, body="something else"), headers=world.auth("ADMIN"))
    assert other.status_code == 409
    assert other.json()["field"] == "client_key"
    assert _counts() == before
