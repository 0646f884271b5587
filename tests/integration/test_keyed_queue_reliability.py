"""At-least-once delivery, dead drainers, and stale leases: every command is
decided exactly once and the invariants hold."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from redis.asyncio import Redis

from fitnus import keyed_queue
from fitnus.booking.batches import decide_batch, drain_timeslot, sweep_timeslot_queues
from fitnus.booking.models import Reservation
from fitnus.booking.outcomes import (
    MOVE_RESERVATION,
    NOT_DECIDED,
    REFUSAL_DETAIL,
    RESERVE_SEAT,
    DecidedBatch,
    giving_up,
)
from fitnus.booking.service import timeslot_queue
from fitnus.booking.sold_out import flag_fullness
from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from fitnus.commands.models import Command
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import CommandQueue
from fitnus.config import Settings
from fitnus.keyed_queue import ITEM_ATTEMPTS, KeyedQueue, QueuedItem, StaleLease, drain
from fitnus.keys import Keys
from fitnus.wallet.models import LedgerEntry, Wallet
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, fund, open_session, users_with_tokens
from tests.e2e.test_booking_races import book, cancel, reservations_of

pytestmark = pytest.mark.cluster

SEOUL = ZoneInfo("Asia/Seoul")


async def queued_requests(redis: Redis, keys: Keys, timeslot_id: int, users: list[Any]) -> None:
    queue = timeslot_queue(redis, keys)
    for user in users:
        await queue.enqueue(timeslot_id, {"command_id": str(uuid.uuid4()), "user_id": user.id})


async def snapshot(timeslot_id: int, user_ids: list[int]) -> tuple[Any, ...]:
    return (
        (await Timeslot.get(id=timeslot_id)).reserved,
        await Reservation.filter(timeslot_id=timeslot_id).count(),
        await Command.filter(user_id__in=user_ids).count(),
        await LedgerEntry.filter(user_id__in=user_ids).count(),
        sorted(w.balance for w in await Wallet.filter(user_id__in=user_ids)),
    )



async def no_drain(timeslot_id: int) -> None:
    """These batches free no seat in another timeslot: nothing to send there."""
    raise AssertionError(f"timeslot {timeslot_id} was sent a drain")

async def test_a_batch_replayed_after_a_crash_changes_nothing(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    """The worker committed, then died before acknowledging: the next drainer
    finds the same items decided, changes nothing, and announces them again."""
    session = await open_session(client, sign_up, capacity=2)
    users = [await sign_up() for _ in range(3)]
    for user in users:
        await fund(user.id, PRICE)
    keys = Keys(settings.redis_key_prefix)
    await queued_requests(redis, keys, session.timeslot_id, users)
    items = await timeslot_queue(redis, keys).peek(session.timeslot_id, 10)
    first = await decide_batch(session.timeslot_id, items, token=10**9, clock=system_clock,
                               zone=SEOUL)
    assert len(first.decided.outcomes) == 3
    before = await snapshot(session.timeslot_id, [u.id for u in users])
    again = await decide_batch(session.timeslot_id, items, token=10**9, clock=system_clock,
                               zone=SEOUL)
    assert ({(o.command.id, o.command.status) for o in again.decided.outcomes}
            == {(o.command.id, o.command.status) for o in first.decided.outcomes})
    assert await snapshot(session.timeslot_id, [u.id for u in users]) == before
    assert before[0] == before[1] == 2


async def test_a_drain_message_delivered_twice_decides_once(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    users = [await sign_up() for _ in range(4)]
    for user in users:
        await fund(user.id, PRICE)
    keys = Keys(settings.redis_key_prefix)
    await queued_requests(redis, keys, session.timeslot_id, users)
    published: list[Any] = []

    async def publish(decided: Any) -> None:
        published.extend(decided.outcomes)

    # Batches of one: the same lease holder commits four times.
    first = await drain_timeslot(session.timeslot_id, redis=redis, keys=keys,
                                 clock=system_clock, zone=SEOUL, published=publish, batch_size=1,
                                 schedule_drain=no_drain)
    second = await drain_timeslot(session.timeslot_id, redis=redis, keys=keys,
                                  clock=system_clock, zone=SEOUL, published=publish,
                                  schedule_drain=no_drain)
    assert (first, second) == (4, 0)
    assert len(published) == 4
    assert (await Timeslot.get(id=session.timeslot_id)).reserved == 4


async def test_a_drainer_whose_lease_expired_cannot_commit(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    users = [await sign_up() for _ in range(2)]
    for user in users:
        await fund(user.id, PRICE)
    keys = Keys(settings.redis_key_prefix)
    await queued_requests(redis, keys, session.timeslot_id, users[:1])
    newer = await timeslot_queue(redis, keys).peek(session.timeslot_id, 10)
    await decide_batch(session.timeslot_id, newer, token=50, clock=system_clock, zone=SEOUL)
    await queued_requests(redis, keys, session.timeslot_id, users[1:])
    stale = (await timeslot_queue(redis, keys).peek(session.timeslot_id, 10))[1:]
    with pytest.raises(StaleLease):
        await decide_batch(session.timeslot_id, stale, token=49, clock=system_clock, zone=SEOUL)
    assert (await Timeslot.get(id=session.timeslot_id)).reserved == 1
    assert not await Reservation.filter(user_id=users[1].id).exists()


async def test_a_queue_whose_fencing_counter_redis_lost_catches_up_and_decides(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    """Redis restarted without its data (or failed over to a replica that
    lagged): its counter hands out tokens below the one the database saw last,
    which could never commit. The drainer raises the counter and goes on."""
    session = await open_session(client, sign_up, capacity=5)
    users = [await sign_up() for _ in range(2)]
    for user in users:
        await fund(user.id, PRICE)
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    decided: list[Any] = []

    async def publish(batch: Any) -> None:
        decided.extend(batch.outcomes)

    async def drained() -> int:
        return await drain_timeslot(session.timeslot_id, redis=redis, keys=keys,
                                    clock=system_clock, zone=SEOUL, published=publish,
                                    schedule_drain=no_drain)

    await queued_requests(redis, keys, session.timeslot_id, users[:1])
    assert await drained() == 1
    await Timeslot.filter(id=session.timeslot_id).update(drain_fence=50)  # tokens seen before
    await redis.delete(queue.flag(session.timeslot_id, "fence"))  # and Redis forgot them
    await queued_requests(redis, keys, session.timeslot_id, users[1:])
    assert await drained() == 1
    assert len(decided) == 2
    assert await Reservation.filter(timeslot_id=session.timeslot_id).count() == 2
    assert int(await redis.get(queue.flag(session.timeslot_id, "fence"))) > 50


async def test_the_sweeper_redrives_queues_nobody_holds(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    await queued_requests(redis, keys, session.timeslot_id, [user])
    sent: list[int] = []

    async def drain_later(timeslot_id: int) -> None:
        sent.append(timeslot_id)

    await sweep_timeslot_queues(redis=redis, keys=keys, schedule_drain=drain_later)
    assert session.timeslot_id in sent
    token = await queue.acquire(session.timeslot_id, ttl_ms=10_000)
    assert token is not None
    sent.clear()
    await sweep_timeslot_queues(redis=redis, keys=keys, schedule_drain=drain_later)
    assert session.timeslot_id not in sent  # a live lease: its holder drains it
    await queue.release(session.timeslot_id, token)


async def test_a_batch_is_announced_even_when_its_lease_was_lost_after_the_commit(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    """Waiting callers hear of what committed at once, not at their timeout."""
    session = await open_session(client, sign_up, capacity=5)
    users = [await sign_up() for _ in range(3)]
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    await queued_requests(redis, keys, session.timeslot_id, users)

    async def decide_then_lose_the_lease(items: Any, token: int) -> DecidedBatch:
        batch = await decide_batch(session.timeslot_id, items, token=token,
                                   clock=system_clock, zone=SEOUL)
        await redis.delete(queue.flag(session.timeslot_id, "lease"))  # it expired
        assert await queue.acquire(session.timeslot_id, ttl_ms=10_000) is not None
        return batch

    announced: list[Any] = []

    async def announce(batch: DecidedBatch, token: int) -> None:
        announced.extend(batch.decided.outcomes)

    async def give_up(item: QueuedItem, token: int) -> None:
        raise AssertionError(f"{item} was given up")

    await drain(queue, session.timeslot_id, decide=decide_then_lose_the_lease,
                announce=announce, give_up=give_up, batch_size=10, lease_ttl_ms=10_000)
    assert len(announced) == 3
    assert await queue.length(session.timeslot_id) == 3  # the new holder acknowledges


async def test_the_next_drainer_announces_what_a_dead_one_committed(
    client: Any, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    users = [await sign_up() for _ in range(2)]
    keys = Keys(settings.redis_key_prefix)
    await queued_requests(redis, keys, session.timeslot_id, users)
    queue = timeslot_queue(redis, keys)
    items = await queue.peek(session.timeslot_id, 10)
    token = await queue.acquire(session.timeslot_id, ttl_ms=10_000)
    assert token is not None
    committed = await decide_batch(session.timeslot_id, items, token=token,
                                   clock=system_clock, zone=SEOUL)
    await queue.release(session.timeslot_id, token)  # its lease ran out: it died
    published: list[Any] = []

    async def publish(decided: Any) -> None:
        published.extend(decided.outcomes)

    await drain_timeslot(session.timeslot_id, redis=redis, keys=keys, clock=system_clock,
                         zone=SEOUL, published=publish, schedule_drain=no_drain)
    assert sorted(str(o.command.id) for o in published) == sorted(
        str(o.command.id) for o in committed.decided.outcomes)


@dataclass
class StuckItems:
    """Requests queued for a timeslot, some of them moves that name no
    reservation (a sender of another version: no worker can read them),
    then a few drains; each drain's outcome, what each request became (as
    its sender was told), and what the queue holds after, as operators see
    it."""

    timeslot_id: int
    drains: list[str]
    outcomes: list[tuple[str, str | None]]
    queued: int
    set_aside: list[int]  # which requests
    shown_set_aside: int


GOOD, BAD, GARBLED = "seat", "unreadable move", "garbled"


async def drained_with_unreadable_items(
    client: Any, sign_up: Any, redis: Redis, settings: Settings, requests: list[str], *,
    drains: int, pause_before: int | None = None,
) -> StuckItems:
    """``pause_before``: the drain before which ITEM_FAILING_SECONDS pass."""
    session = await open_session(client, sign_up, capacity=5)
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    sender = CommandQueue(redis=redis, keys=keys, queue=queue,
                          pending=PendingCommands(redis=redis, keys=keys), clock=system_clock,
                          schedule_drain=drained_below)
    commands = []
    for request in requests:
        user = await sign_up()
        await fund(user.id, PRICE)
        if request == GARBLED:
            # No sender of ours wrote it: its command id is no id.
            await queue.enqueue(session.timeslot_id, {"command_id": GARBLED, "user_id": user.id})
            commands.append(GARBLED)
            continue
        # As the web tier sends them: a seat request unstamped (the crowd's path).
        queued = await (sender.send(session.timeslot_id, kind=RESERVE_SEAT, user_id=user.id,
                                    stamped=False) if request == GOOD else
                        sender.send(session.timeslot_id, kind=MOVE_RESERVATION, user_id=user.id))
        commands.append(str(queued.command_id))
    published: list[Any] = []

    async def publish(decided: Any) -> None:
        published.extend(decided.outcomes)

    outcomes = []
    for attempt in range(drains):
        if attempt == pause_before:
            await asyncio.sleep(keyed_queue.ITEM_FAILING_SECONDS)
        try:
            await drain_timeslot(session.timeslot_id, redis=redis, keys=keys,
                                 clock=system_clock, zone=SEOUL, published=publish,
                                 schedule_drain=no_drain)
            outcomes.append("done")
        except (KeyError, ValueError):
            outcomes.append("failed")
    decided = {str(command.id): command for command in await Command.filter(
        id__in=[command_id for command_id in commands if command_id != GARBLED])}
    told = {str(outcome.command.id) for outcome in published}
    return StuckItems(
        timeslot_id=session.timeslot_id,
        drains=outcomes,
        outcomes=[(decided[command_id].status.value,
                   (decided[command_id].error or {}).get("code"))
                  if command_id in decided and command_id in told else ("pending", None)
                  for command_id in commands],
        queued=await queue.length(session.timeslot_id),
        set_aside=[commands.index(item["command_id"])
                   for item in await queue.set_aside_items(session.timeslot_id)],
        shown_set_aside=await shown_set_aside(queue, session.timeslot_id),
    )


async def drained_below(key: int) -> None:
    """The test drains by hand."""


async def shown_set_aside(queue: KeyedQueue, timeslot_id: int) -> int:
    """As operators see it (fitnus queues, the admin API, the metrics)."""
    return sum(state.set_aside for state in await queue.states(now=time.time())
               if state.key == str(timeslot_id))


SUCCEEDED, NOT_TOLD = ("succeeded", None), ("pending", None)
SET_ASIDE = ("failed", NOT_DECIDED)


async def test_an_item_no_one_can_decide_is_set_aside_and_the_queue_goes_on(
    client: Any, sign_up: Any, redis: Redis, settings: Settings,
) -> None:
    stuck = await drained_with_unreadable_items(
        client, sign_up, redis, settings, [GOOD, BAD, GOOD], drains=ITEM_ATTEMPTS,
        pause_before=ITEM_ATTEMPTS - 1)
    assert stuck == StuckItems(
        timeslot_id=stuck.timeslot_id, drains=["failed"] * (ITEM_ATTEMPTS - 1) + ["done"],
        outcomes=[SUCCEEDED, SET_ASIDE, SUCCEEDED], queued=0, set_aside=[1], shown_set_aside=1)
    queue = timeslot_queue(redis, Keys(settings.redis_key_prefix))
    assert [item["kind"] for item in await queue.take_set_aside(stuck.timeslot_id)] == [
        MOVE_RESERVATION]
    assert await shown_set_aside(queue, stuck.timeslot_id) == 0


@pytest.mark.control
async def test_control_an_item_never_set_aside_holds_up_its_queue(
    client: Any, sign_up: Any, redis: Redis, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keyed_queue, "ITEM_ATTEMPTS", 10**6)
    stuck = await drained_with_unreadable_items(
        client, sign_up, redis, settings, [GOOD, BAD, GOOD], drains=ITEM_ATTEMPTS,
        pause_before=ITEM_ATTEMPTS - 1)
    assert stuck == StuckItems(
        timeslot_id=stuck.timeslot_id, drains=["failed"] * ITEM_ATTEMPTS,
        outcomes=[SUCCEEDED, NOT_TOLD, NOT_TOLD], queued=2, set_aside=[], shown_set_aside=0)


async def test_an_item_failing_for_a_short_while_is_not_set_aside(
    client: Any, sign_up: Any, redis: Redis, settings: Settings,
) -> None:
    """Three quick tries, as the drain message's first retries come: not yet."""
    stuck = await drained_with_unreadable_items(
        client, sign_up, redis, settings, [BAD, GOOD], drains=ITEM_ATTEMPTS)
    assert (stuck.drains, stuck.outcomes, stuck.queued) == (
        ["failed"] * ITEM_ATTEMPTS, [NOT_TOLD, NOT_TOLD], 2)


