"""Demo data loads around Seoul, once, however often `make run` runs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from fitnus.accounts.models import User
from fitnus.accounts.passwords import Passwords
from fitnus.centers.models import Center, Program, Timeslot
from fitnus.clock import system_clock
from fitnus.demo import CENTERS_PER_DISTRICT, DEMO_ACCOUNTS, SEOUL_DISTRICTS, load_demo_data


@pytest.mark.portable
async def test_demo_data_is_about_200_centers_in_seoul_and_idempotent(database: object) -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024)
    zone = ZoneInfo("Asia/Seoul")
    for _ in range(2):
        await load_demo_data(passwords=passwords, clock=system_clock, time_zone=zone)
    owners = await User.filter(email__in=[account.email for account in DEMO_ACCOUNTS])
    assert len(owners) == len(DEMO_ACCOUNTS)
    centers = await Center.filter(owner_id__in=[owner.id for owner in owners])
    assert len(centers) == len(SEOUL_DISTRICTS) * CENTERS_PER_DISTRICT == 200
    assert all(37.4 < c.latitude < 37.7 and 126.8 < c.longitude < 127.2 for c in centers)
    assert len({sport for center in centers for sport in center.sports}) >= 10
    assert all(any("\uac00" <= char <= "\ud7a3" for char in c.name) for c in centers)
    programs = await Program.filter(center_id__in=[center.id for center in centers]).count()
    assert programs == 400
    timeslots = await Timeslot.filter(program__center__owner_id__in=[o.id for o in owners])
    assert len(timeslots) == 400 * 14
    assert min(slot.starts_at for slot in timeslots) > system_clock.now()
