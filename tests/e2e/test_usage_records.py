"""Daily usage records: one per kept seat on its session's Seoul day, however
often, however interrupted and by however many runners the day is recorded.

Each test books real seats (the API and a worker) on days of its own, far
from the others', then records those days with a clock set after them.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import pymysql
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from fitnus.batches.models import BatchJob, BatchRun, RunStatus
from fitnus.batches.runs import open_run, reopen, run_in_chunks
from fitnus.booking import admin_refunds
from fitnus.booking.batches import drain_timeslot
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.booking.outcomes import CANCEL_RESERVATION, MOVE_RESERVATION
from fitnus.booking.service import timeslot_queue
from fitnus.clock import ManualClock, system_clock
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import CommandQueue
from fitnus.keys import Keys
from fitnus.settlement import rules
from fitnus.settlement.models import Discrepancy, UsageKind, UsageRecord
from fitnus.settlement.usage import record_usage_step
from fitnus.settlement.verification import check_usage
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, fund, reserve
from tests.e2e.test_centers import admin_headers, new_center, new_program

Client = TestClient[Any, Any]
SEOUL = ZoneInfo("Asia/Seoul")


@dataclass
class Place:
    owner: Any
    center_id: int
    program_id: int


def seoul_day(days_ahead: int) -> date:
    return system_clock.now().astimezone(SEOUL).date() + timedelta(days=days_ahead)


def at(day: date, clock_time: time) -> str:
    return datetime.combine(day, clock_time, SEOUL).isoformat()


def after(day: date) -> ManualClock:
    """A clock set at 01:00 the next Seoul day, when the daily job runs."""
    return ManualClock(datetime.combine(day + timedelta(days=1), time(1), SEOUL))


async def open_place(client: Client, sign_up: Any, *, policy: dict[str, Any] | None = None,
                     ) -> Place:
    owner = await sign_up("owner")
    center = await new_center(client, owner, opens_at=None, closes_at=None)
    if policy is not None:
        response = await client.put(f"/api/v1/centers/{center['id']}/cancellation-policy",
                                    json=policy, headers=owner.headers)
        assert response.status == 200, await response.text()
    program = await new_program(client, owner, center["id"], price_coupons=PRICE)
    return Place(owner, center["id"], program["id"])


async def timeslot(client: Client, place: Place, starts_at: str, capacity: int = 30) -> int:
    response = await client.post(f"/api/v1/programs/{place.program_id}/timeslots",
                                 json={"starts_at": starts_at, "capacity": capacity},
                                 headers=place.owner.headers)
    assert response.status == 201, await response.text()
    timeslot_id: int = (await response.json())["id"]
    return timeslot_id


async def seat(client: Client, sign_up: Any, timeslot_id: int) -> tuple[Any, int]:
    person = await sign_up()
    await fund(person.id, PRICE)
    response = await reserve(client, person, timeslot_id, Prefer="wait=8")
    assert response.status == 201, await response.text()
    reservation_id: int = (await response.json())["id"]
    return person, reservation_id


async def record_day(day: date, clock: ManualClock, *, chunk_rows: int = 1000,
                     run: BatchRun | None = None, **hooks: Any) -> BatchRun:
    """The daily job for ``day``, as the worker runs it."""
    if run is None:
        run, _ = await open_run(BatchJob.DAILY_USAGE, day.isoformat(), clock=clock)
    step = record_usage_step(day, rules.day_period(day, SEOUL), now=clock.now(),
                             chunk_rows=chunk_rows)
    return await run_in_chunks(run.id, step, clock=clock, **hooks)


async def records_of(day: date) -> set[tuple[int, int, str]]:
    return {(r.reservation_id, r.coupons, r.kind.value)
            for r in await UsageRecord.filter(day=day)}


async def test_the_day_boundary_is_midnight_in_seoul_and_each_kept_seat_counts_once(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    day, next_day = seoul_day(20), seoul_day(21)
    # Full refund 600 h ahead, half 1 h ahead: cancelled now (~20 days ahead) keeps half.
    place = await open_place(client, sign_up, policy={
        "full_refund_hours": 600, "partial_refund_hours": 1, "partial_refund_percent": 50})
    _, last_second = await seat(client, sign_up, await timeslot(
        client, place, at(day, time(23, 59, 59))))
    # One second later, in the same center (another program: a program's sessions never overlap).
    evening = Place(place.owner, place.center_id, (await new_program(
        client, place.owner, place.center_id, price_coupons=PRICE))["id"])
    _, first_second = await seat(client, sign_up, await timeslot(
        client, evening, at(next_day, time(0, 0, 0))))
    late, late_cancel = await seat(client, sign_up, await timeslot(
        client, place, at(day, time(12))))
    cancelled = await client.delete(f"/api/v1/reservations/{late_cancel}", headers=late.headers)
    assert (await cancelled.json())["refunded_coupons"] == PRICE // 2
    # One checks in at the door, ten minutes before the start.
    came, attended = await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    door = await aiohttp_client(make_app(clock=ManualClock(
        datetime.combine(day, time(8, 50), SEOUL))))
    code = await (await door.get(f"/api/v1/centers/{place.center_id}/check-in-code",
                                 headers=place.owner.headers)).json()
    checked_in = await door.post(f"/api/v1/reservations/{attended}/check-in",
                                 json={"code": code["code"]}, headers=came.headers)
    assert checked_in.status == 200, await checked_in.text()
    # Another center refunds in full a day ahead: that seat keeps nothing.
    generous = await open_place(client, sign_up)
    early, early_cancel = await seat(client, sign_up, await timeslot(
        client, generous, at(day, time(13))))
    assert (await client.delete(f"/api/v1/reservations/{early_cancel}",
                                headers=early.headers)).status == 200

    clock = after(next_day)
    first = await record_day(day, clock)
    assert (first.status, first.rows) == (RunStatus.DONE, len(await records_of(day)))
    assert await records_of(day) >= {(last_second, PRICE, "no_show"),
                                      (late_cancel, PRICE // 2, "late_cancel"),
                                      (attended, PRICE, "attended")}
    assert not await UsageRecord.filter(reservation_id__in=[first_second, early_cancel]).exists()
    await record_day(next_day, clock)
    record = await UsageRecord.get(reservation_id=first_second)
    assert (record.day, record.kind, record.amount_krw) == (next_day, UsageKind.NO_SHOW,
                                                            PRICE * 1000)
    # Again: the day is done, nothing is added.
    again, has_work = await open_run(BatchJob.DAILY_USAGE, day.isoformat(), clock=clock)
    assert (again.id, has_work) == (first.id, False)
    assert await UsageRecord.filter(
        reservation_id__in=[last_second, late_cancel, attended]).count() == 3


async def test_a_run_killed_after_any_chunk_resumes_to_the_same_records(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    """Every kill point: after each chunk, the run dies inside the next one
    (its transaction rolled back), then resumes from its cursor."""
    day, chunk_rows, seats = seoul_day(23), 3, 8
    place = await open_place(client, sign_up)
    slots = [await timeslot(client, place, at(day, time(hour))) for hour in (7, 9, 11)]
    for n in range(seats):
        await seat(client, sign_up, slots[n % len(slots)])
    clock = after(day)
    uninterrupted = await record_day(day, clock, chunk_rows=chunk_rows)
    expected = await records_of(day)
    chunks = -(-uninterrupted.rows // chunk_rows)
    assert len(expected) == uninterrupted.rows >= seats
    assert chunks >= 3

    class Killed(Exception):
        pass

    for kill_at in range(1, chunks + 1):
        await UsageRecord.filter(day=day).delete()
        await BatchRun.filter(id=uninterrupted.id).delete()
        run, _ = await open_run(BatchJob.DAILY_USAGE, day.isoformat(), clock=clock)
        written = 0

        async def die_in_chunk(run: BatchRun, kill_at: int = kill_at) -> None:
            nonlocal written
            written += 1
            if written == kill_at:
                raise Killed

        with pytest.raises(Killed):
            await record_day(day, clock, chunk_rows=chunk_rows, run=run,
                             chunk_written=die_in_chunk)
        # What committed before the kill is there and counted; the chunk it died in is not.
        killed = await BatchRun.get(id=run.id)
        assert killed.status is RunStatus.FAILED
        assert await records_of(day) <= expected
        assert await UsageRecord.filter(day=day).count() == killed.rows < len(expected)
        resumed, has_work = await open_run(BatchJob.DAILY_USAGE, day.isoformat(), clock=clock)
        assert has_work
        assert resumed.attempts == 2
        done = await record_day(day, clock, chunk_rows=chunk_rows, run=resumed)
        assert await records_of(day) == expected, f"killed in chunk {kill_at}"
        assert done.rows == len(expected)
        uninterrupted = done


async def test_two_schedulers_at_one_oclock_record_one_set_of_rows(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    """Both open the day's one run and work it at once, chunk by chunk under
    its lock: one set of rows, each chunk written once. The control gives
    each its own run (no shared row and lock): every chunk is written twice,
    and only the unique key keeps the records from doubling."""
    day = seoul_day(25)
    place = await open_place(client, sign_up)
    slot = await timeslot(client, place, at(day, time(8)))
    for _ in range(7):
        await seat(client, sign_up, slot)
    clock = after(day)
    chunks: list[int] = []

    async def count_chunk(run: BatchRun) -> None:
        chunks.append(run.id)

    async def scheduler(run: BatchRun | None = None) -> BatchRun:
        return await record_day(day, clock, chunk_rows=2, run=run, chunk_written=count_chunk)

    first, second = await asyncio.gather(scheduler(), scheduler())
    records = await records_of(day)
    assert first.id == second.id
    assert (await BatchRun.get(id=first.id)).rows == len(records) >= 7
    written_once = len(chunks)
    assert written_once >= 4

    await UsageRecord.filter(day=day).delete()
    chunks.clear()
    now = clock.now()
    separate = [await BatchRun.create(job=BatchJob.DAILY_USAGE, period=f"control-{n}",
                                      started_at=now, updated_at=now) for n in range(2)]
    with warnings.catch_warnings():
        # MariaDB warns of each duplicate the unique key turned away (INSERT IGNORE).
        warnings.simplefilter("ignore", pymysql.Warning)
        await asyncio.gather(*(scheduler(run) for run in separate))
    assert await records_of(day) == records
    assert len(chunks) == 2 * written_once


async def test_admins_run_a_finished_day_and_owners_read_its_usage_as_json_or_csv(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker,
) -> None:
    day = seoul_day(27)
    place = await open_place(client, sign_up)
    person, reservation_id = await seat(client, sign_up, await timeslot(
        client, place, at(day, time(10))))
    admin = await admin_headers(client, settings)
    runs = f"/api/v1/admin/batches/{BatchJob.DAILY_USAGE.value}/runs"

    not_over = await client.post(runs, json={"period": day.isoformat()}, headers=admin)
    assert (not_over.status, (await not_over.json())["code"]) == (409, "period_not_finished")
    later = await aiohttp_client(make_app(clock=after(day)))
    for bad in ({"period": "2026-13-01"}, {"period": 20261201}, {}, {"period": "x" * 17}):
        assert (await later.post(runs, json=bad, headers=admin)).status == 400, bad
    assert (await later.post(runs, json={"period": day.isoformat()},
                             headers=person.headers)).status == 403
    assert (await later.post("/api/v1/admin/batches/nonsense/runs", json={},
                             headers=admin)).status in (400, 404)

    started = await later.post(runs, json={"period": day.isoformat()}, headers=admin)
    assert started.status == 202, await started.text()
    run_id = (await started.json())["run_id"]

    async def done() -> bool:
        shown = await later.get(f"{runs}/{run_id}", headers=admin)
        return bool((await shown.json())["status"] == "done")

    await eventually(done)
    repeated = await later.post(runs, json={"period": day.isoformat()}, headers=admin)
    assert repeated.status == 200
    assert (await repeated.json())["run_id"] == run_id

    usage = f"/api/v1/owner/centers/{place.center_id}/usage?from={day}&to={day}"
    listed = await (await later.get(usage, headers=place.owner.headers)).json()
    [item] = listed["items"]
    assert (item["reservation_id"], item["coupons"], item["amount_krw"], item["kind"],
            item["date"]) == (reservation_id, PRICE, PRICE * 1000, "no_show", day.isoformat())
    assert item["user_name"] == "테스트 사용자"
    assert item["program"] == "아침 요가"
    as_csv = await later.get(usage, headers={**place.owner.headers, "Accept": "text/csv"})
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    body = await as_csv.read()
    assert body.startswith("\ufeff".encode())
    header, row = body.decode("utf-8-sig").splitlines()
    assert header.startswith("id,date,reservation_id,user_name")
    assert f",{reservation_id},테스트 사용자,아침 요가," in row
    # Another owner, a person, a reversed or too long range.
    stranger = await sign_up("owner")
    assert (await later.get(usage, headers=stranger.headers)).status == 403
    assert (await later.get(usage, headers=person.headers)).status == 403
    reversed_range = f"/api/v1/owner/centers/{place.center_id}/usage?from={day}&to=2000-01-01"
    assert (await later.get(reversed_range, headers=place.owner.headers)).status == 400


async def test_an_admins_refund_of_a_recorded_day_is_an_adjustment_on_its_own_day(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker,
) -> None:
    day, refund_day = seoul_day(29), seoul_day(31)
    place = await open_place(client, sign_up)
    person, recorded = await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    _, unrecorded = await seat(client, sign_up, await timeslot(
        client, place, at(refund_day, time(9))))
    _, ahead = await seat(client, sign_up, await timeslot(
        client, place, at(refund_day, time(18))))
    await record_day(day, after(day))
    admin = await admin_headers(client, settings)
    office = await aiohttp_client(make_app(clock=ManualClock(
        datetime.combine(refund_day, time(12), SEOUL))))

    def refund(reservation_id: int, coupons: Any, key: str, **headers: str) -> Any:
        return office.post(f"/api/v1/admin/reservations/{reservation_id}/refund",
                           json={"coupons": coupons, "reason": "강사 부재"},
                           headers={**(headers or admin), "Idempotency-Key": key})

    answer = await refund(recorded, 4, "complaint-1")
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {"reservation_id": recorded, "refunded_coupons": 4,
                                   "kept_coupons": PRICE - 4}
    again = await refund(recorded, 4, "complaint-1")
    assert (await again.json())["refunded_coupons"] == 4
    wallet = await (await client.get("/api/v1/me/wallet", headers=person.headers)).json()
    assert wallet["balance"] == 4  # given back once
    too_much = await refund(recorded, PRICE, "complaint-2")
    assert (too_much.status, (await too_much.json())["code"]) == (409, "refund_exceeds_kept")
    assert (await refund(recorded, 1, "k", **person.headers)).status == 403
    assert (await refund(999_999_999, 1, "k")).status == 404
    for bad in (0, -1, "1", None):
        assert (await refund(recorded, bad, "k")).status == 400, bad
    # The seat of the refund's own day, not recorded yet, is refunded too.
    assert (await refund(unrecorded, 3, "complaint-3")).status == 200
    # A booking still ahead is cancelled, not refunded in part: its
    # cancellation would give back the whole price again.
    early = await refund(ahead, 3, "complaint-4")
    assert (early.status, (await early.json())["code"]) == (409, "session_not_started")

    clock = after(refund_day)
    await record_day(refund_day, clock)
    adjustment = await UsageRecord.get(reservation_id=recorded, kind=UsageKind.ADJUSTMENT)
    assert (adjustment.day, adjustment.coupons, adjustment.amount_krw) == (
        refund_day, -4, -4_000)
    original = await UsageRecord.get(reservation_id=recorded, kind=UsageKind.NO_SHOW)
    assert (original.day, original.coupons) == (day, PRICE)  # the closed day is not changed
    assert [(r.kind, r.coupons) for r in await UsageRecord.filter(
        reservation_id=unrecorded)] == [(UsageKind.NO_SHOW, PRICE - 3)]
    await reopen((await BatchRun.get(job=BatchJob.DAILY_USAGE, period=refund_day.isoformat())
                  ).id, clock=clock)
    await record_day(refund_day, clock)  # again: nothing twice
    assert await UsageRecord.filter(reservation_id=recorded).count() == 2
    for month in {rules.month_of(day), rules.month_of(refund_day)}:
        await check_usage(month, place.center_id, zone=SEOUL, now=clock.now())
    assert not await Discrepancy.filter(
        subject__in=[f"reservation:{recorded}", f"reservation:{unrecorded}"]).exists()


@pytest.mark.parametrize(("request_kind", "days_ahead"),
                         [(CANCEL_RESERVATION, 37), (MOVE_RESERVATION, 47)])
async def test_a_seat_given_up_after_its_day_was_recorded_is_an_adjustment(
    client: Client, sign_up: Any, settings: Any, redis: Redis, worker: dramatiq.Worker,
    request_kind: str, days_ahead: int,
) -> None:
    """A cancellation, or a move to a later session, accepted two days ahead
    of the session (so in full), but decided the day after it (its queue
    held past the daily run): what the seat gave up is recorded on the day
    it was decided, and the seat's records add up to what its wallet kept."""
    day, decided_on = seoul_day(days_ahead), seoul_day(days_ahead + 1)
    place = await open_place(client, sign_up)
    timeslot_id = await timeslot(client, place, at(day, time(9)))
    later_id = await timeslot(client, place, at(day + timedelta(days=20), time(9)))
    person, reservation_id = await seat(client, sign_up, timeslot_id)
    await record_day(day, after(day))
    keys = Keys(settings.redis_key_prefix)
    queue = timeslot_queue(redis, keys)
    decided_in = timeslot_id if request_kind == CANCEL_RESERVATION else later_id
    accepted = ManualClock(datetime.combine(day - timedelta(days=2), time(9), SEOUL))
    deciding = ManualClock(datetime.combine(decided_on, time(12), SEOUL))
    held = CommandQueue(redis=redis, keys=keys, queue=queue,
                        pending=PendingCommands(redis=redis, keys=keys), clock=accepted,
                        schedule_drain=drained_below)

    async def booking_drained() -> bool:
        return not await queue.leased(timeslot_id)

    # The worker's drainer would take the request too, on its own clock.
    await eventually(booking_drained)
    await held.send(decided_in, kind=request_kind, user_id=person.id,
                    reservation_id=reservation_id)

    async def quiet(decided: Any) -> None:
        return None

    assert await drain_timeslot(decided_in, redis=redis, keys=keys, clock=deciding,
                                zone=SEOUL, published=quiet,
                                schedule_drain=drained_below) == 1
    assert (await Reservation.get(id=reservation_id)).status is ReservationStatus.CANCELLED
    clock = after(decided_on)
    await record_day(decided_on, clock)
    assert sorted((r.day, r.kind, r.coupons) for r in await UsageRecord.filter(
        reservation_id=reservation_id)) == [
        (day, UsageKind.NO_SHOW, PRICE), (decided_on, UsageKind.ADJUSTMENT, -PRICE)]
    await check_usage(rules.month_of(day), place.center_id, zone=SEOUL, now=clock.now())
    assert not await Discrepancy.filter(subject=f"reservation:{reservation_id}").exists()


