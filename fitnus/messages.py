"""What the web tier asks the workers to do, as plain callables.

The composition roots bind them to dramatiq actors; the domain only sees
these signatures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fitnus.centers.service import IndexCenter
from fitnus.commands.queued import ScheduleDrain
from fitnus.commands.service import Dispatch


@dataclass(frozen=True, kw_only=True)
class Messages:
    dispatch: Dispatch
    index_center: IndexCenter
    schedule_drain: ScheduleDrain
    schedule_meetup_drain: ScheduleDrain
    schedule_auction_drain: ScheduleDrain
    # Work on a batch run (fitnus.batches) now.
    run_batch: Callable[[int], Awaitable[None]]
