"""Failed-login limits in Redis, so guessing is slow and nobody can lock an owner out.

Three counters, each a window that starts at its first failure:

- per client address: one address spraying many accounts;
- per (email, address): one address guessing one account;
- per email, across addresses, over a longer window: guessing spread over
  many addresses. Past it, only addresses that have not failed for this email
  in their window may try, so the owner still logs in from their own address
  while each guessing address is stopped at its first failure.

A hard lock per email would let anyone lock anyone out with a few wrong
passwords; OWASP's authentication and credential-stuffing guidance warns
against exactly that.

Fails open: when Redis is unreachable, logins go on (logged), because locking
everyone out of their accounts is worse than a short window without a limit.
Nothing here guards seats or coupons.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from fitnus.errors import RateLimited
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient

log = logging.getLogger(__name__)

# KEYS: a counter. ARGV: its window in seconds. The window starts at the
# first failure (EXPIRE NX needs Redis 7; the embedded server is 6.2).
_COUNT_FAILURE = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"""


@dataclass(frozen=True)
class _Counter:
    key: str
    window_seconds: int


@dataclass(frozen=True)
class _Reading:
    count: int
    ttl_seconds: int


@dataclass(frozen=True, kw_only=True)
class LoginThrottle:
    redis: RedisClient
    keys: Keys
    failures_per_address: int
    failures_per_email_and_address: int
    failures_per_email: int
    window_seconds: int
    email_window_seconds: int

    def _counters(self, email: str, address: str) -> tuple[_Counter, _Counter, _Counter]:
        return (
            _Counter(self.keys.login_failures_by_address(address), self.window_seconds),
            _Counter(self.keys.login_failures_by_email_and_address(email, address),
                     self.window_seconds),
            _Counter(self.keys.login_failures_by_email(email), self.email_window_seconds),
        )

    async def check(self, *, email: str, address: str) -> None:
        """Refuse before the password is even checked once a bound is reached."""
        counters = self._counters(email, address)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for counter in counters:
                    pipe.get(counter.key)
                    pipe.ttl(counter.key)
                replies = await pipe.execute()
        except RedisError:
            log.warning("login throttle unavailable, failing open", exc_info=True)
            return
        by_address, by_pair, by_email = (
            _Reading(int(replies[2 * i] or 0), max(int(replies[2 * i + 1]), 1))
            for i in range(len(counters))
        )
        waits = []
        if by_address.count >= self.failures_per_address:
            waits.append(by_address.ttl_seconds)
        if by_pair.count >= self.failures_per_email_and_address:
            waits.append(by_pair.ttl_seconds)
        if by_email.count >= self.failures_per_email and by_pair.count > 0:
            # Either window ending lets this address try again.
            waits.append(min(by_pair.ttl_seconds, by_email.ttl_seconds))
        if waits:
            raise RateLimited(
                "too many failed logins, try again later",
                retry_after_seconds=max(waits),
                code="too_many_login_attempts",
            )

    async def record_failure(self, *, email: str, address: str) -> None:
        """Count one failure on each counter, at once. Each counter is a
        script of its own: the three keys lie in different slots of a Redis
        Cluster, which runs nothing atomic across slots. Failures are rare
        enough to send the script's text each time."""
        try:
            await asyncio.gather(*(
                self.redis.eval(_COUNT_FAILURE, 1, counter.key, counter.window_seconds)
                for counter in self._counters(email, address)))
        except RedisError:
            log.warning("login throttle unavailable, failure not counted", exc_info=True)

    async def record_success(self, *, email: str, address: str) -> None:
        """The owner got in from here: this address may fail afresh. The
        per-email count stands, or a guesser would start over each time the
        owner logs in."""
        try:
            await self.redis.delete(self.keys.login_failures_by_email_and_address(email, address))
        except RedisError:
            log.warning("login throttle unavailable, counter not cleared", exc_info=True)
