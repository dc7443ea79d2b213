"""One typed settings object, read from the environment (and an optional .env file).

The environment variable names are a public interface (README, docker-compose.yml,
operators' deploy files): renaming one is a breaking change.

Development gets loud, working defaults for secrets so that a first run needs no set-up;
production refuses to start with a missing secret or with any of those defaults.
"""

from __future__ import annotations

import base64
import enum
import functools
import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.logging import startup_logger

__all__ = [
    "DEV_DEFAULTS",
    "TWILIO_ACCOUNT_SID_RE",
    "AppEnv",
    "Settings",
    "SettingsError",
    "get_settings",
    "parse_shared_keys",
    "set_settings",
]


class AppEnv(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# Development defaults for secrets. They are public (they are in this file), so production
# refuses every one of them.
DEV_DEFAULTS: dict[str, str] = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "dev-twilio-auth-token",
    "META_APP_SECRET": "dev-meta-app-secret",
    "META_VERIFY_TOKEN": "dev-meta-verify-token",
    # key id "dev1", 32 zero-ish bytes: AES-256-GCM key.
    "PII_KEYS": "dev1:" + base64.urlsafe_b64encode(b"development-only-pii-key-32bytes").decode(),
    "PII_INDEX_KEY": base64.urlsafe_b64encode(b"development-only-index-key-32byt").decode(),
}


# Twilio account SIDs: "AC" + 32 hex digits (doctor and production start-up check it).
TWILIO_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}")


