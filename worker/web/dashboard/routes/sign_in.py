"""Sign in (staff e-mail and password, or an API token) and sign out.

A refused sign-in says only that the credentials were not accepted, whichever part was wrong,
and is logged without the e-mail or token; repeated failed passwords for one account make it
wait (worker/web/dashboard/throttle.py). The session cookie is HttpOnly (no script reads
it), SameSite=Strict (no other site's page sends it) and, in production, Secure with the
``__Host-`` prefix; it has no lifetime of its own: the server ends a session when it is idle,
old or signed out (worker/web/dashboard/sessions.py).
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from worker.identity import users
from worker.settings import AppEnv
from worker.web.dashboard.auth import Page, changing_page, database, settings_of
from worker.web.dashboard.pages import ROOT, render
from worker.web.dashboard.sessions import SIGN_IN_COOKIE, cookie_name, csrf_ok, end, new_secret, open_session
from worker.web.dashboard.throttle import WINDOW_SECONDS, SignInThrottle

router = APIRouter()
log = structlog.get_logger(__name__)

_NOTICES = {
    "ended": "Your session ended (unused for too long, or signed out elsewhere). Sign in again.",
    "signed_out": "You are signed out.",
}


def _form(request: Request, *, status_code: int = 200, error: str | None = None, email: str = "") -> Response:
    csrf = new_secret()
    notice = next((text for key, text in _NOTICES.items() if request.query_params.get(key)), None)
    response = render(request, "sign_in.html", None, {"sign_in_csrf": csrf, "error": error, "notice": notice,
                                                       "email": email}, status_code=status_code)
    response.set_cookie(SIGN_IN_COOKIE, csrf, httponly=True, samesite="strict", path=ROOT, max_age=3600,
                        secure=settings_of(request).APP_ENV is AppEnv.PRODUCTION)
    return response


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    return _form(request)


@router.post("/sign-in")
def sign_in(
    request: Request,
    method: Annotated[str, Form()] = "password",
    email: Annotated[str, Form(max_length=255)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not csrf_ok(csrf_token, request.cookies.get(SIGN_IN_COOKIE)):
        return _form(request, status_code=403, email=email,
                     error="The sign-in form had expired or did not come from this page. Try again.")
    db = database(request)
    settings = settings_of(request)
    throttle = SignInThrottle(settings.redis_url)
    if method == "password" and throttle.blocked(email):
        log.warning("dashboard_sign_in_throttled")
        return _form(request, status_code=429, email=email,
                     error=f"Too many failed sign-ins for this account: wait {WINDOW_SECONDS // 60} minutes and "
                           "try again, or ask an administrator to check the account.")
    with db.as_owner() as session:
        user = users.check_password(session, email, password) if method == "password" else None
    principal = db.authenticate(token.strip()) if method == "token" else None
    if method == "password" and user is not None:
        throttle.succeeded(email)
    elif method == "password":
        throttle.failed(email)
    if user is None and principal is None:
        log.warning("dashboard_sign_in_refused", method=method if method in ("password", "token") else "other")
        return _form(request, status_code=401, email=email,
                     error="Those sign-in details were not accepted. Check the e-mail and password (or the "
                           "token) and try again.")
    with db.as_owner() as session:
        secret = open_session(session, user=user, principal=principal)
    log.info("dashboard_signed_in", method=method)
    response = RedirectResponse(f"{ROOT}/", status_code=303)
    response.set_cookie(cookie_name(settings), secret, httponly=True, samesite="strict", path="/",
                        secure=settings.APP_ENV is AppEnv.PRODUCTION)
    response.delete_cookie(SIGN_IN_COOKIE, path=ROOT)
    return response


@router.post("/sign-out")
def sign_out(request: Request, current: Annotated[Page, Depends(changing_page)]) -> Response:
    with current.db.as_owner() as session:
        end(session, current.viewer)
    settings = settings_of(request)
    response = RedirectResponse(f"{ROOT}/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(cookie_name(settings), path="/", secure=settings.APP_ENV is AppEnv.PRODUCTION,
                           httponly=True, samesite="strict")
    return response