@pytest.fixture
def set_aside_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures need not span ITEM_FAILING_SECONDS: for tests of the other rules."""
    monkeypatch.setattr(keyed_queue, "ITEM_FAILING_SECONDS", 0)


@pytest.mark.usefixtures("set_aside_at_once")
async def test_a_request_too_garbled_to_name_its_sender_is_set_aside_all_the_same(
    client: Any, sign_up: Any, redis: Redis, settings: Settings,
) -> None:
    stuck = await drained_with_unreadable_items(
        client, sign_up, redis, settings, [GARBLED, GOOD], drains=ITEM_ATTEMPTS)
    assert (stuck.drains, stuck.outcomes, stuck.queued, stuck.set_aside) == (
        ["failed"] * (ITEM_ATTEMPTS - 1) + ["done"], [NOT_TOLD, SUCCEEDED], 0, [0])


async def test_giving_up_is_fenced(client: Any, sign_up: Any, settings: Settings) -> None:
    """A drainer whose lease passed to another tells no one."""
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    await Timeslot.filter(id=session.timeslot_id).update(drain_fence=10)
    told: list[Any] = []

    async def publish(decided: Any) -> None:
        told.extend(outcome.command.id for outcome in decided.outcomes)

    give_up = giving_up(publish, system_clock, fenced_by=Timeslot, key=session.timeslot_id)
    command_id = uuid.uuid4()
    request = QueuedItem(position=1, payload={"command_id": str(command_id), "user_id": user.id})
    with pytest.raises(StaleLease):
        await give_up(request, 9)
    assert (told, await Command.filter(id=command_id).exists()) == ([], False)
    await give_up(request, 10)
    assert told == [command_id]
    assert (await Command.get(id=command_id)).error == {
        "code": NOT_DECIDED, "detail": REFUSAL_DETAIL[NOT_DECIDED]}


# Two in a row: the second might be the first of a fault every item meets.
ONE_AFTER_ANOTHER = [BAD, BAD, GOOD]


@pytest.mark.usefixtures("set_aside_at_once")
async def test_after_one_set_aside_the_queue_holds_until_an_item_commits(
    client: Any, sign_up: Any, redis: Redis, settings: Settings,
) -> None:
    stuck = await drained_with_unreadable_items(
        client, sign_up, redis, settings, ONE_AFTER_ANOTHER, drains=2 * ITEM_ATTEMPTS)
    assert stuck == StuckItems(
        timeslot_id=stuck.timeslot_id, drains=["failed"] * 2 * ITEM_ATTEMPTS,
        outcomes=[SET_ASIDE, NOT_TOLD, NOT_TOLD], queued=2, set_aside=[0], shown_set_aside=1)
    # An operator dealt with it and cleared it: the next may be set aside.
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    assert len(await queue.take_set_aside(stuck.timeslot_id)) == 1

    async def quiet(decided: Any) -> None:
        return None

    await drain_timeslot(stuck.timeslot_id, redis=redis, keys=keys, clock=system_clock,
                         zone=SEOUL, published=quiet, schedule_drain=no_drain)
    assert (await queue.length(stuck.timeslot_id),
            await shown_set_aside(queue, stuck.timeslot_id)) == (0, 1)


@pytest.mark.control
@pytest.mark.usefixtures("set_aside_at_once")
async def test_control_without_the_latch_every_failing_item_goes(
    client: Any, sign_up: Any, redis: Redis, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    latch = "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    assert latch in keyed_queue._FAILED
    monkeypatch.setattr(keyed_queue, "_FAILED", keyed_queue._FAILED.replace(latch, ""))
    stuck = await drained_with_unreadable_items(
        client, sign_up, redis, settings, ONE_AFTER_ANOTHER, drains=2 * ITEM_ATTEMPTS)
    assert stuck == StuckItems(
        timeslot_id=stuck.timeslot_id,
        drains=["failed"] * (2 * ITEM_ATTEMPTS - 2) + ["done"] * 2,
        outcomes=[SET_ASIDE, SET_ASIDE, SUCCEEDED], queued=0, set_aside=[0, 1],
        shown_set_aside=2)


async def a_late_word_of_full(client: Any, sign_up: Any, redis: Redis,
                              settings: Settings) -> str:
    """A timeslot of one seat fills, then its seat is given back; the drainer
    that filled it, having lost its lease meanwhile, announces "full" only
    now. What a newcomer's booking then gets."""
    session = await open_session(client, sign_up, capacity=1)
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    (_, first), (_, newcomer) = await users_with_tokens(settings, 2, coupons=PRICE)
    fence = queue.flag(session.timeslot_id, "fence")

    async def drained() -> bool:
        return not await queue.leased(session.timeslot_id)

    [seat] = await reservations_of([await book(client, first, session.timeslot_id, wait=True)])
    # Answered once committed: the drainer may hold its lease a moment more.
    await eventually(drained)
    filled_under = int(await redis.get(fence))
    await reservations_of([await cancel(client, first, seat)])
    await eventually(drained)
    assert int(await redis.get(fence)) > filled_under  # another lease gave it back
    await flag_fullness(redis, queue, session.timeslot_id, full=True, token=filled_under,
                        reopened_channel=keys.timeslot_reopened)
    answer = await client.post("/api/v1/reservations",
                               json={"timeslot_id": session.timeslot_id},
                               headers={**newcomer, "Prefer": "wait=10"})
    body = await answer.json()
    return "seated" if answer.status == 201 else body.get("code", str(answer.status))


