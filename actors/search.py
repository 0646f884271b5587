from __future__ import annotations

from datetime import timedelta

import dramatiq

from actors.runtime import runtime
from fitnus.search.service import sync_center, unsynced_centers

SWEEP_BATCH = 1000


@dramatiq.actor(queue_name="search", max_retries=20, min_backoff=500, max_backoff=60_000)
async def index_center(*, center_id: int) -> None:
    await sync_center(center_id, index=runtime().center_index)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def sweep_search_outbox() -> None:
    rt = runtime()
    older_than = timedelta(seconds=rt.settings.search_outbox_sweep_after_seconds)
    for center_id in await unsynced_centers(
        now=rt.clock.now(), older_than=older_than, limit=SWEEP_BATCH
    ):
        index_center.send(center_id=center_id)
