"""Redis (the broker) stopped and started again under the real receiver; a private Redis and cluster each."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fault.conftest import Stack, traffic

pytestmark = pytest.mark.fault


def test_redis_stopped_then_started_every_2xx_is_processed_and_every_stop_recorded(stack: Stack) -> None:
    """With Redis down every webhook (a fifth of them STOP) is still stored and answered 200 within 3 s; once
    Redis is back, empty (every kicked task was lost with it), beat's sweeper drains them all: each text processed
    once, every STOP recorded and confirmed once."""
    base = stack.receiver()
    receiver = stack.procs[-1]
    stack.redis.kill()
    texts = traffic(30)
    with httpx.Client(timeout=10) as client:
        for text in texts:
            started = time.monotonic()
            assert stack.post(client, base, text) == 200
            assert time.monotonic() - started < 3
    assert stack.rows("SELECT count(*) FROM core.webhook_inbox WHERE status = 'pending'")[0][0] == len(texts)
    stack.redis.start()  # same port
    stack.worker()
    stack.beat()
    stack.wait_processed(texts)
    stack.assert_exactly_once(texts)
    stack.wait_confirmations(texts)
    assert "drain_kick_failed" in receiver.log()
