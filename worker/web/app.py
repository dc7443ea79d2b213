"""The ASGI application. Routers per concern are included here.

/healthz answers while the process is up, and depends on nothing else: it runs on the event
loop and touches no pool, thread or connection, so a hung database can never make an
orchestrator restart a healthy receiver. /readyz answers 200 only when the database and the
broker answer, and always within 2 s (worker/web/readiness.py), so a load balancer stops
sending webhooks to an instance that cannot store them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from worker.logging import configure_logging
from worker.metrics import exposition
from worker.settings import get_settings
from worker.web.readiness import Readiness


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

    # The admin API, on its own routes and middleware (worker/web/admin/); imported here,
    # not at module level, so the receiver's modules never load it.
    from worker.web.admin.app import MOUNT_PATH, create_admin_app

    app.mount(MOUNT_PATH, create_admin_app())

    # The compliance dashboard (worker/web/dashboard/), likewise on its own and loaded here only.
    from worker.web.dashboard.app import MOUNT_PATH as DASHBOARD_PATH
    from worker.web.dashboard.app import create_dashboard_app

    app.mount(DASHBOARD_PATH, create_dashboard_app())

    readiness = Readiness(settings)

    # Both async: on the event loop, never in the thread pool (where a hung readiness check
    # used to take every thread, and /healthz with them).
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Counters only, from memory-mapped files: no database, no pool (worker/metrics.py). Keep it
    # off the internet like /api (the proxy forwards only /webhooks/).
    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness.check()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    return app
