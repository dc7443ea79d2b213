"""Per-run isolation on the shared Postgres and Redis of this machine.

Each pytest run gets its own database (built by the migrations) and its own Redis database
number, so parallel runs (several developers, CI) never see each other's rows or tasks.
The environment is set before anything imports worker.settings, so subprocesses (worker,
beat, receiver) inherit exactly the same configuration.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid

import redis

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
RUN_ID = uuid.uuid4().hex[:10]
DB_NAME = f"msgworker_test_{RUN_ID}"
# PostgreSQL itself; migrations and database creation always go here.
DIRECT_DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
# MSGWORKER_TEST_PGBOUNCER=1: every process (the test's own included) reaches the database
# through a private PgBouncer in transaction mode on this port (tests/support/pgbouncer.py,
# started by the session's database fixture), as deployments with many hosts do.
PGBOUNCER_PORT: int | None = None
if os.environ.get("MSGWORKER_TEST_PGBOUNCER") == "1":
    with socket.socket() as _s:
        _s.bind(("127.0.0.1", 0))
        PGBOUNCER_PORT = int(_s.getsockname()[1])

TEST_PII_KEY = base64.urlsafe_b64encode(b"test-pii-key-0123456789abcdefghi").decode()
TEST_INDEX_KEY = base64.urlsafe_b64encode(b"test-index-key-0123456789abcdefg").decode()
TEST_AUTH_TOKEN = "test-twilio-auth-token"
TEST_ACCOUNT_SID = "AC" + "1" * 32
# Webhook Rules SharedKeys (name -> secret): the current key and one being rotated out.
TEST_SHARED_KEYS = {
    "webhooks_sharedkey_test_current": "test-shared-key-secret-current",
    "webhooks_sharedkey_test_previous": "test-shared-key-secret:previous",
}


def claim_redis_db() -> int:
    """A Redis database number no other live test run holds (locks expire after 2 h)."""
    admin = redis.Redis.from_url(f"{REDIS_BASE}/0")
    for n in range(1, 16):
        if admin.set(f"msgworker:test-redis-db:{n}", RUN_ID, nx=True, ex=7200):
            redis.Redis.from_url(f"{REDIS_BASE}/{n}").flushdb()
            return n
    raise RuntimeError("no free Redis database for this test run (15 runs in progress?)")


def release_redis_db(n: int) -> None:
    admin = redis.Redis.from_url(f"{REDIS_BASE}/0")
    if admin.get(f"msgworker:test-redis-db:{n}") == RUN_ID.encode():
        admin.delete(f"msgworker:test-redis-db:{n}")


def configure_environment(redis_db: int) -> dict[str, str]:
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": DIRECT_DATABASE_URL,
        "CELERY_BROKER_URL": f"{REDIS_BASE}/{redis_db}",
        "REDIS_URL": f"{REDIS_BASE}/{redis_db}",
        "PUBLIC_BASE_URL": "https://hooks.example.test",
        "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "TWILIO_WEBHOOK_SHARED_KEYS": ",".join(f"{name}:{secret}" for name, secret in TEST_SHARED_KEYS.items()),
        "META_APP_SECRET": "test-meta-app-secret",
        "META_VERIFY_TOKEN": "test-meta-verify-token",
        "PII_KEYS": f"t1:{TEST_PII_KEY}",
        "PII_INDEX_KEY": TEST_INDEX_KEY,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    if PGBOUNCER_PORT is not None:
        env["DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{PGBOUNCER_PORT}/{DB_NAME}"
        env["DATABASE_TRANSACTION_POOLER"] = "true"
    os.environ.update(env)
    return env
