from __future__ import annotations

import dramatiq

from actors.booking import drain_later
from actors.clubs import meetup_drain_later
from actors.runtime import runtime
from fitnus.waitlist import service


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def sweep_waitlists() -> None:
    rt = runtime()
    await service.sweep_waitlists(
        redis=rt.redis, keys=rt.keys, clock=rt.clock, windows=rt.settings.claim_windows,
        schedule_timeslot_drain=drain_later, schedule_meetup_drain=meetup_drain_later)