async def drained_below(timeslot_id: int) -> None:
    """These tests drain by hand, on their own clock."""


REFUNDS_AT_ONCE = 8


async def admin_refunds_at_once(aiohttp_client: Any, make_app: Any, client: Client,
                                sign_up: Any, settings: Any) -> tuple[list[int], int]:
    """Eight admins each give back more than half of what one seat kept, at
    once, each with a key of their own: the answers, and the seat's person's
    balance after."""
    day = seoul_day(43)
    place = await open_place(client, sign_up)
    person, reservation_id = await seat(client, sign_up, await timeslot(
        client, place, at(day, time(9))))
    admin = await admin_headers(client, settings)
    office = await aiohttp_client(make_app(clock=ManualClock(
        datetime.combine(day, time(12), SEOUL))))

    async def refund(n: int) -> int:
        answer = await office.post(f"/api/v1/admin/reservations/{reservation_id}/refund",
                                   json={"coupons": PRICE // 2 + 1, "reason": "강사 부재"},
                                   headers={**admin, "Idempotency-Key": f"complaint-{n}"})
        return answer.status

    statuses = sorted(await asyncio.gather(*(refund(n) for n in range(REFUNDS_AT_ONCE))))
    wallet = await (await client.get("/api/v1/me/wallet", headers=person.headers)).json()
    return statuses, wallet["balance"]


async def test_admin_refunds_at_once_give_back_what_the_seat_kept_once(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker,
) -> None:
    assert await admin_refunds_at_once(aiohttp_client, make_app, client, sign_up, settings) == (
        [200] + [409] * (REFUNDS_AT_ONCE - 1), PRICE // 2 + 1)


@pytest.mark.control
async def test_control_admin_refunds_not_locked_give_back_too_much(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def lock_nothing(user_ids: Any, *, now: Any) -> dict[int, Any]:
        return {}

    monkeypatch.setattr(admin_refunds, "lock_wallets", lock_nothing)
    statuses, balance = await admin_refunds_at_once(aiohttp_client, make_app, client, sign_up,
                                                    settings)
    assert statuses.count(200) > 1 or 500 in statuses, (statuses, balance)
