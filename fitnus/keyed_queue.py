"""The keyed queue: per-key FIFO in Redis, drained by one lease holder at a time.

Reservations key it by timeslot, bids by auction, club joins by meetup.
Every key of one queue shares a hash tag (``{timeslot:42}``), so each script
stays in one slot and a Redis Cluster spreads the queues over its masters.
What lives elsewhere (the sweeper's set of active keys, the pending record
written with a request) is written in its own step, in an order that leaves
nothing visible half-done (``enqueue``). The drain loop (``drain``) and the
sweeper (``sweep``) are written once here; each kind brings only how it
decides a batch and what it announces once that batch committed.

Order and throughput come from here; correctness does not. The lease carries a
fencing token that the database write checks (a holder whose lease expired
cannot commit), items leave the list only after their batch committed, and
deciding an item twice is a no-op in the database. A crash therefore leaves
items to be decided again, never lost and never applied twice.

Fails closed: when Redis is down nothing is queued and callers get an error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import RedisError

from fitnus.db import causes, is_passing
from fitnus.redis_client import RedisClient

log = logging.getLogger(__name__)

# KEYS: queue, position, scheduled flag. ARGV: payload json, scheduled ttl ms.
# Stamps the payload with its place in line and Redis's clock (how long it
# waits, for operators). Returns {position, 1 if the caller must send a drain
# message}.
_ENQUEUE = """
local position = redis.call('INCR', KEYS[2])
local payload = cjson.decode(ARGV[1])
payload['position'] = position
local now = redis.call('TIME')
payload['enqueued_at'] = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('RPUSH', KEYS[1], cjson.encode(payload))
local first = redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2])
if first then return {position, 1} end
return {position, 0}
"""

# KEYS: the record. ARGV: its ttl in seconds, then fields and values. One
# step, so no record outlives its TTL.
_WRITE_RECORD = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return redis.call('EXPIRE', KEYS[1], ARGV[1])
"""

# KEYS: queue, scheduled flag. Whether the key still needs the sweeper: it
# holds items, or a drain message is due (whose items may be on their way).
_BUSY = """
if redis.call('LLEN', KEYS[1]) > 0 then return 1 end
return redis.call('EXISTS', KEYS[2])
"""

# KEYS: lease, fence. ARGV: ttl ms. Returns the new fencing token, or 0.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""

# KEYS: fence. ARGV: a token the database has seen. Raises the counter to it
# if it is behind (Redis lost it: a restart without persistence, a failover
# to a replica that lagged); 1 if it was.
_CATCH_UP = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS: lease. ARGV: token, ttl ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease, queue, failures, set-aside latch. ARGV: token, count. Drops
# decided items if still the holder; a commit clears the failures counted
# and lets the next item that fails for good be set aside.
_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
redis.call('DEL', KEYS[3], KEYS[4])
return redis.call('LLEN', KEYS[2])
"""

# KEYS: failures, set-aside latch. ARGV: position, attempts, ms, ttl s.
# Counts a failure of the item at that position; 1 if it has now failed
# ``attempts`` times over ``ms`` at least and the latch is open.
_FAILED = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSETNX', KEYS[1], 'since:' .. ARGV[1], now_ms)
redis.call('EXPIRE', KEYS[1], ARGV[4])
local since = tonumber(redis.call('HGET', KEYS[1], 'since:' .. ARGV[1]))
if count < tonumber(ARGV[2]) or now_ms - since < tonumber(ARGV[3]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return 1
"""

