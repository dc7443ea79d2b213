"""Per-sender send rate: a token bucket in Redis, refilled continuously, taken atomically.

Twilio queues what a sender cannot send at its MPS rate (a long code sends 1 segment/s,
toll-free 3, a short code 100+) and fails what waited longer than the validity period
(docs/compliance.md#throughput-and-segments). Keeping our own pace at the sender's rate
keeps that queue short, so a message goes out near the time its gate decision was made.

The bucket is one Redis hash per sender (``tokens``, ``ts``), updated by a Lua script so
that concurrent workers on many hosts share it exactly; the script reads Redis's own clock
(``TIME``), so hosts' clocks do not matter. A caller that gets no token is told how long to
wait; the send path then puts its row back in the outbox with that not-before time rather
than sleeping in a worker slot.

Waiting for the next release tick (every second) after that time wasted the sender's rate: a
backlogged long code (1 segment/s) sent about 70% of it. So the send path *reserves* instead
(``take_or_reserve``): when the next token is due within ``RESERVE_HORIZON`` (two seconds),
the script takes it now, in advance, for that row (the bucket goes into debt by the text's
cost, so every later caller waits behind it) and marks it held for the row in Redis; the row
goes back to the outbox not before that moment, and its send task is published, after the
commit, with a countdown to it. That task decides the row again from the start (consent, quiet
hours, caps: nothing is carried over but the token), and the script hands the held token over
instead of taking another. Whoever claims the row first (that task, or the release tick once
the time has passed) uses it; if the gate now says no, the held token simply expires. A
reservation is only ever a couple of seconds ahead, so no long ETA waits in Redis (the
project's rule, worker/outbound/release.py). The long-run rate is exactly the configured one:
a reserved token is one a take at its due time would have got.

Tokens are segments, not messages: Twilio's MPS is segments per second
(docs/compliance.md#throughput-and-segments), so a text costs
``compliance.segments.count_segments(body).segments`` tokens. A text may cost more than the
bucket holds (a 4-segment text on a 1/s long code whose bucket holds 1), and waiting
for ``cost`` tokens would starve it forever. So a take succeeds whenever at least one token is
there, takes the whole cost and lets the bucket go into debt: the balance goes negative and
the next caller waits until it is back to one token, i.e. until the segments just sent have
been paid for at the sender's rate. The long-run rate stays exact; a burst can reach
``capacity + cost - 1`` segments, which Twilio's own queue absorbs.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session

from worker.after_commit import BULK_PRIORITY, publish_after_commit
from worker.outbox import SEND_TASK
from worker.settings import get_settings

__all__ = ["RESERVE_HORIZON", "Reservation", "TokenBucket", "bucket", "take_or_reserve"]

# How far ahead a token may be reserved (seconds): the release tick's window (two seconds'
# worth per sender), so a backlog always has the next second's tokens spoken for.
RESERVE_HORIZON = 2.0
# Added to a reserved row's countdown so its task never runs before the row's not-before
# time (the database's clock decides that the row is due).
_COUNTDOWN_SLACK = 0.02
# A held token not handed over by then (the row was blocked, cancelled or sent another way)
# is dropped: it was paid for in the bucket already, so dropping it only under-uses the rate.
_HOLD_EXTRA_MS = 10_000

# KEYS[1]: the bucket; KEYS[2]: the caller's hold key (reservations only). ARGV: rate
# (tokens/s), capacity, cost, horizon_ms (0: never reserve), hold_extra_ms.
# Returns {1, 0, 0} (taken, or a token held for this caller handed over), {0, wait_ms, 1}
# (reserved: the caller's turn comes in wait_ms) or {0, wait_ms, 0}.
# The bucket key lives as long as a refill to capacity takes, from a balance that may be in
# debt: expiring earlier would forgive the debt and let the next caller send too soon.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
if horizon > 0 and redis.call('DEL', KEYS[2]) == 1 then
  return {1, 0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
end
local allowed = 0
local wait = 0
local reserved = 0
if tokens >= 1 then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
  if wait <= horizon then
    tokens = tokens - cost
    reserved = 1
    redis.call('SET', KEYS[2], '1', 'PX', wait + tonumber(ARGV[5]))
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return {allowed, wait, reserved}
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``TokenBucket.reserve`` got: ``wait`` 0.0 means send now; otherwise the seconds until
    the caller's turn, and whether a token is held for it then (``reserved``) or it must ask again."""

    wait: float
    reserved: bool


