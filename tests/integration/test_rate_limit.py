"""The per-sender token bucket (worker.rate_limit) on the real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from worker.rate_limit import TokenBucket


@pytest.fixture
def tb(clean_redis: redis.Redis) -> TokenBucket:
    return TokenBucket(clean_redis, prefix="test:rate:")


def test_first_take_succeeds_then_waits_at_one_per_second(tb: TokenBucket) -> None:
    """A long code (1/s): one token at once, then a wait close to one second."""
    assert tb.take("s1", 1.0) == 0.0
    wait = tb.take("s1", 1.0)
    assert 0.9 <= wait <= 1.0


def test_refills_over_time(tb: TokenBucket) -> None:
    """After the bucket refills (10/s, 0.15 s later), a token is available again."""
    assert tb.take("s2", 10.0, capacity=1) == 0.0
    assert tb.take("s2", 10.0, capacity=1) > 0
    time.sleep(0.15)
    assert tb.take("s2", 10.0, capacity=1) == 0.0


def test_senders_are_independent(tb: TokenBucket) -> None:
    """Draining one sender's bucket leaves another's untouched."""
    assert tb.take("a", 1.0) == 0.0
    assert tb.take("a", 1.0) > 0
    assert tb.take("b", 1.0) == 0.0


def test_concurrent_takers_share_the_rate_exactly(tb: TokenBucket, clean_redis: redis.Redis) -> None:
    """Eight threads hammering a 5/s bucket (capacity 5) for ~1 s get at most 5 + 5*elapsed tokens."""
    got = 0
    lock = threading.Lock()
    start = time.monotonic()

    def worker() -> None:
        nonlocal got
        local = TokenBucket(redis.Redis(connection_pool=clean_redis.connection_pool), prefix="test:rate:")
        while time.monotonic() - start < 1.0:
            if local.take("shared", 5.0) == 0.0:
                with lock:
                    got += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert 5 <= got <= 5 + int(5 * elapsed) + 1


def test_rejects_nonsense_rates(tb: TokenBucket) -> None:
    """A zero or negative rate is a configuration bug, refused loudly."""
    with pytest.raises(ValueError, match="positive"):
        tb.take("x", 0)