# KEYS: lease, queue, set-aside list, failures, set-aside latch. ARGV: token,
# the head's position, the latch's ttl s. Moves the head to the set-aside
# list if still the holder and it is that item, and closes the latch.
_SET_ASIDE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head or cjson.decode(head)['position'] ~= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[3], redis.call('LPOP', KEYS[2]))
redis.call('HDEL', KEYS[4], ARGV[2], 'since:' .. ARGV[2])
redis.call('SET', KEYS[5], '1', 'EX', ARGV[3])
return 1
"""

# KEYS: a flag, fence. ARGV: token. Sets the flag unless a newer lease than
# the token's was handed out since.
_FLAG_AS_HOLDER = """
if tonumber(redis.call('GET', KEYS[2]) or '0') > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], '1')
return 1
"""

# KEYS: lease. ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# A drain message is in flight for this long at most before another may be sent.
SCHEDULED_TTL_MS = 5_000
# An item whose deciding failed alone this many times, over this long at
# least, is set aside (``drain``); errors of the moment (a lock wait, the
# database or Redis away) do not count. Each failure ends its drain, for the
# drain message's retry.
ITEM_ATTEMPTS = 3
ITEM_FAILING_SECONDS = 5
# How long an item's failures are remembered.
FAILURES_TTL_S = 86_400
# After an item is set aside, the next that fails for good holds its queue
# until an item commits, an operator clears what was set aside, or this long.
SET_ASIDE_LATCH_S = 3_600


@dataclass(frozen=True)
class QueueState:
    """One key's queue as an operator sees it."""

    kind: str
    key: str
    depth: int
    oldest_age_s: float | None
    lease_token: int | None
    lease_left_s: float | None
    set_aside: int


@dataclass(frozen=True)
class Record:
    """A hash written just before a request is queued (its pending command)."""

    key: str
    fields: dict[str, str | int]
    ttl_seconds: int


@dataclass(frozen=True)
class QueuedItem:
    position: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Enqueued:
    position: int
    must_schedule_drain: bool


