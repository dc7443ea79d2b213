"""The dashboard application, mounted by worker/web/app.py at ``/dashboard`` (imported there lazily).

A FastAPI application of its own, like the admin API: its error pages, headers and sessions
run for ``/dashboard`` requests only. Every response carries a Content-Security-Policy that
allows nothing but this origin (no CDN, no inline script, no form posting elsewhere, no
framing), ``Cache-Control: no-store`` (pages hold personal data) and ``Referrer-Policy:
no-referrer``. Static files (CSS, one small script) are served from this package.

Refusals are pages in words: a user error shows its message with its status (403, 404, 409,
422), a form field that cannot be read names the field, no session sends a page request to
sign in (a form post gets a 401 page: what it carried is not replayed after sign-in).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.errors import USER_ERRORS, surface
from worker.identity import users
from worker.settings import get_settings
from worker.web.admin.database import AdminDatabase
from worker.web.dashboard.auth import SignInNeeded
from worker.web.dashboard.pages import HERE, ROOT, render
from worker.web.dashboard.routes import campaigns, numbers, overview, reports, reviews, sign_in

__all__ = ["MOUNT_PATH", "create_dashboard_app"]

MOUNT_PATH = ROOT

_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in _HEADERS}
                message["headers"] = [h for h in message.get("headers", []) if h[0] not in names] + _HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def _install_error_pages(app: FastAPI) -> None:
    async def user_error(request: Request, exc: Exception) -> Response:
        status = surface(exc).http_status
        return render(request, "error.html", None, {"status": status, "message": str(exc)}, status_code=status)

    for kind in USER_ERRORS:
        app.add_exception_handler(kind, user_error)

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _: SignInNeeded) -> Response:
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(f"{MOUNT_PATH}/sign-in?ended=1", status_code=303)
        return render(request, "error.html", None, {
            "status": 401, "message": "Your session has ended (signed out, or unused for too long). Nothing was "
                                      "changed: sign in again, then repeat what you were doing."}, status_code=401)

    @app.exception_handler(RequestValidationError)
    async def unreadable(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "the request could not be read"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        message = f"The field {field!r} could not be used: {first.get('msg')}." if field else str(first.get("msg"))
        return render(request, "error.html", None, {"status": 422, "message": message}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", None, {"status": exc.status_code, "message": message},
                      status_code=exc.status_code)


def create_dashboard_app(*, engine: Engine | None = None) -> FastAPI:
    """The dashboard; ``engine`` is its database (default: the process's engine)."""
    app = FastAPI(title="msgworker dashboard", docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=HTMLResponse)
    app.state.dashboard_db = AdminDatabase(engine)
    app.state.settings = get_settings()
    _install_error_pages(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (sign_in, overview, numbers, reviews, campaigns, reports):
        app.include_router(module.router)
    app.add_middleware(SecurityHeaders)
    users.dummy_hash()  # now, so the first sign-in with an unknown e-mail takes no longer than the rest
    return app
