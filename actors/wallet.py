from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import dramatiq

from actors.runtime import runtime
from fitnus.notifications.service import ring
from fitnus.wallet import service


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def expire_coupons() -> None:
    await service.expire_lots(clock=runtime().clock)


@dramatiq.actor(queue_name="notifications", max_retries=3, min_backoff=1_000)
async def notify_expiring_coupons() -> None:
    rt = runtime()
    told = await service.notify_expiring(
        notice=timedelta(days=rt.settings.coupon_expiry_notice_days),
        zone=ZoneInfo(rt.settings.time_zone), clock=rt.clock)
    await ring(rt.redis, rt.keys, told)
