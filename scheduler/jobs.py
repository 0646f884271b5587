"""Each job only enqueues an actor; the actor does the work, idempotently."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger


@dataclass(frozen=True)
class Job:
    name: str
    trigger: Any
    enqueue: Callable[[], Any]


def jobs(time_zone: str) -> list[Job]:
    """``time_zone``: the service's (Asia/Seoul), for the jobs that run at a
    time of day; a trigger made here would otherwise take the machine's."""
    from actors.accounts import prune_expired_refresh_tokens
    from actors.auctions import close_due_auctions, sweep_auction_queues
    from actors.booking import (
        mark_no_shows,
        send_reminders,
        sweep_keyed_queues,
        sweep_withdrawals,
    )
    from actors.clubs import sweep_meetup_queues
    from actors.commands import redrive_pending_commands
    from actors.kafka import drain_event_outbox
    from actors.payments import reconcile_payments
    from actors.search import sweep_search_outbox
    from actors.settlement import record_yesterday, resume_batch_runs, settle_last_month
    from actors.waitlist import sweep_waitlists
    from actors.wallet import expire_coupons, notify_expiring_coupons

    return [
        Job(
            name="send-reminders",
            # At second 0 of every minute; each scan sends every reminder still owed,
            # so a missed run delays reminders and drops none.
            trigger=CronTrigger(second=0),
            enqueue=send_reminders.send,
        ),
        Job(
            name="sweep-keyed-queues",
            # Within seconds: requests left by a killed worker wait on this.
            trigger=IntervalTrigger(seconds=2),
            enqueue=sweep_keyed_queues.send,
        ),
        Job(
            name="sweep-meetup-queues",
            trigger=IntervalTrigger(seconds=2),
            enqueue=sweep_meetup_queues.send,
        ),
        Job(
            name="close-auctions",
            # Auctions closed by the clock are settled within seconds.
            trigger=IntervalTrigger(seconds=2),
            enqueue=close_due_auctions.send,
        ),
        Job(
            name="sweep-auction-queues",
            trigger=IntervalTrigger(seconds=2),
            enqueue=sweep_auction_queues.send,
        ),
        Job(
            name="drain-event-outbox",
            # Events a batch's own drain message missed (its worker died).
            trigger=IntervalTrigger(seconds=5),
            enqueue=drain_event_outbox.send,
        ),
        Job(
            name="mark-no-shows",
            # Seats of sessions that ended half an hour ago, not checked into.
            trigger=CronTrigger(second=30),
            enqueue=mark_no_shows.send,
        ),
        Job(
            name="sweep-waitlists",
            # Offers end within seconds of their window; each once, in its queue.
            trigger=IntervalTrigger(seconds=5),
            enqueue=sweep_waitlists.send,
        ),
        Job(
            name="sweep-withdrawals",
            # A timeslot withdrawn whose cancellations were never queued.
            trigger=IntervalTrigger(seconds=30),
            enqueue=sweep_withdrawals.send,
        ),
        Job(
            name="sweep-search-outbox",
            trigger=IntervalTrigger(seconds=30),
            enqueue=sweep_search_outbox.send,
        ),
        Job(
            name="reconcile-payments",
            # Purchases left pending: Kakao's own status settles them.
            trigger=IntervalTrigger(minutes=5),
            enqueue=reconcile_payments.send,
        ),
        Job(
            name="expire-coupons",
            # Lots that ran out this minute; a wallet read or spent lets its
            # own go at once, so this is for the balances nobody looks at.
            trigger=CronTrigger(second=15),
            enqueue=expire_coupons.send,
        ),
        Job(
            name="notify-expiring-coupons",
            trigger=CronTrigger(minute=5),
            enqueue=notify_expiring_coupons.send,
        ),
        Job(
            name="record-daily-usage",
            # The day that ended an hour ago.
            trigger=CronTrigger(hour=1, minute=0, timezone=time_zone),
            enqueue=record_yesterday.send,
        ),
        Job(
            name="settle-last-month",
            trigger=CronTrigger(day=1, hour=4, minute=0, timezone=time_zone),
            enqueue=settle_last_month.send,
        ),
        Job(
            name="resume-batch-runs",
            # A run whose worker died half-way goes on from its last chunk.
            trigger=IntervalTrigger(minutes=5),
            enqueue=resume_batch_runs.send,
        ),
        Job(
            name="prune-refresh-tokens",
            # Expired ones: the web app's session issues one per page opened.
            trigger=IntervalTrigger(hours=1),
            enqueue=prune_expired_refresh_tokens.send,
        ),
        Job(
            name="redrive-pending-commands",
            trigger=IntervalTrigger(seconds=30),
            enqueue=redrive_pending_commands.send,
        ),
    ]