class TokenBucket:
    """``take(key, rate, cost=n)``: 0.0 when ``n`` tokens were taken, else the seconds until a take can succeed."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        *,
        prefix: str = "msgworker:rate:sender:",
        hold_prefix: str = "msgworker:rate:held:",
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._hold_prefix = hold_prefix
        self._script = client.register_script(_TAKE)

    def take(self, key: str, rate: float, capacity: float | None = None, cost: int = 1) -> float:
        """Take ``cost`` tokens (a text's segments) at ``rate`` per second, ``capacity`` at most
        banked (default: one second's worth, at least 1). Succeeds with one token there, even when
        ``cost`` is more, leaving the bucket in debt (see the module docstring)."""
        found = self._run(key, rate, capacity, cost, holder=None, horizon=0.0)
        return found.wait

    def reserve(
        self, key: str, rate: float, *, holder: str, horizon: float, capacity: float | None = None, cost: int = 1
    ) -> Reservation:
        """``take``, except that a token due within ``horizon`` seconds is taken now and held for
        ``holder`` (one row), and a token already held for ``holder`` is handed over."""
        if horizon <= 0:
            raise ValueError("horizon must be positive")
        return self._run(key, rate, capacity, cost, holder=holder, horizon=horizon)

    def _run(
        self, key: str, rate: float, capacity: float | None, cost: int, *, holder: str | None, horizon: float
    ) -> Reservation:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if cost < 1:
            raise ValueError("cost must be at least 1")
        cap = capacity if capacity is not None else max(1.0, rate)
        if cap < 1:
            raise ValueError("capacity must be at least 1")
        keys = [self._prefix + key, self._hold_prefix + (holder or "")]
        args = [repr(float(rate)), repr(float(cap)), str(int(cost)), str(int(horizon * 1000)), str(_HOLD_EXTRA_MS)]
        allowed, wait_ms, reserved = self._script(keys=keys, args=args)
        if int(allowed) == 1:
            return Reservation(0.0, reserved=False)
        return Reservation(int(wait_ms) / 1000.0, reserved=int(reserved) == 1)

    def reset(self, key: str) -> None:
        self._client.delete(self._prefix + key)


_lock = threading.Lock()
_cached: tuple[int, str, TokenBucket] | None = None


def bucket() -> TokenBucket:
    """The process's bucket client (one Redis connection pool per process, rebuilt after fork)."""
    global _cached
    url = get_settings().redis_url
    pid = os.getpid()
    with _lock:
        if _cached is None or _cached[0] != pid or _cached[1] != url:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            _cached = (pid, url, TokenBucket(client))
        return _cached[2]


def take_or_reserve(session: Session, *, sender_id: str, message_id: uuid.UUID, rate: float, cost: int) -> float:
    """The send path's take: 0.0 to send now, else the seconds until the row's token is due.

    When that token is reserved (due within RESERVE_HORIZON), the row's send task is published
    after ``session`` commits, with a countdown to that moment; the caller puts the row back in
    the outbox not before it. Otherwise the release tick brings the row back as before.
    """
    found = bucket().reserve(sender_id, rate, holder=str(message_id), horizon=RESERVE_HORIZON, cost=cost)
    if found.reserved:
        publish_after_commit(
            session,
            SEND_TASK,
            countdown=found.wait + _COUNTDOWN_SLACK,
            priority=BULK_PRIORITY,
            message_ids=[str(message_id)],
        )
    return found.wait
