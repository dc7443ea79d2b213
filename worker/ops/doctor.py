"""``msgworker doctor``: is this deployment able to do its job? One line per check, with the fix.

Each check returns a value (never raises): the command prints them all, so one broken piece
does not hide the next. A check that cannot run because an earlier one failed says so.
Warnings (no worker answering) do not fail the run: a receiver-only host is legitimate.

Settings are read here with ``Settings()`` rather than ``get_settings()``, because the
point is to report what is wrong with them, not to refuse to start.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis
from pydantic import ValidationError
from sqlalchemy import create_engine, make_url, pool, text
from sqlalchemy.exc import SQLAlchemyError

from worker.settings import DEV_DEFAULTS, TWILIO_ACCOUNT_SID_RE, AppEnv, Settings

__all__ = ["Check", "Status", "run_checks"]

PING_TASK = "tasks.maintenance.ping"
PING_KEY = "msgworker:ping:{token}"  # written by tasks.maintenance.ping
DEFAULT_TWILIO_BASE = "https://api.twilio.com"


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def safe_url(url: str) -> str:
    """A URL fit to print: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is reported by the check itself
        return "<unparseable URL>"


def check_settings(settings: Settings) -> list[Check]:
    # A key ring that does not parse is the "pii keys" check's to report, with its fix.
    pii_problems = set(settings.pii_key_problems())
    problems = [p for p in settings.check() if p not in pii_problems]
    if problems:
        return [Check("settings", Status.FAIL, p, "set it in the environment or .env") for p in problems]
    defaults = settings.dev_defaults_in_use()
    if defaults and settings.APP_ENV is not AppEnv.PRODUCTION:
        return [
            Check(
                "settings",
                Status.OK,
                f"APP_ENV={settings.APP_ENV.value}; development defaults in use for {', '.join(defaults)} "
                "(fine locally; production refuses them)",
            )
        ]
    return [Check("settings", Status.OK, f"APP_ENV={settings.APP_ENV.value}; all secrets set")]


def check_database(settings: Settings) -> Check:
    url = settings.DATABASE_URL
    eng = create_engine(url, poolclass=pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with eng.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
    except SQLAlchemyError as exc:
        return Check("database", Status.FAIL, f"{safe_url(url)}: {_first_line(exc)}", _database_fix(url, str(exc)))
    finally:
        eng.dispose()
    return Check("database", Status.OK, f"{safe_url(url)} reachable (PostgreSQL {version})")


def _database_fix(url: str, error: str) -> str:
    parsed = make_url(url)
    if "does not exist" in error and "database" in error:
        return (
            f"create it: `createdb -h {parsed.host or '127.0.0.1'} -p {parsed.port or 5432} {parsed.database}` "
            "(in development `msgworker run` creates it)"
        )
    if "role" in error and "does not exist" in error:
        return "put an existing user in DATABASE_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/msgworker"
    if "password authentication failed" in error:
        return "check the user and password in DATABASE_URL"
    return "start PostgreSQL, or point DATABASE_URL at a running server (host, port, database)"


def check_migrations(settings: Settings) -> Check:
    from worker import migrate

    try:
        current = migrate.current_revision(settings.DATABASE_URL)
    except SQLAlchemyError as exc:
        return Check("migrations", Status.FAIL, _first_line(exc), "check the database first")
    head = migrate.head_revision()
    if current == head:
        return Check("migrations", Status.OK, f"at head ({head})")
    return Check(
        "migrations",
        Status.FAIL,
        f"database at {current or 'base (empty)'}, code at {head}",
        "run `msgworker db upgrade`",
    )


# Short timeouts: a doctor that hangs on a dead Redis is no help.
_REDIS_TIMEOUT = 2.0


def check_redis(name: str, url: str) -> Check:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=_REDIS_TIMEOUT, socket_timeout=_REDIS_TIMEOUT).ping()
    except (redis.RedisError, ValueError) as exc:
        return Check(name, Status.FAIL, f"{safe_url(url)}: {_first_line(exc)}", "start Redis, or fix the URL")
    return Check(name, Status.OK, f"{safe_url(url)} answers PING")


def check_worker(settings: Settings, timeout: float) -> Check:
    """A real worker consumes a ping task, touches the database and writes a Redis key."""
    from worker.app import app

    token = uuid.uuid4().hex
    # expires: if no worker is running, the ping does not linger and run much later.
    app.send_task(PING_TASK, kwargs={"token": token}, expires=max(timeout, 1.0) + 30)
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=_REDIS_TIMEOUT, socket_timeout=_REDIS_TIMEOUT
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.exists(PING_KEY.format(token=token)):
            client.delete(PING_KEY.format(token=token))
            return Check("worker", Status.OK, "a worker ran a ping task (broker, worker, database, Redis)")
        time.sleep(0.1)
    return Check(
        "worker",
        Status.WARN,
        f"no worker answered a ping task within {timeout:g}s",
        "start one: `celery -A worker worker` (or `msgworker run` for the whole stack)",
    )


