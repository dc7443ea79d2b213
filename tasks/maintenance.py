"""Small operational tasks: a probe that goes through broker, worker, database and Redis."""

from __future__ import annotations

import redis
from sqlalchemy import text

from worker.app import app
from worker.settings import get_settings
from worker.tasks_base import DbTask

PING_KEY = "msgworker:ping:{token}"


# Idempotent; `msgworker doctor` and the end-to-end wiring tests use it to prove that a
# real worker consumes tasks and reaches the database.
@app.task(base=DbTask, bind=True, name="tasks.maintenance.ping")
def ping(self: DbTask, *, token: str) -> str:
    db_time = self.session.execute(text("SELECT now()::text")).scalar_one()
    client = redis.Redis.from_url(get_settings().redis_url)
    client.set(PING_KEY.format(token=token), str(db_time), ex=600)
    return token
