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

import redis

from worker.settings import get_settings

__all__ = ["TokenBucket", "bucket"]

# KEYS[1]: the bucket. ARGV: rate (tokens/s), capacity, cost. Returns {1, 0} or {0, wait_ms}.
# The key lives as long as a refill to capacity takes, from a balance that may be in debt:
# expiring earlier would forgive the debt and let the next caller send too soon.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
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
if tokens >= 1 then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return {allowed, wait}
"""


class TokenBucket:
    """``take(key, rate, cost=n)``: 0.0 when ``n`` tokens were taken, else the seconds until a take can succeed."""

    def __init__(self, client: redis.Redis[bytes], *, prefix: str = "msgworker:rate:sender:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_TAKE)

    def take(self, key: str, rate: float, capacity: float | None = None, cost: int = 1) -> float:
        """Take ``cost`` tokens (a text's segments) at ``rate`` per second, ``capacity`` at most
        banked (default: one second's worth, at least 1). Succeeds with one token there, even when
        ``cost`` is more, leaving the bucket in debt (see the module docstring)."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        if cost < 1:
            raise ValueError("cost must be at least 1")
        cap = capacity if capacity is not None else max(1.0, rate)
        if cap < 1:
            raise ValueError("capacity must be at least 1")
        args = [repr(float(rate)), repr(float(cap)), str(int(cost))]
        allowed, wait_ms = self._script(keys=[self._prefix + key], args=args)
        return 0.0 if int(allowed) == 1 else int(wait_ms) / 1000.0

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
