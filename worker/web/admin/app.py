"""The admin API application, mounted by worker/web/app.py at ``/api/v1``.

A FastAPI application of its own: its middleware (the body-size limit), its error handlers,
its OpenAPI document (``/api/v1/openapi.json``) and its transactions run for ``/api/v1``
requests only, so the receiver's webhooks (plain Starlette routes with group commit) pay for
none of it. ``ROUTERS`` is the list of concerns it serves (worker/web/admin/routes/).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.errors import ErrorKind
from worker.web.admin.database import AdminDatabase
from worker.web.admin.errors import ERROR_RESPONSES, install_error_handlers
from worker.web.admin.routes import (
    audit_log,
    campaigns,
    consent,
    coupons,
    feedback,
    outbound,
    reports,
    reviews,
    stations,
    threads,
    tokens,
)

__all__ = ["MAX_BODY_BYTES", "MOUNT_PATH", "ROUTERS", "create_admin_app"]

MOUNT_PATH = "/api/v1"
# The largest request a staff tool sends is an opt-in's evidence document (the ledger keeps up
# to 1 MiB of it, worker/consent/staff.py): anything larger is refused before it is parsed.
MAX_BODY_BYTES = 1 << 20

ROUTERS: tuple[APIRouter, ...] = (
    stations.router,
    threads.router,
    consent.router,
    reviews.router,
    outbound.router,
    campaigns.router,
    coupons.router,
    feedback.router,
    reports.router,
    audit_log.router,
    tokens.router,
)


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"code":"' + ErrorKind.TOO_LARGE.value.encode() + b'","message":"the request body is over '
            + str(self.limit).encode() + b' bytes","field":null}'
        )
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], then: Receive) -> Receive:
    """The messages already read, then the client's own channel: a streamed response listens on it for the
    client going away, so it must not hear a disconnect that did not happen (it would stop sending)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive


def create_admin_app(*, engine: Engine | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The admin API; ``engine`` is its database (default: the process's engine; tests pass a pool of one)."""
    app = FastAPI(
        title="msgworker admin API",
        version="1",
        description="Staff tools' API: token auth, four roles, station isolation by PostgreSQL row-level security "
        "(docs/admin-api.md).",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.admin_database = AdminDatabase(engine)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app