class KeyedQueue:
    """The queues of one kind (e.g. "timeslot"), one per key (e.g. a timeslot id)."""

    def __init__(self, *, redis: RedisClient, prefix: str, kind: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self.kind = kind
        self._enqueue = redis.register_script(_ENQUEUE)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._catch_up = redis.register_script(_CATCH_UP)
        self._ack = redis.register_script(_ACK)
        self._release = redis.register_script(_RELEASE)
        self._failed = redis.register_script(_FAILED)
        self._set_aside = redis.register_script(_SET_ASIDE)
        self._flag_as_holder = redis.register_script(_FLAG_AS_HOLDER)
        self._busy = redis.register_script(_BUSY)

    def _key(self, key: int | str, part: str) -> str:
        return f"{self._prefix}{{{self.kind}:{key}}}:{part}"

    def active_set(self) -> str:
        """Keys that may hold items: what the sweeper walks."""
        return f"{self._prefix}keyed:{self.kind}:active"

    def set_aside_set(self) -> str:
        """Keys with items set aside, for operators."""
        return f"{self._prefix}keyed:{self.kind}:set-aside"

    async def enqueue(
        self, key: int | str, payload: dict[str, Any], *, record: Record | None = None,
    ) -> Enqueued:
        """Append, with ``record`` (e.g. the pending command) written first.

        The item goes in last, in one script (a flash crowd's web processes
        spend most of their time on this call): whatever fails before it
        leaves nothing queued, only a record no one was told of (the caller
        got an error, not its id) until it expires, or a key the sweeper
        finds empty and forgets. The key goes into the sweeper's set before
        the item and, when this item starts a new drain, again after it: a
        sweeper that read the queue empty and forgot the key in between
        (``forget_if_empty``) cannot hide a queue whose drain message is then
        lost. An item that joins a drain already due rides on that drain.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            if record is not None:
                # The script's text, not its digest: a cluster's pipeline
                # does not load the scripts it runs.
                pipe.eval(_WRITE_RECORD, 1, record.key, record.ttl_seconds,
                          *(part for pair in record.fields.items() for part in pair))
            pipe.sadd(self.active_set(), str(key))
            await pipe.execute()
        position, schedule = await self._enqueue(
            keys=[self._key(key, "queue"), self._key(key, "position"),
                  self._key(key, "scheduled")],
            args=[json.dumps(payload), SCHEDULED_TTL_MS])
        if schedule:
            try:
                await self._redis.sadd(self.active_set(), str(key))
            except RedisError:
                # Queued all the same: say so, rather than an error that would
                # send a retry into the queue a second time.
                log.warning("%s %s: queued, not re-added to the sweeper's set", self.kind, key,
                            exc_info=True)
        return Enqueued(position=int(position), must_schedule_drain=bool(schedule))

    async def clear_scheduled(self, key: int | str) -> None:
        """A drainer starts: later enqueues must schedule another drain."""
        await self._redis.delete(self._key(key, "scheduled"))

    async def acquire(self, key: int | str, *, ttl_ms: int) -> int | None:
        token = await self._acquire(
            keys=[self._key(key, "lease"), self._key(key, "fence")], args=[ttl_ms]
        )
        return int(token) or None

    async def catch_up(self, key: int | str, committed: int) -> bool:
        """Whether the fencing counter was behind a token that committed."""
        return bool(await self._catch_up(keys=[self._key(key, "fence")], args=[committed]))

    async def renew(self, key: int | str, token: int, *, ttl_ms: int) -> bool:
        return bool(await self._renew(keys=[self._key(key, "lease")], args=[token, ttl_ms]))

    async def peek(self, key: int | str, count: int) -> list[QueuedItem]:
        raw = await self._redis.lrange(self._key(key, "queue"), 0, count - 1)
        items = []
        for entry in raw:
            payload = json.loads(entry)
            items.append(QueuedItem(position=int(payload.pop("position")), payload=payload))
        return items

    async def ack(self, key: int | str, token: int, count: int) -> int | None:
        """Drop the first ``count`` items; the number left, or None if the lease was lost."""
        left = int(await self._ack(
            keys=[self._key(key, "lease"), self._key(key, "queue"), self._key(key, "failures"),
                  self._key(key, "set-aside-latch")],
            args=[token, count]))
        return None if left < 0 else left

    async def failed_for_good(self, key: int | str, position: int) -> bool:
        """Counts a failure of the item at ``position``: whether it is now to
        be set aside. It has failed ITEM_ATTEMPTS times over
        ITEM_FAILING_SECONDS at least, and the key's latch is open: no other
        item was set aside since its last commit (SET_ASIDE_LATCH_S at most,
        or until an operator cleared them). A fault that every item meets (a
        migration not yet applied) sets one aside, then holds the queue for
        an operator."""
        return bool(await self._failed(
            keys=[self._key(key, "failures"), self._key(key, "set-aside-latch")],
            args=[position, ITEM_ATTEMPTS, ITEM_FAILING_SECONDS * 1000, FAILURES_TTL_S]))

    async def set_aside(self, key: int | str, token: int, position: int) -> bool | None:
        """Move the head, the item at ``position``, out of the queue into the
        key's set-aside list, for an operator; None if the lease was lost."""
        # Another slot on a cluster: its own step, before the move, so that
        # nothing set aside goes unseen.
        await self._redis.sadd(self.set_aside_set(), str(key))
        moved = int(await self._set_aside(
            keys=[self._key(key, "lease"), self._key(key, "queue"), self._key(key, "set-aside"),
                  self._key(key, "failures"), self._key(key, "set-aside-latch")],
            args=[token, position, SET_ASIDE_LATCH_S]))
        return None if moved < 0 else bool(moved)

    async def set_aside_items(self, key: int | str) -> list[dict[str, Any]]:
        """What was set aside under ``key``, oldest first, as it was queued."""
        return [json.loads(entry)
                for entry in await self._redis.lrange(self._key(key, "set-aside"), 0, -1)]

    async def take_set_aside(self, key: int | str) -> list[dict[str, Any]]:
        """Drop what was set aside under ``key``, its cause dealt with, and open
        its latch: what was dropped."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrange(self._key(key, "set-aside"), 0, -1)
            pipe.delete(self._key(key, "set-aside"), self._key(key, "set-aside-latch"))
            taken, _ = await pipe.execute()
        await self._redis.srem(self.set_aside_set(), str(key))
        # One set aside meanwhile (its key added before it moved) stays seen.
        if await self._redis.llen(self._key(key, "set-aside")):
            await self._redis.sadd(self.set_aside_set(), str(key))
        return [json.loads(entry) for entry in taken]

    async def release(self, key: int | str, token: int) -> None:
        await self._release(keys=[self._key(key, "lease")], args=[token])

    async def length(self, key: int | str) -> int:
        return int(await self._redis.llen(self._key(key, "queue")))

    async def leased(self, key: int | str) -> bool:
        return bool(await self._redis.exists(self._key(key, "lease")))

    async def active_keys(self) -> list[str]:
        return await self._members(self.active_set())

    async def _members(self, name: str) -> list[str]:
        members = await self._redis.smembers(name)
        return [member.decode() if isinstance(member, bytes) else member for member in members]

    async def states(self, *, now: float) -> list[QueueState]:
        """Every key with items, a lease or items set aside: depth, the oldest
        item's wait (by Redis's clock, ``now`` in POSIX seconds), the lease's
        fencing token and time left, how many were set aside. Keys with none
        of these are left out."""
        keys = sorted({*await self.active_keys(), *await self._members(self.set_aside_set())},
                      key=lambda k: (len(k), k))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(self._key(key, "queue"))
                pipe.lindex(self._key(key, "queue"), 0)
                pipe.get(self._key(key, "lease"))
                pipe.pttl(self._key(key, "lease"))
                pipe.llen(self._key(key, "set-aside"))
            replies = await pipe.execute()
        states = []
        for n, key in enumerate(keys):
            depth, oldest, token, left_ms, set_aside = replies[5 * n: 5 * n + 5]
            if not depth and token is None and not set_aside:
                continue
            enqueued_at = json.loads(oldest).get("enqueued_at") if oldest else None
            states.append(QueueState(
                kind=self.kind, key=key, depth=int(depth),
                oldest_age_s=None if enqueued_at is None else round(now - enqueued_at, 3),
                lease_token=None if token is None else int(token),
                lease_left_s=None if token is None else round(max(left_ms, 0) / 1000, 3),
                set_aside=int(set_aside)))
        return states

    async def forget_if_empty(self, key: int | str) -> None:
        """Drop the key from the sweeper's set unless it holds items.

        Not one script: the set spans every key, so on a Redis Cluster it lives
        in another slot than the queue. Instead, after the removal, the key is
        put back if it holds items or a drain message is due (its scheduled
        flag): an enqueue adds the key before pushing its item and, when it
        starts a drain, again after (``enqueue``). An item that joined a
        drain already due pushed behind a flag this look sees, so the key
        stays swept until that drain ran or its flag lapsed.
        """
        if await self.length(key) > 0:
            return
        await self._redis.srem(self.active_set(), str(key))
        if await self._busy(keys=[self._key(key, "queue"), self._key(key, "scheduled")]):
            await self._redis.sadd(self.active_set(), str(key))

    def flag(self, key: int | str, name: str) -> str:
        """A per-key Redis key of the caller's (e.g. the sold-out flag)."""
        return self._key(key, name)

    async def raise_flag_as_holder(self, key: int | str, name: str, token: int) -> bool:
        """Set the key's flag ``name`` as the drainer holding ``token``, unless
        a newer lease was handed out since: a drainer that lost its lease and
        speaks late does not undo what the new holder set."""
        return bool(await self._flag_as_holder(
            keys=[self._key(key, name), self._key(key, "fence")], args=[token]))


