"""A leader lease in Redis: of several scheduler processes, one acts.

The holder renews well inside the TTL; a holder that cannot renew stops
acting at its own deadline, which is before the key expires for the others.
"""

from __future__ import annotations

import logging
import time
import uuid

from redis.exceptions import RedisError

from fitnus.redis_client import RedisClient

log = logging.getLogger(__name__)

# Renew if we hold it, take it if nobody does; 1 when we hold it afterwards.
_ACQUIRE_OR_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Stop acting this long before the lease would expire for the others.
SAFETY_MARGIN_FRACTION = 0.2


class LeaderLease:
    def __init__(self, *, redis: RedisClient, key: str, ttl_seconds: float) -> None:
        self._redis = redis
        self._key = key
        self._ttl_ms = int(ttl_seconds * 1000)
        self._token = uuid.uuid4().hex
        self._acts_until = 0.0

    @property
    def is_leader(self) -> bool:
        return time.monotonic() < self._acts_until

    async def acquire_or_renew(self) -> bool:
        """Fails closed: when Redis does not answer, this process is not the leader."""
        started = time.monotonic()
        try:
            held = await self._redis.eval(_ACQUIRE_OR_RENEW, 1, self._key, self._token,
                                          self._ttl_ms)
        except RedisError:
            log.warning("leader lease unreachable, not acting", exc_info=True)
            held = 0
        was_leader = self.is_leader
        if held:
            self._acts_until = started + self._ttl_ms / 1000 * (1 - SAFETY_MARGIN_FRACTION)
        else:
            self._acts_until = 0.0
        if held and not was_leader:
            log.info("became the scheduler leader")
        elif was_leader and not held:
            log.warning("lost the scheduler leadership")
        return bool(held)

    async def release(self) -> None:
        self._acts_until = 0.0
        try:
            await self._redis.eval(_RELEASE, 1, self._key, self._token)
        except RedisError:
            log.warning("could not release the leader lease; it expires by itself", exc_info=True)
