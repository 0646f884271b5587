from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import dramatiq

from actors.metrics import count_decisions
from actors.runtime import runtime
from fitnus.attendance import service as attendance
from fitnus.booking.batches import drain_timeslot, sweep_timeslot_queues
from fitnus.booking.outcomes import Decisions
from fitnus.booking.reminders import send_due_reminders
from fitnus.booking.service import request_withdrawals, withdrawn_with_seats
from fitnus.commands.outcomes import publish_outcomes
from fitnus.notifications.service import ring


async def publish_decisions(decided: Decisions) -> None:
    """After a batch committed: waiting requests and open streams hear of it."""
    rt = runtime()
    commands = [outcome.command for outcome in decided.outcomes]
    count_decisions(commands)
    await publish_outcomes(rt.redis, rt.keys, commands)
    await ring(rt.redis, rt.keys, decided.notified)


@dramatiq.actor(queue_name="booking", max_retries=50, min_backoff=100, max_backoff=5_000)
async def drain_timeslot_queue(*, timeslot_id: int) -> None:
    rt = runtime()
    await drain_timeslot(
        timeslot_id, redis=rt.redis, keys=rt.keys, clock=rt.clock,
        zone=ZoneInfo(rt.settings.time_zone), published=publish_decisions,
        schedule_drain=drain_later, windows=rt.settings.claim_windows,
    )


async def drain_later(timeslot_id: int) -> None:
    drain_timeslot_queue.send(timeslot_id=timeslot_id)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def sweep_keyed_queues() -> None:
    rt = runtime()
    await sweep_timeslot_queues(redis=rt.redis, keys=rt.keys, schedule_drain=drain_later)


@dramatiq.actor(queue_name="notifications", max_retries=3, min_backoff=1_000)
async def send_reminders() -> None:
    rt = runtime()
    lead = timedelta(minutes=rt.settings.reminder_lead_minutes)
    reminded = await send_due_reminders(
        lead=lead, zone=ZoneInfo(rt.settings.time_zone), clock=rt.clock
    )
    await ring(rt.redis, rt.keys, reminded)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def sweep_withdrawals() -> None:
    rt = runtime()
    await request_withdrawals(await withdrawn_with_seats(), redis=rt.redis, keys=rt.keys,
                              schedule_drain=drain_later)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def mark_no_shows() -> None:
    await attendance.mark_no_shows(clock=runtime().clock)
