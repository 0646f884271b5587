"""Reminders before a reserved session, and before a joined club meetup.

A reservation (or a meetup place) is owed its reminder from ``start - lead`` until it starts. Each
scan (every minute) sends every reminder owed and not yet sent, however long
ago it fell due, so a scan that runs late or not at all (a leader hand-over, a
backlog, a restart) delays reminders and never drops them. A reservation that
has started gets none: a reminder after the start helps no one.

"Not yet sent" is the reservation's ``reminded_at``, set in the transaction
that writes the notification. The alternative, an anti-join on the
notification's dedupe key, needs no column but re-reads every reservation of
the coming hour and probes the notifications for each, on every scan; with the
column the scan reads only what is still owed, from one index range
(reminded_at IS NULL, starts_at within the lead). The notification's dedupe key
stays as the second guard: two scans at once, or a reminder written before the
column existed, still give one notification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fitnus.booking.models import Reservation
from fitnus.clock import Clock, as_utc
from fitnus.clubs.models import MeetupAttendee
from fitnus.notifications.service import notify

REMINDER = "reservation.reminder"
MEETUP_REMINDER = "meetup.reminder"
# Reminders written per transaction; a backlog after an outage takes several.
REMINDER_PAGE = 200

Owed = Reservation | MeetupAttendee


@dataclass(frozen=True)
class Reminded:
    """What is reminded of: seats at centers, places at club meetups."""

    model: type[Reservation] | type[MeetupAttendee]
    type: str
    related: str
    # Those about to be cancelled get none (a withdrawn timeslot's).
    still_on: dict[str, Any]
    payload: Callable[[Any, ZoneInfo], dict[str, object]]


def _reservation_payload(reservation: Reservation, zone: ZoneInfo) -> dict[str, object]:
    return {
        "reservation_id": reservation.id,
        "timeslot_id": reservation.timeslot.id,
        "starts_at": reservation.starts_at.astimezone(zone).isoformat(),
        "program": reservation.timeslot.program.name,
        "center": reservation.timeslot.program.center.name,
        "address": reservation.timeslot.program.center.address,
    }


def _meetup_payload(place: MeetupAttendee, zone: ZoneInfo) -> dict[str, object]:
    return {
        "meetup_id": place.meetup.id,
        "club_id": place.meetup.club.id,
        "starts_at": place.starts_at.astimezone(zone).isoformat(),
        "title": place.meetup.title,
        "club": place.meetup.club.name,
        "place": place.meetup.place,
    }


REMINDED = (
    Reminded(Reservation, REMINDER, "timeslot__program__center",
             {"timeslot__withdrawn_at__isnull": True}, _reservation_payload),
    Reminded(MeetupAttendee, MEETUP_REMINDER, "meetup__club", {}, _meetup_payload),
)


async def send_due_reminders(*, lead: timedelta, zone: ZoneInfo, clock: Clock) -> list[int]:
    """Send every reminder owed now, of seats and of meetup places; returns the
    ids of the people reminded.

    Times in the payload are in ``zone``, the service time zone, like every
    time the API shows.
    """
    now = clock.now()
    reminded: list[int] = []
    for kind in REMINDED:
        after: tuple[datetime, int] | None = None
        while True:
            page = await _owed(kind, now=now, lead=lead, after=after)
            reminded += await _remind(kind, page, zone=zone, clock=clock)
            if len(page) < REMINDER_PAGE:
                break
            after = (page[-1].starts_at, page[-1].id)
    return reminded


async def _owed(
    kind: Reminded, *, now: datetime, lead: timedelta, after: tuple[datetime, int] | None
) -> list[Owed]:
    """A plain read: a locking read of this range would also lock its gaps and
    hold up bookings of the coming hour, so rows are locked by id in _remind."""
    query = kind.model.filter(
        reminded_at=None, active=True, starts_at__gt=as_utc(now),
        starts_at__lte=as_utc(now + lead), **kind.still_on,
    )
    if after is not None:
        after_start, after_id = as_utc(after[0]), after[1]
        query = query.filter(Q(starts_at__gt=after_start) | Q(starts_at=after_start,
                                                               id__gt=after_id))
    return list(await query.order_by("starts_at", "id").limit(REMINDER_PAGE).select_related(
        kind.related))


async def _remind(kind: Reminded, page: list[Owed], *, zone: ZoneInfo,
                  clock: Clock) -> list[int]:
    if not page:
        return []
    async with in_transaction():
        # The locking read sees the latest committed rows: one reminded by a
        # concurrent scan, or cancelled since the plain read, drops out here.
        # A row another transaction holds (a booking batch cancelling it, a
        # second scan) is skipped rather than waited for: the scan never holds
        # up a booking, and what it skips and still owes, the next scan sends.
        locked = await kind.model.select_for_update(skip_locked=True).filter(
            id__in=[row.id for row in page]
        )
        owed = {row.id for row in locked if row.reminded_at is None and row.active}
        due = [row for row in page if row.id in owed]
        if not due:
            return []
        await kind.model.filter(id__in=list(owed)).update(reminded_at=clock.now())
        for row in due:
            await notify(
                user_id=row.user_id,  # type: ignore[union-attr]
                type=kind.type,
                payload=kind.payload(row, zone),
                dedupe_key=f"{kind.type}:{row.id}",
                clock=clock,
            )
    return [row.user_id for row in due]  # type: ignore[union-attr]
