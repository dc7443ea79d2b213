"""Dashboard sign-in, sessions, cookies and CSRF, through the real sign-in form and the real session table."""

from __future__ import annotations

import redis
from httpx import Response
from sqlalchemy import text
from structlog.testing import capture_logs

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from tests.support.dashboard import csrf_of, dashboard_client, sign_in_with_password, sign_in_with_token
from worker import settings as settings_module
from worker.audit import Actor
from worker.db import session_scope
from worker.identity import tokens, users
from worker.models import UserRole

PASSWORD = "correct horse battery staple"


def _scalar(sql: str, **params: object) -> object:
    with session_scope() as s:
        return s.execute(text(sql), params).scalar_one()


def _make_user(email: str = "maria@example.test", role: UserRole = UserRole.CUSTOMER_SUPPORT) -> None:
    with session_scope() as s:
        users.create_user(s, email=email, role=role, password=PASSWORD, actor=Actor.cli("test"))


def test_password_sign_in_opens_a_session_and_sign_out_ends_it(dash: TestClient, world: World) -> None:
    """A staff user signs in with e-mail and password, sees the overview, signs out, and the old cookie is dead."""
    _make_user()
    sign_in_with_password(dash, "Maria@Example.test", PASSWORD)
    page = dash.get("/dashboard/")
    assert page.status_code == 200
    assert "Were the opt-outs honoured?" in page.text
    cookie = dash.cookies.get("mw_dashboard")
    assert cookie
    out = dash.post("/dashboard/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/dashboard/sign-in?signed_out=1"
    assert _scalar("SELECT ended_reason FROM identity.dashboard_sessions") == "signed_out"
    dash.cookies.set("mw_dashboard", cookie)  # a copy of the cookie kept after sign-out
    again = dash.get("/dashboard/")
    assert again.status_code == 303
    assert again.headers["location"] == "/dashboard/sign-in?ended=1"
    assert _scalar("SELECT count(*) FROM public.audit_logs WHERE resource_type = 'dashboard_session' "
                   "AND actor LIKE 'dashboard:%'") == 2


def test_wrong_password_and_bad_token_are_refused_alike(dash: TestClient, world: World) -> None:
    """A wrong password, an unknown e-mail and a malformed token each get the same 401 page and no session."""
    _make_user()
    for fields in ({"method": "password", "email": "maria@example.test", "password": "wrong password!!"},
                   {"method": "password", "email": "nobody@example.test", "password": PASSWORD},
                   {"method": "token", "token": "mwk_not-a-token"}):
        form = dash.get("/dashboard/sign-in")
        refused = dash.post("/dashboard/sign-in", data={**fields, "csrf_token": csrf_of(form.text)})
        assert refused.status_code == 401
        assert "Those sign-in details were not accepted" in refused.text
    assert _scalar("SELECT count(*) FROM identity.dashboard_sessions") == 0
    assert dash.get("/dashboard/").status_code == 303


def test_sign_in_without_the_forms_token_is_refused(dash: TestClient, world: World) -> None:
    """A sign-in posted from elsewhere (no token from the sign-in page's cookie) opens no session."""
    refused = dash.post("/dashboard/sign-in", data={"method": "token", "token": world.secrets["ADMIN"]})
    assert refused.status_code == 403
    assert _scalar("SELECT count(*) FROM identity.dashboard_sessions") == 0


def test_session_cookie_flags(dash: TestClient, world: World) -> None:
    """The session cookie is HttpOnly, SameSite=Strict, Path=/, without a lifetime (Secure only in production)."""
    form = dash.get("/dashboard/sign-in")
    done = dash.post("/dashboard/sign-in",
                     data={"method": "token", "token": world.secrets["ADMIN"], "csrf_token": csrf_of(form.text)})
    cookie = next(v for v in done.headers.get_list("set-cookie") if v.startswith("mw_dashboard="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= flags
    assert "samesite=strict" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert "max-age" not in flags
    assert "expires" not in flags
    assert "secure" not in flags


def test_in_production_the_cookie_is_secure_and_host_only(world: World, monkeypatch) -> None:
    """With APP_ENV=production the cookie is __Host-mw_dashboard, Secure, HttpOnly, SameSite=Strict."""
    production = settings_module.get_settings().model_copy(update={"APP_ENV": settings_module.AppEnv.PRODUCTION})
    monkeypatch.setattr("worker.web.dashboard.app.get_settings", lambda: production)
    with dashboard_client() as client:
        client.base_url = client.base_url.copy_with(scheme="https")
        form = client.get("/dashboard/sign-in")
        done = client.post("/dashboard/sign-in", data={"method": "token", "token": world.secrets["ADMIN"],
                                                       "csrf_token": csrf_of(form.text)})
        cookie = next(v for v in done.headers.get_list("set-cookie") if v.startswith("__Host-mw_dashboard="))
        lowered = cookie.lower()
        assert "; secure" in lowered
        assert "; httponly" in lowered
        assert "samesite=strict" in lowered
        assert "path=/" in lowered
        assert "domain" not in lowered


def test_a_form_posted_without_its_csrf_token_changes_nothing(admin: TestClient, world: World) -> None:
    """A review resolution posted without (or with a wrong) CSRF token is a 403 page and the item stays open."""
    for token in (None, "forged"):
        data = {"resolution": "opt_out", "note": "forged"}
        if token:
            data["csrf_token"] = token
        refused = admin.post(f"/dashboard/reviews/{world.a.review_id}/resolve", data=data)
        assert refused.status_code == 403
        assert "did not come from this dashboard page" in refused.text
    assert _scalar("SELECT status FROM compliance.review_items WHERE id = :i", i=world.a.review_id) == "open"


def test_an_idle_session_ends(admin: TestClient, world: World) -> None:
    """A session unused for longer than DASHBOARD_IDLE_MINUTES sends the next page to sign-in and is ended as idle."""
    assert admin.get("/dashboard/").status_code == 200
    with session_scope() as s:
        s.execute(text("UPDATE identity.dashboard_sessions SET last_seen_at = now() - interval '31 minutes'"))
    ended = admin.get("/dashboard/reviews")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/dashboard/sign-in?ended=1"
    assert _scalar("SELECT ended_reason FROM identity.dashboard_sessions") == "idle"
    form = admin.get("/dashboard/sign-in?ended=1")
    assert "Your session ended" in form.text


def test_a_revoked_token_ends_its_sessions_at_once(admin: TestClient, world: World) -> None:
    """Revoking the token a session signed in with ends the session's access on the next request."""
    assert admin.get("/dashboard/").status_code == 200
    with session_scope() as s:
        tokens.revoke_token(s, world.token_ids["ADMIN"], actor=Actor.cli("test"))
    assert admin.get("/dashboard/").status_code == 303
    assert _scalar("SELECT ended_reason FROM identity.dashboard_sessions") == "revoked"


def test_a_form_post_after_the_session_ended_is_refused_in_words(dash: TestClient, world: World) -> None:
    """A form posted with no live session is a 401 page saying to sign in again; nothing is done."""
    sign_in_with_token(dash, world.secrets["ADMIN"])
    page = dash.get("/dashboard/reviews")
    dash.cookies.clear()
    refused = dash.post(f"/dashboard/reviews/{world.a.review_id}/resolve",
                        data={"resolution": "opt_out", "note": "x", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 401
    assert "Your session has ended" in refused.text


def test_every_page_carries_the_security_headers(admin: TestClient) -> None:
    """Pages allow nothing but this origin (CSP), are never cached, and cannot be framed."""
    page = admin.get("/dashboard/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


def _post_password(client: TestClient, email: str, password: str) -> Response:
    form = client.get("/dashboard/sign-in")
    return client.post("/dashboard/sign-in", data={"method": "password", "email": email, "password": password,
                                                   "csrf_token": csrf_of(form.text)})


def test_repeated_wrong_passwords_make_the_account_wait(dash: TestClient, world: World,
                                                        clean_redis: redis.Redis) -> None:
    """After 10 wrong passwords for one account even the right one gets a 429 page, for 15 minutes at most;
    other accounts and token sign-in are not held, and Redis never sees the address."""
    _make_user()
    _make_user("other@example.test")
    for _ in range(10):
        assert _post_password(dash, "maria@example.test", "wrong password!!").status_code == 401
    with capture_logs() as logs:
        held = _post_password(dash, "MARIA@example.test ", PASSWORD)
    assert held.status_code == 429
    assert "Too many failed sign-ins for this account: wait 15 minutes" in held.text
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["dashboard_sign_in_throttled"]
    assert "maria" not in repr(logs).lower()
    assert _scalar("SELECT count(*) FROM identity.dashboard_sessions") == 0
    [key] = clean_redis.keys("msgworker:dashboard:sign_in_failures:*")
    assert b"maria" not in key
    assert 0 < clean_redis.ttl(key) <= 15 * 60
    sign_in_with_password(dash, "other@example.test", PASSWORD)
    dash.cookies.clear()
    sign_in_with_token(dash, world.secrets["ADMIN"])
    clean_redis.delete(key)  # the window has passed
    dash.cookies.clear()
    sign_in_with_password(dash, "maria@example.test", PASSWORD)


def test_a_good_sign_in_clears_the_count(dash: TestClient, world: World, clean_redis: redis.Redis) -> None:
    """Nine wrong passwords, the right one, then nine more wrong: the account is not held (the count restarted)."""
    _make_user()
    for _ in range(9):
        assert _post_password(dash, "maria@example.test", "wrong password!!").status_code == 401
    sign_in_with_password(dash, "maria@example.test", PASSWORD)
    dash.cookies.clear()
    for _ in range(9):
        assert _post_password(dash, "maria@example.test", "wrong password!!").status_code == 401
    sign_in_with_password(dash, "maria@example.test", PASSWORD)


def test_without_redis_sign_in_goes_on_uncounted_and_says_so_in_the_log(world: World, monkeypatch) -> None:
    """Redis refusing connections does not lock staff out: twelve wrong passwords are all plain 401s, the right one
    signs in, and each missed count is logged as dashboard_sign_in_throttle_unavailable."""
    _make_user()
    dead = settings_module.get_settings().model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    monkeypatch.setattr("worker.web.dashboard.app.get_settings", lambda: dead)
    with dashboard_client() as client, capture_logs() as logs:
        for _ in range(12):
            assert _post_password(client, "maria@example.test", "wrong password!!").status_code == 401
        sign_in_with_password(client, "maria@example.test", PASSWORD)
    unavailable = [e for e in logs if e["event"] == "dashboard_sign_in_throttle_unavailable"]
    assert len(unavailable) == 12 * 2 + 2  # each try: blocked? then failed (or succeeded)
    assert {e["error"] for e in unavailable} == {"ConnectionError"}
    assert "maria" not in repr(logs).lower()
