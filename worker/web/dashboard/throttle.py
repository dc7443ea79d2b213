"""Failed password sign-ins, counted per account in Redis: past the limit, the account waits.

A password can be guessed; a 256-bit API token cannot, so only password sign-ins are counted.
The count is per e-mail address (its SHA-256, never the address, is the key), not per client
address: behind the reverse proxy every client has the proxy's address, and one guesser would
lock everyone out. ``FAILURES`` failed tries within ``WINDOW_SECONDS`` refuse further tries for that
account until the window has passed, whether or not the password is right, so the answer
cannot confirm a guess; a good sign-in clears the count. Unknown addresses are counted the same
way, so the answer does not tell which addresses have accounts.

The price of a per-account count: anyone who knows a staff address can keep that account's
password sign-in waiting (10 posts per 15 minutes). We accept it: sign-in with an API token is
never counted, so the person still gets in; each refusal is logged
(``dashboard_sign_in_throttled``) for the operators; and the dashboard is meant for the internal
listener, where the proxy's own per-client limit stops one source from doing it (docs/dashboard.md).

If Redis does not answer, sign-in goes on uncounted and the failure is logged
(``dashboard_sign_in_throttle_unavailable``): staff must not be locked out of the compliance
tool by a cache outage, and the argon2 cost (tens of milliseconds a try) still slows guessing.
"""

from __future__ import annotations

import functools
import hashlib

import redis
import structlog

__all__ = ["FAILURES", "WINDOW_SECONDS", "SignInThrottle"]

FAILURES = 10
WINDOW_SECONDS = 15 * 60
_PREFIX = "msgworker:dashboard:sign_in_failures:"

log = structlog.get_logger(__name__)


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis[bytes]:
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


class SignInThrottle:
    def __init__(self, redis_url: str) -> None:
        self.url = redis_url

    @staticmethod
    def _key(email: str) -> str:
        return _PREFIX + hashlib.sha256(email.strip().lower().encode()).hexdigest()

    def blocked(self, email: str) -> bool:
        """True while the account has ``FAILURES`` failed tries in the current window."""
        try:
            count = _client(self.url).get(self._key(email))
        except redis.RedisError as exc:
            log.warning("dashboard_sign_in_throttle_unavailable", error=type(exc).__name__)
            return False
        return count is not None and int(count) >= FAILURES

    def failed(self, email: str) -> None:
        key = self._key(email)
        try:
            with _client(self.url).pipeline() as pipe:
                # The window starts at the first failure and is not pushed back by later ones
                # (SET NX EX, not EXPIRE NX: that needs Redis 7).
                pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)
                pipe.incr(key)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("dashboard_sign_in_throttle_unavailable", error=type(exc).__name__)

    def succeeded(self, email: str) -> None:
        try:
            _client(self.url).delete(self._key(email))
        except redis.RedisError as exc:
            log.warning("dashboard_sign_in_throttle_unavailable", error=type(exc).__name__)