def check_twilio(settings: Settings) -> Check:
    sid = settings.TWILIO_ACCOUNT_SID or DEV_DEFAULTS["TWILIO_ACCOUNT_SID"]
    if not TWILIO_ACCOUNT_SID_RE.fullmatch(sid):
        return Check(
            "twilio",
            Status.FAIL,
            "TWILIO_ACCOUNT_SID is not 'AC' followed by 32 hex characters",
            "copy the Account SID from the Twilio console",
        )
    dev_creds = not settings.TWILIO_ACCOUNT_SID or not settings.TWILIO_AUTH_TOKEN
    base = settings.TWILIO_API_BASE_URL
    if dev_creds and settings.APP_ENV is not AppEnv.PRODUCTION and base == DEFAULT_TWILIO_BASE:
        return Check(
            "twilio",
            Status.OK,
            f"development defaults for TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN; {base} not contacted "
            "(set real credentials, or TWILIO_API_BASE_URL to a fake, to check it)",
        )
    token = settings.TWILIO_AUTH_TOKEN or DEV_DEFAULTS["TWILIO_AUTH_TOKEN"]
    # The cheapest authenticated call: list one message. A real Twilio and the fake both answer it.
    url = f"{base}/2010-04-01/Accounts/{sid}/Messages.json"
    try:
        response = httpx.get(
            url, params={"PageSize": 1}, auth=(sid, token), timeout=min(settings.TWILIO_HTTP_TIMEOUT, 5.0)
        )
    except httpx.HTTPError as exc:
        return Check(
            "twilio",
            Status.FAIL,
            f"cannot reach {base}: {type(exc).__name__}: {_first_line(exc)}",
            "check TWILIO_API_BASE_URL and the network (proxy, DNS, firewall)",
        )
    if response.status_code in (401, 403):
        return Check(
            "twilio",
            Status.FAIL,
            f"{base} refused the credentials (HTTP {response.status_code})",
            "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (the primary auth token of that account)",
        )
    if response.status_code >= 500:
        return Check("twilio", Status.WARN, f"{base} reachable but answered HTTP {response.status_code}", None)
    return Check("twilio", Status.OK, f"{base} reachable, account {sid[:6]}… answered HTTP {response.status_code}")


def check_pii(settings: Settings) -> Check:
    from worker.pii import KeyRing, PiiError
    from worker.settings import SettingsError

    try:
        ring = KeyRing.from_settings(settings)
    except (PiiError, SettingsError) as exc:
        return Check(
            "pii keys",
            Status.FAIL,
            str(exc),
            "PII_KEYS is 'keyid:base64(32 bytes)[,older...]'; PII_INDEX_KEY is base64 of 32+ bytes",
        )
    note = " (development defaults)" if not settings.PII_KEYS or not settings.PII_INDEX_KEY else ""
    ids = ", ".join(kid for kid, _ in ring.keys)
    detail = f"{len(ring.keys)} key(s) parse ({ids}); encrypting with {ring.current_key_id}{note}"
    return Check("pii keys", Status.OK, detail)


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def run_checks(*, worker_timeout: float = 5.0, report: Callable[[Check], None] | None = None) -> list[Check]:
    """Run every check in order; ``report`` sees each result as soon as it is known."""
    results: list[Check] = []

    def add(check: Check) -> Check:
        results.append(check)
        if report is not None:
            report(check)
        return check

    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            add(Check("settings", Status.FAIL, f"{where}: {error['msg']}", "fix the value in the environment or .env"))
        return results

    for check in check_settings(settings):
        add(check)
    # The worker check builds the Celery app, which (rightly) refuses unusable settings.
    settings_ok = not settings.check()
    db = add(check_database(settings))
    if db.status is Status.OK:
        add(check_migrations(settings))
    else:
        add(Check("migrations", Status.SKIP, "database not reachable"))
    broker = add(check_redis("broker", settings.CELERY_BROKER_URL))
    if settings.redis_url != settings.CELERY_BROKER_URL:
        add(check_redis("redis", settings.redis_url))
    if not settings_ok:
        add(Check("worker", Status.SKIP, "settings are unusable"))
    elif broker.status is not Status.OK or db.status is not Status.OK:
        # The ping task needs both; a worker that cannot reach them cannot answer.
        add(Check("worker", Status.SKIP, "broker or database not reachable"))
    else:
        add(check_worker(settings, worker_timeout))
    add(check_twilio(settings))
    add(check_pii(settings))
    return results
