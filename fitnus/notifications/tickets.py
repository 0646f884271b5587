"""Single-use, short-lived tickets for browsers' EventSource, which cannot send
an Authorization header: a ticket in a URL may end up in a log, so it works
once and for seconds. Fails closed: without Redis no ticket is valid."""

from __future__ import annotations

import secrets

from fitnus.errors import NotAuthenticated
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient

TICKET_TTL_SECONDS = 30
TICKET_BYTES = 24


class EventTickets:
    def __init__(
        self, *, redis: RedisClient, keys: Keys, ttl_seconds: int = TICKET_TTL_SECONDS,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.ttl_seconds = ttl_seconds

    async def issue(self, user_id: int) -> str:
        ticket = secrets.token_urlsafe(TICKET_BYTES)
        await self._redis.set(self._keys.event_ticket(ticket), user_id, ex=self.ttl_seconds)
        return ticket

    async def redeem(self, ticket: str) -> int:
        """The ticket's user; the ticket is spent whatever happens next."""
        user_id = await self._redis.getdel(self._keys.event_ticket(ticket))
        if user_id is None:
            raise NotAuthenticated("the ticket is unknown, spent or expired",
                                   code="invalid_ticket")
        return int(user_id)
