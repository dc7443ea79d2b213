"""The fault suite's stack: a private PostgreSQL cluster and Redis per test, with the real receiver,
worker and beat on them, so a test can stop, freeze or restart the database or the broker without
touching the shared services other runs use.

The cluster is a copy of one made (initdb + migrations) once per session, so each test starts from
a migrated, empty database in well under a second. Checks read that cluster directly.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.factories import make_station, phone, station_number
from tests.support import processes
from tests.support.processes import Proc, wait_for
from tests.support.servers import OwnPostgres, OwnRedis
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs
from worker import migrate, pii
from worker.provider.fake import FakeTwilio


@pytest.fixture(scope="session")
def pg_template() -> Iterator[OwnPostgres]:
    """A stopped cluster with the database migrated to head, copied by each test."""
    server = OwnPostgres.create()
    try:
        server.start()
        server.create_database()
        migrate.upgrade("head", server.url)
        server.stop()
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_pg(pg_template: OwnPostgres) -> Iterator[OwnPostgres]:
    server = OwnPostgres.copy_of(pg_template)
    server.start()
    yield server
    server.remove()


@pytest.fixture
def own_redis(proc_dir: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(proc_dir)
    server.start()
    yield server
    server.kill()


@dataclass(frozen=True)
class Text:
    """One inbound SMS as Twilio would post it."""

    sid: str
    sender: str
    body: str

    @property
    def is_stop(self) -> bool:
        return self.body == "STOP"


def traffic(n: int, *, stop_every: int = 5) -> list[Text]:
    """n texts from n numbers; every ``stop_every``-th is a STOP (each from its own number)."""
    return [Text(new_sid(), phone(), "STOP" if i % stop_every == 0 else f"Hello, party of {i}?") for i in range(n)]


@dataclass
class Stack:
    """The private servers, the processes started on them, and checks against that database."""

    pg: OwnPostgres
    redis: OwnRedis
    fake: FakeTwilio
    proc_dir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)
    to: str = ""

    # -- processes ------------------------------------------------------------------
    def receiver(self, **env: str) -> str:
        proc, base = processes.start_receiver(self.proc_dir, env={**self.env, **env})
        self.procs.append(proc)
        return base

    def worker(self, name: str = "worker", concurrency: int = 2, **env: str) -> Proc:
        proc = processes.start_worker(self.proc_dir, env={**self.env, **env}, name=name, concurrency=concurrency)
        self.procs.append(proc)
        return proc

    def beat(self, **env: str) -> Proc:
        proc = processes.start_beat(self.proc_dir, env={**self.env, **env})
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in self.procs)

    # -- the database -----------------------------------------------------------------
    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg.dsn, connect_timeout=3) as conn:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    def add_station(self) -> str:
        """A station whose SMS number the texts are sent to."""
        engine = create_engine(self.pg.url)
        try:
            with Session(engine) as session, session.begin():
                self.to = station_number()
                make_station(session, sms_number=self.to)
        finally:
            engine.dispose()
        return self.to

    # -- webhooks ---------------------------------------------------------------------
    def post(self, client: httpx.Client, base: str, text: Text) -> int:
        """POST the text as Twilio would; the status code, or 0 when no answer came (connection error)."""
        raw, headers = signed_form(SMS_PATH, sms_pairs(sid=text.sid, from_=text.sender, to=self.to, body=text.body))
        try:
            return client.post(base + SMS_PATH, content=raw, headers=headers).status_code
        except httpx.HTTPError:
            return 0

    def post_all(self, base: str, texts: Sequence[Text], *, threads: int = 8) -> dict[str, int]:
        """Each text's answer by sid, posted concurrently."""
        with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(threads) as pool:
            codes = list(pool.map(lambda t: self.post(client, base, t), texts))
        return {t.sid: code for t, code in zip(texts, codes, strict=True)}

    def processed(self, texts: Sequence[Text]) -> bool:
        sids = [t.sid for t in texts]
        done = self.rows("SELECT count(*) FROM core.webhook_inbox WHERE provider_event_id = ANY(%s)"
                         " AND status = 'processed'", sids)[0][0]
        return bool(done == len(sids))

    def wait_processed(self, texts: Sequence[Text], timeout: float = 90) -> None:
        wait_for(lambda: self.processed(texts), timeout=timeout, interval=0.5, what=f"{len(texts)} texts processed",
                 log=self.procs[-1].log_path if self.procs else None)

    def assert_exactly_once(self, texts: Sequence[Text]) -> None:
        """Each text is one inbox row and one message; each STOP is one opt-out and one confirmation at Twilio."""
        sids = [t.sid for t in texts]
        inbox = Counter(dict(self.rows("SELECT provider_event_id, count(*) FROM core.webhook_inbox"
                                       " WHERE provider_event_id = ANY(%s) GROUP BY 1", sids)))
        messages = Counter(dict(self.rows("SELECT provider_message_id, count(*) FROM core.messages"
                                          " WHERE provider_message_id = ANY(%s) GROUP BY 1", sids)))
        assert inbox == Counter(sids), "inbox rows lost or doubled"
        assert messages == Counter(sids), "messages lost or doubled"
        stops = [t.sender for t in texts if t.is_stop]
        index = {pii.blind_index(n, kind="phone"): n for n in stops}
        opt_outs = Counter(dict(self.rows("SELECT phone_index, count(*) FROM compliance.consent_events"
                                          " WHERE kind = 'opt_out' AND phone_index = ANY(%s) GROUP BY 1",
                                          list(index))))
        assert {index[bytes(k)]: v for k, v in opt_outs.items()} == dict.fromkeys(stops, 1), "opt-outs lost or doubled"

    def wait_confirmations(self, texts: Sequence[Text], timeout: float = 90) -> None:
        """Every STOP's one confirmation reached the fake Twilio, and no number got two."""
        stops = [t.sender for t in texts if t.is_stop]
        wait_for(lambda: all(self.fake.sent_to(n) for n in stops), timeout=timeout, interval=0.5,
                 what=f"{len(stops)} confirmations at Twilio", log=self.procs[-1].log_path if self.procs else None)
        per_number = Counter(m["to"] for m in self.fake.messages)
        assert {n: per_number[n] for n in stops} == dict.fromkeys(stops, 1), "a confirmation lost or sent twice"
        assert sum(per_number.values()) == len(stops), "texts at Twilio that no STOP asked for"


