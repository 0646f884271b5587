"""The batch jobs fire at their time of day in Seoul, whatever the machine's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dramatiq.brokers.redis import RedisBroker


def fire_after(name: str, moment: datetime) -> Any:
    from scheduler.jobs import jobs

    [job] = [job for job in jobs("Asia/Seoul") if job.name == name]
    return job.trigger.get_next_fire_time(None, moment)


def test_the_daily_usage_runs_at_one_and_the_settlement_at_four_on_the_first_in_seoul(
    broker: RedisBroker,
) -> None:
    # 00:30 on 2 December in Seoul.
    moment = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert fire_after("record-daily-usage", moment) == datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert fire_after("settle-last-month", moment) == datetime(2026, 12, 31, 19, tzinfo=UTC)



def test_expired_refresh_tokens_are_pruned_every_hour(broker: RedisBroker) -> None:
    from actors.accounts import prune_expired_refresh_tokens
    from scheduler.jobs import jobs

    [job] = [job for job in jobs("Asia/Seoul") if job.name == "prune-refresh-tokens"]
    assert job.trigger.interval == timedelta(hours=1)
    assert job.enqueue == prune_expired_refresh_tokens.send
