"""Per-sender send rate: a token bucket in Redis, refilled continuously, taken atomically.

Twilio queues what a sender cannot send at its MPS rate (a long code sends 1 segment/s,
toll-free 3, a short code 100+) and fails what waited longer than the validity period
(COMPLIANCE.md §2, "Throughput and queueing"). Keeping our own pace at the sender's rate
keeps that queue short, so a message goes out near the time its gate decision was made.

The bucket is one Redis hash per sender (``tokens``, ``ts``), updated by a Lua script so
that concurrent workers on many hosts share it exactly; the script reads Redis's own clock
(``TIME``), so hosts' clocks do not matter. A caller that gets no token is told how long to
wait; the send path then puts its row back in the outbox with that not-before time rather
than sleeping in a worker slot.
"""

from __future__ import annotations

import os
import threading

import redis

from worker.settings import get_settings

__all__ = ["TokenBucket", "bucket"]

# KEYS[1]: the bucket. ARGV: rate (tokens/s), capacity. Returns {1, 0} or {0, wait_ms}.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
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
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return {allowed, wait}
"""


class TokenBucket:
    """``take(key, rate)``: 0.0 when a token was taken, else the seconds until one will be there."""

    def __init__(self, client: redis.Redis[bytes], *, prefix: str = "msgworker:rate:sender:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_TAKE)

    def take(self, key: str, rate: float, capacity: float | None = None) -> float:
        if rate <= 0:
            raise ValueError("rate must be positive")
        cap = capacity if capacity is not None else max(1.0, rate)
        allowed, wait_ms = self._script(keys=[self._prefix + key], args=[repr(float(rate)), repr(float(cap))])
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