class SettingsError(RuntimeError):
    """Raised when settings are unusable (e.g. production with development secrets)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True)

    DATABASE_URL: str = "postgresql+psycopg://127.0.0.1:5432/msgworker"
    # Client-side deadlines on PostgreSQL (worker/db_deadlines.py): a frozen server or a
    # black-holed network fails fast instead of hanging. Seconds.
    DATABASE_CONNECT_TIMEOUT: int = Field(default=3, ge=2)  # libpq's minimum is 2
    DATABASE_TCP_USER_TIMEOUT: float = Field(default=20.0, gt=0)
    # Longer than the 30 s statement_timeout, so a live server stops a slow statement first.
    DATABASE_ANSWER_TIMEOUT: float = Field(default=40.0, gt=0)
    # DATABASE_URL points at a pooler in transaction mode (PgBouncer pool_mode=transaction):
    # consecutive transactions of one connection may run on different server sessions, so no
    # named prepared statements and no start-up options (docs/operations.md "Behind PgBouncer").
    DATABASE_TRANSACTION_POOLER: bool = False
    CELERY_BROKER_URL: str = "redis://127.0.0.1:6379/0"
    # Redis for rate limits and single-flight locks; defaults to the broker's Redis.
    REDIS_URL: str | None = None
    APP_ENV: AppEnv = AppEnv.DEVELOPMENT
    # The public URL providers call (scheme://host[:port]); signatures are checked
    # against it, because behind a proxy the app sees a different host.
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"

    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_API_BASE_URL: str = "https://api.twilio.com"
    # Seconds Twilio may queue a message before giving up (1..36000;
    # docs/compliance.md#throughput-and-segments).
    TWILIO_VALIDITY_PERIOD: int = Field(default=14400, ge=1, le=36000)
    TWILIO_HTTP_TIMEOUT: float = Field(default=10.0, gt=0)
    # Secret, optional. Webhook Rules SharedKeys (docs/inbound.md): "name:secret[,name2:secret2]",
    # name as Twilio sends it in X-Twilio-Webhooks-Signature-Settings' key=. Empty: feature off.
    TWILIO_WEBHOOK_SHARED_KEYS: str | None = None

    META_APP_SECRET: str | None = None
    META_VERIFY_TOKEN: str | None = None

    # "kid:base64key,kid2:base64key2": the first encrypts, all decrypt.
    PII_KEYS: str | None = None
    PII_INDEX_KEY: str | None = None

    LOG_FORMAT: Literal["json", "console"] = "console"
    LOG_LEVEL: str = "INFO"

    WEBHOOK_MAX_BODY_BYTES: int = Field(default=64 * 1024, ge=1024)
    # A webhook not committed within this many seconds is answered 503 (Twilio waits 15 s at most).
    WEBHOOK_STORE_TIMEOUT: float = Field(default=4.0, gt=0, le=14)
    # Webhooks one receiver process lets wait for their commit; past it, 503 at once.
    WEBHOOK_MAX_WAITING: int = Field(default=1000, ge=1)
    # An inbox row not processed after this many seconds is re-enqueued by the sweeper.
    INBOX_SWEEP_GRACE_SECONDS: int = Field(default=60, ge=1)
    # Inbox rows one ingest batch claims (one transaction; each row in its own savepoint).
    INBOX_BATCH_SIZE: int = Field(default=100, ge=1, le=1000)

    # Consent (docs/consent-ledger.md). An SMS opt-out covers the whole business
    # ("business") or only the station texted ("station"); STOPALL is always business-wide.
    CONSENT_OPT_OUT_SCOPE: Literal["business", "station"] = "business"
    # What an SMS opt-out revokes: every purpose ("all") or marketing only. STOPALL: all.
    CONSENT_OPT_OUT_PURPOSE: Literal["all", "marketing"] = "all"
    # Twilio's Advanced Opt-Out already replied when OptOutType is present: by default we
    # send no confirmation / HELP reply of our own (it would be a second message).
    CONSENT_CONFIRM_WHEN_PROVIDER_REPLIED: bool = False
    # FCC 24-24: honour a revocation within 10 business days; a review item unresolved by
    # then counts as an opt-out. May be shortened, never lengthened.
    CONSENT_REVIEW_BUSINESS_DAYS: int = Field(default=10, ge=1, le=10)
    # Review items this many business days (or fewer) before their deadline log warnings.
    CONSENT_REVIEW_WARN_BUSINESS_DAYS: int = Field(default=2, ge=0, le=10)

    # Campaigns (docs/campaigns.md): recipients one fan-out transaction expands or queues, and
    # how long one tick keeps taking chunks before it leaves the rest to the next tick.
    CAMPAIGN_FANOUT_CHUNK: int = Field(default=1000, ge=1, le=10000)
    CAMPAIGN_TICK_BUDGET_SECONDS: float = Field(default=10.0, gt=0, le=300)

    # Compliance reports (docs/reports.md#scheduled-delivery): a directory for the monthly
    # opt-out report written on the 1st (UTC); empty (the default) turns the job off.
    REPORTS_MONTHLY_DIR: str | None = None

    # The dashboard (docs/dashboard.md): a session unused this long is over (sign in again);
    # one is over after DASHBOARD_SESSION_MAX_HOURS whatever its use.
    DASHBOARD_IDLE_MINUTES: int = Field(default=30, ge=1, le=24 * 60)
    DASHBOARD_SESSION_MAX_HOURS: int = Field(default=12, ge=1, le=7 * 24)

    # The Celery worker's Prometheus endpoint (docs/operations.md#metrics-and-alerts), served by
    # its main process for its pool children; 0 turns it off. The receiver serves /metrics on
    # its own port. One port per worker process on a host.
    WORKER_METRICS_HOST: str = "127.0.0.1"
    WORKER_METRICS_PORT: int = Field(default=9101, ge=0, le=65535)

    # Outbound (docs: README "Sending"). Per-sender token bucket at station_senders.rate_per_second.
    OUTBOUND_RATE_LIMIT_ENABLED: bool = True
    # At most this many marketing texts per number per rolling 24 h (docs/compliance.md#frequency-caps).
    OUTBOUND_MARKETING_CAP_PER_24H: int = Field(default=3, ge=0)
    # Quiet hours always hold marketing and campaign texts; direct replies only if set.
    OUTBOUND_QUIET_HOURS_TRANSACTIONAL: bool = False
    OUTBOUND_QUIET_HOURS_COMPLIANCE: bool = False
    # Rows one release tick claims, and ids per send task.
    OUTBOUND_RELEASE_BATCH: int = Field(default=500, ge=1, le=10000)
    OUTBOUND_SEND_CHUNK: int = Field(default=10, ge=1, le=200)
    # A row "sending" this long (its worker died mid-send) or "unknown" is looked up at Twilio;
    # absent from Twilio's list this long after the attempt began, it was never accepted.
    OUTBOUND_SENDING_STALE_SECONDS: int = Field(default=120, ge=1)
    OUTBOUND_RECONCILE_ABSENT_SECONDS: int = Field(default=120, ge=1)
    # A "queued" row whose send task never ran (lost broker message) is re-published after this.
    OUTBOUND_QUEUED_STALE_SECONDS: int = Field(default=60, ge=1)
    # Retryable failures (429, 5xx, refused connection) before a row is failed for good.
    OUTBOUND_MAX_ATTEMPTS: int = Field(default=8, ge=1)

    @field_validator("PUBLIC_BASE_URL", "TWILIO_API_BASE_URL")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def redis_url(self) -> str:
        return self.REDIS_URL or self.CELERY_BROKER_URL

    def secret(self, name: str) -> str:
        """The secret's value, or its development default outside production."""
        value = getattr(self, name)
        if value:
            return str(value)
        if self.APP_ENV is AppEnv.PRODUCTION:
            raise SettingsError(f"{name} is not set; production needs a real value")
        return DEV_DEFAULTS[name]

    def check(self) -> list[str]:
        """Problems that make this configuration unusable, one readable line each."""
        problems: list[str] = []
        if self.APP_ENV is AppEnv.PRODUCTION:
            for name, dev_value in DEV_DEFAULTS.items():
                value = getattr(self, name)
                if not value:
                    problems.append(f"{name} is not set; production needs a real value")
                elif name == "PII_KEYS":
                    dev_keys = set(dev_value.split(","))
                    if any(k.strip() in dev_keys for k in value.split(",")):
                        problems.append(f"{name} contains the development key; set a real one")
                elif value == dev_value:
                    problems.append(f"{name} is the development default; set a real value")
            if not self.PUBLIC_BASE_URL.startswith("https://"):
                problems.append("PUBLIC_BASE_URL must be https:// in production")
            sid = self.TWILIO_ACCOUNT_SID
            if sid and not TWILIO_ACCOUNT_SID_RE.fullmatch(sid):
                problems.append("TWILIO_ACCOUNT_SID must be 'AC' followed by 32 hex characters")
        # A malformed key ring would otherwise surface at the first encrypt, mid-request.
        problems.extend(self.pii_key_problems())
        # Likewise a malformed shared-key list would surface as every rule-signed webhook refused.
        try:
            self.twilio_shared_keys()
        except SettingsError as exc:
            problems.append(str(exc))
        return problems

    def twilio_shared_keys(self) -> dict[str, str]:
        """TWILIO_WEBHOOK_SHARED_KEYS as {key name: secret}; empty when the feature is off."""
        return dict(parse_shared_keys(self.TWILIO_WEBHOOK_SHARED_KEYS or ""))

    def pii_key_problems(self) -> list[str]:
        from worker.pii import KeyRing, PiiError  # pii imports this module

        keys = self.PII_KEYS or (None if self.APP_ENV is AppEnv.PRODUCTION else DEV_DEFAULTS["PII_KEYS"])
        index = self.PII_INDEX_KEY or (None if self.APP_ENV is AppEnv.PRODUCTION else DEV_DEFAULTS["PII_INDEX_KEY"])
        if keys is None or index is None:
            return []  # reported above as "not set"
        try:
            KeyRing.parse(keys, index)
        except PiiError as exc:
            return [f"PII_KEYS / PII_INDEX_KEY: {exc}"]
        return []

    def dev_defaults_in_use(self) -> list[str]:
        return [name for name in DEV_DEFAULTS if not getattr(self, name)]