class StaleLease(Exception):
    """A newer fencing token than ours has committed: our lease expired and
    another drainer committed after us (the new holder decides the items), or
    Redis lost its counter. The batch was rolled back."""

    def __init__(self, key: int | str, committed: int) -> None:
        super().__init__(f"{key}: token {committed} committed already")
        self.committed = committed


Batch = TypeVar("Batch")
# Decides items in one database transaction that checks the fencing token
# (raising StaleLease when a newer one committed); returns what committed.
DecideBatch = Callable[[Sequence[QueuedItem], int], Awaitable[Batch]]
# Announces a committed batch, decided under this fencing token: outcomes,
# flags. Safe to repeat.
AnnounceBatch = Callable[[Batch, int], Awaitable[None]]
# Tells an item's sender it will not be decided, as the holder of the lease
# with this fencing token (raising StaleLease for a newer one): called before
# the item is set aside, and raises if that cannot be recorded (the item then
# stays).
GiveUp = Callable[[QueuedItem, int], Awaitable[None]]
ScheduleDrain = Callable[[str], Awaitable[None]]
# Told of each committed batch: its kind, its items and how long deciding
# took. The worker's metrics register here (actors.metrics).
BatchObserver = Callable[[str, Sequence[QueuedItem], float], None]
batch_observers: list[BatchObserver] = []


