"""The ASGI application. Routers per concern are included here.

/healthz answers while the process is up; /readyz only when the database and the broker
answer, so a load balancer stops sending webhooks to an instance that cannot store them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from worker.db import engine
from worker.logging import configure_logging
from worker.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        from worker.web.inbox_store import close_group_store

        await close_group_store()  # the receiver's inbox connections (worker/web/inbox_store.py)

    app = FastAPI(
        title="msgworker", docs_url=None, redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan
    )

    from worker.web import webhooks

    app.router.routes.extend(webhooks.routes)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            with engine().connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
            client.ping()
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    return app
