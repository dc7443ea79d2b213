"""/readyz and /healthz of a real receiver whose database never answers (a black hole, not a refusal)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import processes
from tests.support.servers import BlackHole
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def timed_get(client: httpx.Client, url: str) -> tuple[int, float]:
    started = time.monotonic()
    status = client.get(url).status_code
    return status, time.monotonic() - started


def test_readyz_answers_within_2s_and_healthz_at_once_while_the_database_never_answers(
    black_hole: BlackHole, proc_dir: Path
) -> None:
    """50 concurrent /readyz calls against a silent database (more than the thread pool that used to serve them
    has threads) are each answered 503 within 2 s, and /healthz, asked meanwhile, answers 200 at once; a
    webhook gets 503 with Retry-After within the store deadline."""
    silent = f"postgresql+psycopg://postgres@127.0.0.1:{black_hole.port}/msgworker"
    proc, base = processes.start_receiver(proc_dir, env={"DATABASE_URL": silent, "WEBHOOK_STORE_TIMEOUT": "2"})
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        with httpx.Client(timeout=30, limits=limits) as client, concurrent.futures.ThreadPoolExecutor(64) as pool:
            ready = [pool.submit(timed_get, client, base + "/readyz") for _ in range(50)]
            time.sleep(0.3)  # the readiness calls are all waiting now
            health = [timed_get(client, base + "/healthz") for _ in range(5)]
            answers = [f.result() for f in ready]
        assert all(status == 200 and took < 0.5 for status, took in health), health
        assert all(status == 503 for status, _ in answers)
        assert max(took for _, took in answers) < 2.0, sorted(took for _, took in answers)[-3:]
        assert httpx.get(base + "/readyz", timeout=5).json()["database"].startswith("error")

        body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_="+14155550123", to="+12125550100"))
        started = time.monotonic()
        resp = httpx.post(base + SMS_PATH, content=body, headers=headers, timeout=30)
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "5"
        assert time.monotonic() - started < 3.5  # the store deadline (2 s) or the connect timeout (3 s)
    finally:
        proc.stop()
    assert "Traceback" not in proc.log()
