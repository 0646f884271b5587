"""Daily usage records: what each center earned on one Seoul day.

One record per reservation whose session started that day and whose coupons
were kept: attended, not come, or cancelled too late for a full refund (the
kept part); and an adjustment for each refund or move that day that took
back coupons a seat of an earlier, recorded day kept. What a seat kept is
what its wallet draws still hold (fitnus.wallet.lots, keyed by the seat's
``paid_for``): a seat moved to another session passed its draws on and keeps
nothing; a free session keeps nothing and earns its center nothing. Meetups
are a club's own, held at no center, so they earn no center anything either.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from tortoise.expressions import Q

from fitnus.batches.models import BatchRun
from fitnus.batches.runs import Chunk, Step
from fitnus.booking.admin_refunds import ADMIN_REFUND_PREFIX, reservation_refunded
from fitnus.booking.cancelling import CANCELLATION_REFUND_PREFIX
from fitnus.booking.models import Reservation, ReservationStatus, seat_paid_for
from fitnus.booking.outcomes import MOVE_RESERVATION
from fitnus.clock import as_utc
from fitnus.commands.models import Command, CommandStatus
from fitnus.settlement.models import KRW_PER_COUPON, UsageKind, UsageRecord
from fitnus.settlement.rules import Period
from fitnus.wallet.lots import still_drawn
from fitnus.wallet.models import LedgerEntry, LedgerKind

CHUNK_ROWS = 1_000


def sessions_in(period: Period, *, after: tuple[datetime, int]) -> Q:
    """Reservations of sessions starting in ``period``, after a (starts_at, id) cursor."""
    cursor_at, cursor_id = after
    return Q(starts_at__gte=as_utc(period.start), starts_at__lt=as_utc(period.end)) & (
        Q(starts_at__gt=as_utc(cursor_at)) | Q(starts_at=as_utc(cursor_at), id__gt=cursor_id))


def _seat_refunded(reference: str) -> int:
    if reference.startswith(CANCELLATION_REFUND_PREFIX):
        return int(reference.removeprefix(CANCELLATION_REFUND_PREFIX))
    return reservation_refunded(reference)


async def _taken_back(period: Period) -> list[tuple[str, int]]:
    """What happened in ``period`` that may take coupons back from a seat,
    each with the key of the adjustment it would make and the seat: a
    refund (an admin's, after the session; a cancellation's), or a move
    (the old seat's coupons pass to the new one). A cancellation or a move
    counts from when it was accepted, so one decided after its seat's day
    was recorded (its queue held past the daily run) takes back from a
    recorded seat."""
    during = {"created_at__gte": as_utc(period.start), "created_at__lt": as_utc(period.end)}
    refunds = await LedgerEntry.filter(
        Q(reference__startswith=ADMIN_REFUND_PREFIX)
        | Q(reference__startswith=CANCELLATION_REFUND_PREFIX),
        kind=LedgerKind.BOOKING_REFUND, **during,
    ).order_by("id").values_list("id", "reference")
    moves = await Command.filter(
        status=CommandStatus.SUCCEEDED, kind=MOVE_RESERVATION, **during,
    ).order_by("created_at", "id").values_list("id", "result")
    return [(f"adjustment:{entry_id}", _seat_refunded(reference))
            for entry_id, reference in refunds] + [
        (f"adjustment:move:{command_id}", result["moved_from"])
        for command_id, result in moves]


async def record_adjustments(day: date, period: Period, *, now: datetime) -> int:
    """Coupons taken back from a seat on this day (``_taken_back``): when the
    seat's own day is recorded already, what it took back is recorded today
    (the closed day is never changed); when not, that day records what is
    left."""
    taken_back = await _taken_back(period)
    if not taken_back:
        return 0
    # A day's cancellations and moves are many, and nearly all of seats still
    # ahead: their records are read in one query.
    records: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in await UsageRecord.filter(
            reservation_id__in={seat for _, seat in taken_back}).values(
            "reservation_id", "coupons", "kind", "center_id", "user_id", "program_id",
            "starts_at"):
        records[row["reservation_id"]].append(row)
    adjustments: list[UsageRecord] = []
    for entry_key, reservation_id in taken_back:
        recorded = records[reservation_id]
        if not any(row["kind"] != UsageKind.ADJUSTMENT for row in recorded):
            continue
        reservation = await Reservation.get(id=reservation_id)
        paid_for = seat_paid_for(reservation.command_id)
        kept = (await still_drawn([paid_for])).get(paid_for, 0)
        change = kept - sum(row["coupons"] for row in recorded) - sum(
            a.coupons for a in adjustments if a.reservation_id == reservation_id)
        if change:
            seat = recorded[0]
            adjustments.append(UsageRecord(
                entry_key=entry_key, center_id=seat["center_id"], day=day,
                reservation_id=reservation_id, user_id=seat["user_id"],
                program_id=seat["program_id"], starts_at=seat["starts_at"],
                kind=UsageKind.ADJUSTMENT, coupons=change, amount_krw=change * KRW_PER_COUPON,
                created_at=now))
    if adjustments:
        await UsageRecord.bulk_create(adjustments, ignore_conflicts=True)
    return len(adjustments)


# Dialects: (insert that skips a duplicate key, the record's key, the seat's
# paid_for, placeholder).
_DIALECTS = {
    "mysql": ("INSERT IGNORE", "CONCAT('reservation:', r.id)",
              "CONCAT('reservation:', r.command_id)", "%s"),
    "sqlite": ("INSERT OR IGNORE", "'reservation:' || r.id", "'reservation:' || r.command_id",
               "?"),
}

# One chunk of a day's kept seats into usage records, in the database: the
# seats after the cursor up to the chunk's last one, each with what its
# draws still hold. A seat still confirmed after its session started cannot
# be cancelled any more: it counts as come or not by its check-in.
_RECORD_CHUNK = """
{insert} INTO usage_record (entry_key, center_id, day, reservation_id, user_id, program_id,
                           starts_at, kind, coupons, amount_krw, created_at)
SELECT entry_key, center_id, {p}, id, user_id, program_id, starts_at, kind, kept,
       kept * {krw}, {p}
FROM (
  SELECT {entry_key} AS entry_key, p.center_id, r.id, r.user_id, p.id AS program_id,
         r.starts_at,
         CASE WHEN r.status = '{cancelled}' THEN '{late_cancel}'
              WHEN r.status = '{attended}' OR r.checked_in_at IS NOT NULL THEN '{came}'
              ELSE '{no_show}' END AS kind,
         (SELECT SUM(d.coupons - d.returned) FROM coupon_draw d
          WHERE d.paid_for = {paid_for}) AS kept
  FROM reservation r
  JOIN timeslot t ON t.id = r.timeslot_id
  JOIN program p ON p.id = t.program_id
  WHERE NOT EXISTS (SELECT 1 FROM usage_record u WHERE u.entry_key = {entry_key})
    AND r.starts_at >= {p} AND r.starts_at < {p}
    AND (r.starts_at > {p} OR (r.starts_at = {p} AND r.id > {p}))
    AND (r.starts_at < {p} OR (r.starts_at = {p} AND r.id <= {p}))
) seats
WHERE kept > 0
"""


def _record_chunk_sql(dialect: str) -> str:
    insert, entry_key, paid_for, placeholder = _DIALECTS[dialect]
    return _RECORD_CHUNK.format(
        insert=insert, entry_key=entry_key, paid_for=paid_for, p=placeholder, krw=KRW_PER_COUPON,
        cancelled=ReservationStatus.CANCELLED.value, attended=ReservationStatus.ATTENDED.value,
        late_cancel=UsageKind.LATE_CANCEL.value, came=UsageKind.ATTENDED.value,
        no_show=UsageKind.NO_SHOW.value)


def record_usage_step(day: date, period: Period, *, now: datetime,
                      chunk_rows: int = CHUNK_ROWS) -> Step:
    """The daily usage job's step for one day, for ``run_in_chunks``: the
    chunk's last seat read by its index, then one INSERT ... SELECT."""
    async def step(run: BatchRun) -> Chunk:
        after = (run.cursor_at or period.start, run.cursor_id)
        last = await Reservation.filter(sessions_in(period, after=after)).order_by(
            "starts_at", "id").offset(chunk_rows - 1).limit(1).values_list("starts_at", "id")
        done = not last
        until = (period.end, 0) if done else last[0]
        db = UsageRecord._meta.db
        written, _ = await db.execute_query(_record_chunk_sql(db.capabilities.dialect), [
            day, as_utc(now), as_utc(period.start), as_utc(period.end),
            as_utc(after[0]), as_utc(after[0]), after[1],
            as_utc(until[0]), as_utc(until[0]), until[1]])
        if done:
            written += await record_adjustments(day, period, now=now)
            return Chunk(rows=written, done=True, cursor_at=run.cursor_at,
                         cursor_id=run.cursor_id)
        return Chunk(rows=written, done=False, cursor_at=until[0], cursor_id=until[1])

    return step
