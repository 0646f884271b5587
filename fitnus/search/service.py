"""Keeping the search index in step with MySQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from fitnus.centers.models import Center, SearchOutbox
from fitnus.centers.service import center_document
from fitnus.clock import as_utc
from fitnus.search.index import CenterIndex

REINDEX_BATCH = 1000


async def sync_center(center_id: int, *, index: CenterIndex) -> None:
    """Bring the index to the center's current version; safe to repeat or reorder."""
    center = await Center.get_or_none(id=center_id)
    if center is None:
        await SearchOutbox.filter(center_id=center_id).delete()
        return
    if center.deleted_at is not None:
        await index.remove(center.id, version=center.version)
    else:
        await index.put(center_document(center))
    await SearchOutbox.filter(center_id=center_id, version__lte=center.version).delete()


async def unsynced_centers(*, now: datetime, older_than: timedelta, limit: int) -> list[int]:
    """Changes whose index message may have been lost (a web process died)."""
    rows = await SearchOutbox.filter(updated_at__lt=now - older_than).order_by(
        "updated_at"
    ).limit(limit)
    return [row.center_id for row in rows]


async def reindex_all(*, index: CenterIndex, now: datetime) -> int:
    """Rebuild the index from MySQL; returns the number of centers indexed.
    Centers changed from ``now`` on (while it was built) are synced again after."""
    async def fill(target: CenterIndex) -> int:
        indexed, after_id = 0, 0
        while batch := await Center.filter(id__gt=after_id, deleted_at=None).order_by(
                "id").limit(REINDEX_BATCH):
            await target.put_many([center_document(center) for center in batch])
            indexed += len(batch)
            after_id = batch[-1].id
        return indexed

    indexed = await index.rebuild(fill)
    for center_id in await Center.filter(updated_at__gte=as_utc(now)).values_list("id", flat=True):
        await sync_center(int(center_id), index=index)  # type: ignore[call-overload]
    return indexed