@functools.lru_cache(maxsize=8)
def parse_shared_keys(value: str) -> tuple[tuple[str, str], ...]:
    """Parse "name:secret[,name2:secret2]" (cached: the receiver asks on every webhook).

    The name is split at the first ":", so a secret may contain ":" but no ",". Errors never
    quote a secret, only names and positions.
    """
    keys: dict[str, str] = {}
    for position, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, secret = entry.partition(":")
        name, secret = name.strip(), secret.strip()
        if not sep or not name or not secret:
            raise SettingsError(
                f"TWILIO_WEBHOOK_SHARED_KEYS: entry {position} must be 'name:secret' with both parts non-empty"
            )
        if any(c.isspace() for c in name):
            raise SettingsError(f"TWILIO_WEBHOOK_SHARED_KEYS: key name {name!r} contains whitespace")
        if name in keys:
            raise SettingsError(f"TWILIO_WEBHOOK_SHARED_KEYS: key name {name!r} is given twice")
        keys[name] = secret
    return tuple(keys.items())


_override: Settings | None = None


@functools.lru_cache(maxsize=1)
def _load() -> Settings:
    settings = Settings()
    problems = settings.check()
    if problems:
        raise SettingsError("refusing to start:\n  " + "\n  ".join(problems))
    missing = settings.dev_defaults_in_use()
    if missing and settings.APP_ENV is AppEnv.DEVELOPMENT:
        # Settings load before logging is configured (its level and format are settings):
        # this line must still go to stderr, never into a command's output on stdout.
        startup_logger(settings.LOG_FORMAT).warning(
            "development_secrets_in_use",
            settings=missing,
            hint="fine on a laptop; production refuses to start like this",
        )
    return settings


def get_settings() -> Settings:
    """The process-wide settings: an explicit override (tests), else the environment."""
    if _override is not None:
        return _override
    return _load()


def set_settings(settings: Settings | None) -> None:
    """Install (or clear, with None) an explicit settings object; tests use this."""
    global _override
    _override = settings
    _load.cache_clear()
