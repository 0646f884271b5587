from __future__ import annotations

import aiohttp
import dramatiq

from actors.runtime import runtime
from fitnus.payments import refunds, service
from fitnus.payments.kakaopay import KakaoPay


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def reconcile_payments() -> None:
    rt = runtime()
    config = rt.settings.kakaopay
    if config is None:
        return
    async with aiohttp.ClientSession() as session:
        pay = KakaoPay(config, session)
        await service.reconcile_pending(pay, clock=rt.clock)
        await refunds.settle_pending(pay, clock=rt.clock)