async def test_a_drainer_that_lost_its_lease_cannot_flag_a_reopened_timeslot_full(
    client: Any, sign_up: Any, redis: Redis, settings: Settings, worker: dramatiq.Worker,
) -> None:
    assert await a_late_word_of_full(client, sign_up, redis, settings) == "seated"


@pytest.mark.control
async def test_control_a_late_word_of_full_turns_newcomers_away(
    client: Any, sign_up: Any, redis: Redis, settings: Settings, worker: dramatiq.Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def whoever_speaks(self: KeyedQueue, key: int | str, name: str, token: int) -> bool:
        await self._redis.set(self.flag(key, name), "1")
        return True

    monkeypatch.setattr(KeyedQueue, "raise_flag_as_holder", whoever_speaks)
    assert await a_late_word_of_full(client, sign_up, redis, settings) == "sold_out"


# Keys raced at once: within the test Redis client's connection pool.
RACE_CHUNK = 25
RACE_STAGGER = 12


async def forget_while_enqueueing(redis: Redis, keys: Keys, rounds: int = 1_200, *,
                                  drain_due: bool = False) -> list[str]:
    """Enqueues racing the emptiness check; the keys that hold items but
    dropped out of the sweeper's set (which would then never re-drive them).
    ``drain_due``: each key's drain message is already due (sent, not yet
    taken) while its queue is empty, so the enqueues join that drain."""
    queue = KeyedQueue(redis=redis, prefix=keys.prefix, kind=f"race-{uuid.uuid4().hex[:6]}")
    if drain_due:
        for key in range(rounds):
            await redis.set(queue.flag(key, "scheduled"), "1", px=60_000)
        push = queue._enqueue

        async def late_push(**arguments: Any) -> Any:
            # A push that lands late (a busy web process): the forgetting
            # can then look twice between the enqueue's two steps.
            for _ in range(RACE_STAGGER):
                await asyncio.sleep(0)
            return await push(**arguments)

        queue._enqueue = late_push  # type: ignore[method-assign, assignment]

    async def enqueue(key: int) -> None:
        await queue.enqueue(key, {"command_id": str(uuid.uuid4()), "user_id": 1})

    async def forget_later(key: int) -> None:
        # Each key starts its forgetting a few loop turns later than the last,
        # so the race meets each step of the enqueue.
        for _ in range(key % RACE_STAGGER):
            await asyncio.sleep(0)
        await queue.forget_if_empty(key)

    for first in range(0, rounds, RACE_CHUNK):
        await asyncio.gather(*(
            call for key in range(first, min(first + RACE_CHUNK, rounds))
            for call in (forget_later(key), enqueue(key))
        ))
    active = set(await queue.active_keys())
    return [str(key) for key in range(rounds)
            if await queue.length(key) > 0 and str(key) not in active]


@pytest.mark.parametrize("drain_due", [False, True], ids=["starting-a-drain", "drain-due"])
async def test_an_enqueue_during_forget_if_empty_keeps_its_key_swept(
    redis: Redis, settings: Settings, drain_due: bool,
) -> None:
    assert await forget_while_enqueueing(redis, Keys(settings.redis_key_prefix),
                                         drain_due=drain_due) == []


@pytest.mark.control
async def test_control_a_second_look_at_the_length_alone_loses_keys_whose_drain_is_due(
    redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def length_alone(self: KeyedQueue, key: int | str) -> None:
        if await self.length(key) > 0:
            return
        await self._redis.srem(self.active_set(), str(key))
        if await self.length(key) > 0:
            await self._redis.sadd(self.active_set(), str(key))

    monkeypatch.setattr(KeyedQueue, "forget_if_empty", length_alone)
    assert await forget_while_enqueueing(redis, Keys(settings.redis_key_prefix),
                                         drain_due=True) != []


@pytest.mark.control
async def test_control_forget_if_empty_without_the_second_look_loses_keys(
    redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def length_then_remove(self: KeyedQueue, key: int | str) -> None:
        if await self.length(key) == 0:
            await self._redis.srem(self.active_set(), str(key))

    monkeypatch.setattr(KeyedQueue, "forget_if_empty", length_then_remove)
    assert await forget_while_enqueueing(redis, Keys(settings.redis_key_prefix)) != []
