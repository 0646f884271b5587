"""Reminders before a reserved session.

A scan runs every minute and sends every reminder due in the last minute
(inclusive), so one run missed by a restart is made up by the next, and no
reminder goes out more than a minute late. The notification's dedupe key
(one per reservation) makes a scan that runs twice, or two schedulers at
once, send each reminder once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fitnus.booking.models import Reservation
from fitnus.clock import Clock, as_utc
from fitnus.notifications.service import notify

REMINDER = "reservation.reminder"
LATEST_LATENESS = timedelta(minutes=1)


async def send_due_reminders(*, lead: timedelta, clock: Clock) -> list[int]:
    """Send what is due now; returns the ids of the people reminded."""
    now = clock.now()
    due = await Reservation.filter(
        active=True,
        starts_at__gte=as_utc(now + lead - LATEST_LATENESS),
        starts_at__lte=as_utc(now + lead),
    ).select_related("timeslot__program__center")
    reminded = []
    for reservation in due:
        await notify(
            user_id=reservation.user_id,  # type: ignore[attr-defined]
            type=REMINDER,
            payload=_payload(reservation),
            dedupe_key=f"{REMINDER}:{reservation.id}",
            clock=clock,
        )
        reminded.append(reservation.user_id)  # type: ignore[attr-defined]
    return reminded


def _payload(reservation: Reservation) -> dict[str, object]:
    starts_at: datetime = reservation.starts_at
    return {
        "reservation_id": reservation.id,
        "timeslot_id": reservation.timeslot.id,
        "starts_at": starts_at.isoformat(),
        "program": reservation.timeslot.program.name,
        "center": reservation.timeslot.program.center.name,
        "address": reservation.timeslot.program.center.address,
    }
