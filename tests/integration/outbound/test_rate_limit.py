"""The per-sender token bucket (worker.outbound.rate_limit) on the real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from worker.outbound.rate_limit import Reservation, TokenBucket


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


def test_rejects_nonsense_costs_and_capacities(tb: TokenBucket) -> None:
    """A text costs at least one segment, and a bucket that can never hold one token would never send."""
    with pytest.raises(ValueError, match="cost"):
        tb.take("x", 1.0, cost=0)
    with pytest.raises(ValueError, match="capacity"):
        tb.take("x", 1.0, capacity=0.5)


def test_a_three_segment_text_makes_the_next_wait_three_seconds(tb: TokenBucket) -> None:
    """At 1 segment/s, a 3-segment text goes at once and the next text waits for its 3 segments to be paid."""
    assert tb.take("long-code", 1.0, cost=3) == 0.0
    wait = tb.take("long-code", 1.0)
    assert 2.8 <= wait <= 3.0


def test_a_text_bigger_than_the_bucket_is_sent_after_waiting(tb: TokenBucket) -> None:
    """A 5-segment text on a bucket holding 2 is not starved: once the returned wait has passed it goes,
    and the debt it leaves holds the next text back for the segments it sent."""
    assert tb.take("small", 10.0, capacity=2) == 0.0
    assert tb.take("small", 10.0, capacity=2) == 0.0
    wait = tb.take("small", 10.0, capacity=2, cost=5)
    assert 0.05 <= wait <= 0.1
    for _ in range(3):
        time.sleep(wait)
        wait = tb.take("small", 10.0, capacity=2, cost=5)
        if wait == 0.0:
            break
    assert wait == 0.0, "the 5-segment text was never let through"
    # About 1 token when it went; 5 taken leaves about -4: the next waits ~0.5 s for the balance to reach 1.
    assert 0.4 <= tb.take("small", 10.0, capacity=2) <= 0.52


def test_debt_outlives_the_time_a_full_refill_takes(tb: TokenBucket) -> None:
    """A debt is not forgiven by the key expiring: 30 segments at 10/s (capacity 1) still hold the
    sender back after 1.2 s, longer than a refill from empty would take."""
    assert tb.take("debt", 10.0, capacity=1, cost=30) == 0.0
    time.sleep(1.2)
    wait = tb.take("debt", 10.0, capacity=1)
    assert 1.6 <= wait <= 1.8


def test_a_token_due_within_the_horizon_is_held_for_its_row(tb: TokenBucket, clean_redis: redis.Redis) -> None:
    """At 1/s: the second row gets the token due in ~1 s held for it, the third the one after; each holder
    is handed its own token when it asks again, and nobody else can spend them."""
    assert tb.take("lc", 1.0) == 0.0
    second = tb.reserve("lc", 1.0, holder="row-2", horizon=2.0)
    third = tb.reserve("lc", 1.0, holder="row-3", horizon=2.0)
    assert second.reserved
    assert 0.9 <= second.wait <= 1.0
    assert third.reserved
    assert 1.9 <= third.wait <= 2.0
    # Beyond the horizon: told when to come back, nothing held.
    fourth = tb.reserve("lc", 1.0, holder="row-4", horizon=2.0)
    assert not fourth.reserved
    assert 2.9 <= fourth.wait <= 3.0
    assert clean_redis.exists("msgworker:rate:held:row-4") == 0
    # A plain take waits behind both held tokens.
    assert 2.8 <= tb.take("lc", 1.0) <= 3.0
    # Each holder is handed its token once, however full or empty the bucket is.
    assert tb.reserve("lc", 1.0, holder="row-2", horizon=2.0) == Reservation(0.0, reserved=False)
    assert tb.reserve("lc", 1.0, holder="row-3", horizon=2.0) == Reservation(0.0, reserved=False)
    again = tb.reserve("lc", 1.0, holder="row-2", horizon=2.0)
    assert again.wait > 2.8


def test_a_held_token_expires_unspent(tb: TokenBucket, clean_redis: redis.Redis) -> None:
    """A held token lives its wait plus ten seconds: a row blocked meanwhile leaves nothing spendable behind."""
    assert tb.take("ttl", 1.0) == 0.0
    assert tb.reserve("ttl", 1.0, holder="row-x", horizon=2.0).reserved
    ttl_ms = clean_redis.pttl("msgworker:rate:held:row-x")
    assert 10_000 < ttl_ms <= 11_000


def test_reserving_needs_a_horizon(tb: TokenBucket) -> None:
    """A reservation with no horizon would be a plain take in disguise; it is refused."""
    with pytest.raises(ValueError, match="horizon"):
        tb.reserve("x", 1.0, holder="row", horizon=0)
