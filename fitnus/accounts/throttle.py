"""Failed-login limits in Redis, per email and per client address.

Fails open: when Redis is unreachable, logins go on (logged), because locking
everyone out of their accounts is worse than a short window without a limit.
Nothing here guards seats or coupons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from fitnus.errors import RateLimited
from fitnus.keys import Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    redis: Redis
    keys: Keys
    failures_per_email: int
    failures_per_address: int
    window_seconds: int

    def _counters(self, email: str, address: str) -> list[tuple[str, int]]:
        return [
            (self.keys.login_failures_by_email(email), self.failures_per_email),
            (self.keys.login_failures_by_address(address), self.failures_per_address),
        ]

    async def check(self, *, email: str, address: str) -> None:
        """Refuse before the password is even checked once a bound is reached."""
        counters = self._counters(email, address)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, _ in counters:
                    pipe.get(key)
                    pipe.ttl(key)
                replies = await pipe.execute()
        except RedisError:
            log.warning("login throttle unavailable, failing open", exc_info=True)
            return
        for index, (_, bound) in enumerate(counters):
            count, ttl = replies[2 * index], replies[2 * index + 1]
            if count is not None and int(count) >= bound:
                raise RateLimited(
                    "too many failed logins, try again later",
                    retry_after_seconds=max(int(ttl), 1),
                    code="too_many_login_attempts",
                )

    async def record_failure(self, *, email: str, address: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key, _ in self._counters(email, address):
                    # SET NX EX then INCR: the window starts at the first failure
                    # (EXPIRE NX needs Redis 7; the embedded server is 6.2).
                    pipe.set(key, 0, ex=self.window_seconds, nx=True)
                    pipe.incr(key)
                await pipe.execute()
        except RedisError:
            log.warning("login throttle unavailable, failure not counted", exc_info=True)

    async def clear_email(self, email: str) -> None:
        try:
            await self.redis.delete(self.keys.login_failures_by_email(email))
        except RedisError:
            log.warning("login throttle unavailable, counter not cleared", exc_info=True)
