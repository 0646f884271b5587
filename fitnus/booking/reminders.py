"""Reminders before a reserved session.

A reservation is owed its reminder from ``start - lead`` until it starts. Each
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

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fitnus.booking.models import Reservation
from fitnus.clock import Clock, as_utc
from fitnus.notifications.service import notify

REMINDER = "reservation.reminder"
# Reminders written per transaction; a backlog after an outage takes several.
REMINDER_PAGE = 200


async def send_due_reminders(*, lead: timedelta, zone: ZoneInfo, clock: Clock) -> list[int]:
    """Send every reminder owed now; returns the ids of the people reminded.

    Times in the payload are in ``zone``, the service time zone, like every
    time the API shows.
    """
    now = clock.now()
    reminded: list[int] = []
    after: tuple[datetime, int] | None = None
    while True:
        page = await _owed(now=now, lead=lead, after=after)
        reminded += await _remind(page, zone=zone, clock=clock)
        if len(page) < REMINDER_PAGE:
            return reminded
        after = (page[-1].starts_at, page[-1].id)


async def _owed(
    *, now: datetime, lead: timedelta, after: tuple[datetime, int] | None
) -> list[Reservation]:
    """A plain read: a locking read of this range would also lock its gaps and
    hold up bookings of the coming hour, so rows are locked by id in _remind."""
    # A withdrawn timeslot's reservations are about to be cancelled.
    query = Reservation.filter(
        reminded_at=None, active=True, timeslot__withdrawn_at__isnull=True,
        starts_at__gt=as_utc(now), starts_at__lte=as_utc(now + lead),
    )
    if after is not None:
        after_start, after_id = as_utc(after[0]), after[1]
        query = query.filter(Q(starts_at__gt=after_start) | Q(starts_at=after_start,
                                                               id__gt=after_id))
    return await query.order_by("starts_at", "id").limit(REMINDER_PAGE).select_related(
        "timeslot__program__center"
    )


async def _remind(page: list[Reservation], *, zone: ZoneInfo, clock: Clock) -> list[int]:
    if not page:
        return []
    async with in_transaction():
        # The locking read sees the latest committed rows: one reminded by a
        # concurrent scan, or cancelled since the plain read, drops out here.
        # A row another transaction holds (a booking batch cancelling it, a
        # second scan) is skipped rather than waited for: the scan never holds
        # up a booking, and what it skips and still owes, the next scan sends.
        locked = await Reservation.select_for_update(skip_locked=True).filter(
            id__in=[r.id for r in page]
        )
        owed = {r.id for r in locked if r.reminded_at is None and r.active}
        due = [reservation for reservation in page if reservation.id in owed]
        if not due:
            return []
        await Reservation.filter(id__in=list(owed)).update(reminded_at=clock.now())
        for reservation in due:
            await notify(
                user_id=reservation.user_id,  # type: ignore[attr-defined]
                type=REMINDER,
                payload=_payload(reservation, zone),
                dedupe_key=f"{REMINDER}:{reservation.id}",
                clock=clock,
            )
    return [reservation.user_id for reservation in due]  # type: ignore[attr-defined]


def _payload(reservation: Reservation, zone: ZoneInfo) -> dict[str, object]:
    return {
        "reservation_id": reservation.id,
        "timeslot_id": reservation.timeslot.id,
        "starts_at": reservation.starts_at.astimezone(zone).isoformat(),
        "program": reservation.timeslot.program.name,
        "center": reservation.timeslot.program.center.name,
        "address": reservation.timeslot.program.center.address,
    }
