"""``msgworker web``'s application serves the admin API under /api/v1, beside the receiver and apart from it."""

from __future__ import annotations

from starlette.routing import Mount

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from worker.web.app import create_app


def test_the_admin_api_is_mounted_with_its_openapi_document(world: World) -> None:
    """/api/v1/openapi.json documents every operation with bearer auth; /api/v1 routes need a token; /healthz not."""
    app = create_app()
    with TestClient(app) as client:
        doc = client.get("/api/v1/openapi.json")
        assert doc.status_code == 200
        spec = doc.json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        operations = [op for item in spec["paths"].values() for op in item.values()]
        assert len(operations) == 35
        assert all(op.get("security") == [{"HTTPBearer": []}] for op in operations)
        assert client.get("/api/v1/stations").status_code == 401
        assert client.get("/api/v1/stations", headers=world.auth("ADMIN")).status_code == 200
        assert client.get("/healthz").json() == {"status": "ok"}
    # The receiver's webhook routes are the parent's own, outside the mount (no admin middleware on them).
    webhook_paths = {getattr(r, "path", "") for r in app.router.routes if not isinstance(r, Mount)}
    assert "/webhooks/twilio/sms" in webhook_paths
    assert [r.path for r in app.router.routes if isinstance(r, Mount)] == ["/api/v1", "/dashboard"]