# Short timers, so a fault heals within a test: the sweeper re-drains after 1 s, a worker that died
# mid-send is reconciled after 5 s, the worker gives up on a silent database after 3 s.
FAST = {
    "INBOX_SWEEP_GRACE_SECONDS": "1",
    "OUTBOUND_RATE_LIMIT_ENABLED": "false",
    "OUTBOUND_SENDING_STALE_SECONDS": "5",
    "OUTBOUND_RECONCILE_ABSENT_SECONDS": "5",
    "OUTBOUND_QUEUED_STALE_SECONDS": "5",
    "DATABASE_ANSWER_TIMEOUT": "3",
}


@pytest.fixture
def stack(own_pg: OwnPostgres, own_redis: OwnRedis, proc_dir: Path, fake_twilio: FakeTwilio) -> Iterator[Stack]:
    env = {"DATABASE_URL": own_pg.url, "CELERY_BROKER_URL": own_redis.url, "REDIS_URL": own_redis.url,
           "TWILIO_API_BASE_URL": fake_twilio.base_url, **FAST}
    built = Stack(pg=own_pg, redis=own_redis, fake=fake_twilio, proc_dir=proc_dir, env=env)
    built.add_station()
    try:
        yield built
    finally:
        with contextlib.suppress(Exception):
            own_pg.thaw()
        built.stop_all()
