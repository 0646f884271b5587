"""Of several scheduler processes, one acts; another takes over when it dies."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from fitnus.leader import LeaderLease
from tests.conftest import eventually

pytestmark = pytest.mark.cluster

TTL_SECONDS = 0.5


def lease_pair(redis: Redis, prefix: str) -> tuple[LeaderLease, LeaderLease]:
    key = f"{prefix}leader-test:{uuid.uuid4().hex}"
    return (
        LeaderLease(redis=redis, key=key, ttl_seconds=TTL_SECONDS),
        LeaderLease(redis=redis, key=key, ttl_seconds=TTL_SECONDS),
    )


async def test_only_one_of_two_schedulers_leads(redis: Redis, settings: object) -> None:
    first, second = lease_pair(redis, "fitnus-test:")
    results = await asyncio.gather(first.acquire_or_renew(), second.acquire_or_renew())
    assert sorted(results) == [False, True]
    assert first.is_leader != second.is_leader
    leader = first if first.is_leader else second
    assert await leader.acquire_or_renew()


async def test_the_other_takes_over_within_a_lease_period_when_the_leader_dies(
    redis: Redis,
) -> None:
    first, second = lease_pair(redis, "fitnus-test:")
    assert await first.acquire_or_renew()
    assert not await second.acquire_or_renew()
    # The leader dies: it renews no more. The follower keeps trying.
    await eventually(second.acquire_or_renew, deadline_seconds=TTL_SECONDS * 3)
    assert not first.is_leader  # its own deadline passed before the key expired


async def test_a_released_lease_is_taken_at_once(redis: Redis) -> None:
    first, second = lease_pair(redis, "fitnus-test:")
    assert await first.acquire_or_renew()
    await first.release()
    assert not first.is_leader
    assert await second.acquire_or_renew()


async def test_a_leader_that_cannot_reach_redis_stops_acting() -> None:
    unreachable = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0),
                        socket_connect_timeout=0.2)
    lease = LeaderLease(redis=unreachable, key="k", ttl_seconds=TTL_SECONDS)
    assert not await lease.acquire_or_renew()
    assert not lease.is_leader
    await unreachable.aclose()