async def drain(
    queue: KeyedQueue, key: int | str, *, decide: DecideBatch[Batch],
    announce: AnnounceBatch[Batch], give_up: GiveUp, batch_size: int, lease_ttl_ms: int,
) -> int:
    """Decide everything queued under ``key``, in order; the number of items taken.

    Returns at once when another drainer holds the lease: that one goes on
    until the queue is empty, and checks again after releasing. A committed
    batch is announced even when the lease turns out lost afterwards: it
    committed, and whoever decides its items next finds them decided.

    A batch that fails for a reason other than the moment's (``is_passing``)
    is decided again one item at a time, so that one item that cannot be
    decided (a fault in its data or in our code) does not hold up the rest.
    An item failing alone ends the drain with its error, for the drain
    message's retry; once it has failed for good (``failed_for_good``) its
    sender is told (``give_up``) and it is set aside, undecided, for an
    operator.
    """
    await queue.clear_scheduled(key)
    taken = 0
    while True:
        token = await queue.acquire(key, ttl_ms=lease_ttl_ms)
        if token is None:
            return taken
        caught_up = False
        try:
            # Through this position items are decided one at a time: a batch
            # up to it failed.
            alone_through = 0
            while items := await queue.peek(key, 1 if alone_through else batch_size):
                started = time.perf_counter()
                try:
                    batch = await decide(items, token)
                except StaleLease:
                    raise
                except Exception as error:
                    if is_passing(error) or any(isinstance(link, RedisError)
                                                for link in causes(error)):
                        raise
                    if len(items) > 1:
                        log.warning("%s %s: a batch of %d failed; deciding it an item at a time",
                                    queue.kind, key, len(items), exc_info=True)
                        alone_through = items[-1].position
                        continue
                    [item] = items
                    if not await queue.failed_for_good(key, item.position):
                        raise
                    await give_up(item, token)
                    set_aside = await queue.set_aside(key, token, item.position)
                    log.error("%s %s: the item at %d failed for good; set aside undecided",
                              queue.kind, key, item.position, exc_info=True,
                              extra={"item": item.payload})
                    if set_aside is None:
                        return taken  # lease lost: the new holder finds it told
                    taken += 1 if set_aside else 0
                    continue
                if items[-1].position >= alone_through:
                    alone_through = 0
                took = time.perf_counter() - started
                log.info("%s %s: batch of %d decided in %.1f ms", queue.kind, key, len(items),
                         took * 1000)
                for observe in batch_observers:
                    observe(queue.kind, items, took)
                await announce(batch, token)
                if await queue.ack(key, token, len(items)) is None:
                    return taken  # lease lost: the new holder takes over
                taken += len(items)
                await queue.renew(key, token, ttl_ms=lease_ttl_ms)
        except StaleLease as stale:
            # Normally a newer holder's: the counter is past it. Behind it,
            # Redis lost the counter, and no token it hands out would commit.
            caught_up = await queue.catch_up(key, stale.committed)
            if not caught_up:
                return taken
            log.warning("%s %s: the fencing counter was behind the database's token %d "
                        "(Redis lost it); raised to it", queue.kind, key, stale.committed)
        finally:
            await queue.release(key, token)
        if caught_up:
            continue
        # Requests that arrived between the last peek and the release.
        if await queue.length(key) == 0:
            await queue.forget_if_empty(key)
            return taken


async def sweep(queue: KeyedQueue, *, schedule_drain: ScheduleDrain) -> int:
    """Re-drive every queue of the kind that has items and no live lease (its
    drainer died, or its message was lost); returns how many were sent."""
    sent = 0
    for key in await queue.active_keys():
        if await queue.length(key) == 0:
            await queue.forget_if_empty(key)
        elif not await queue.leased(key):
            await schedule_drain(key)
            sent += 1
    return sent
