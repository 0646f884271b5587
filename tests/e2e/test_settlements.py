"""Monthly settlements: drafted once per center, verified only when the three
matches hold (each planted difference blocks it until an admin resolves it),
paid once, and owners told."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import aiohttp
import dramatiq
from aiohttp.test_utils import TestClient
from tortoise.transactions import in_transaction

from fitnus.batches.models import BatchJob, BatchRun, RunStatus
from fitnus.batches.runs import open_run, reopen, run_in_chunks
from fitnus.centers.models import Center
from fitnus.clock import ManualClock, system_clock
from fitnus.notifications.models import Notification
from fitnus.payments.kakaopay import KakaoPay
from fitnus.payments.models import CouponOrder, OrderStatus
from fitnus.settlement import rules
from fitnus.settlement.models import Discrepancy, Settlement, UsageRecord
from fitnus.settlement.service import monthly_step
from fitnus.settlement.verification import check_payments, check_usage
from tests.conftest import eventually
from tests.e2e.shop import buy, come_back, open_shop, pay_on_kakao
from tests.e2e.test_booking import PRICE
from tests.e2e.test_centers import admin_headers
from tests.e2e.test_usage_records import (
    SEOUL,
    after,
    at,
    open_place,
    record_day,
    seat,
    seoul_day,
    timeslot,
)
from tests.fakes.kakaopay import SECRET_KEY

Client = TestClient[Any, Any]
DEFAULT_BP = 500


async def settle_month_run(month: str, clock: ManualClock) -> BatchRun:
    """The monthly job's run (its checks without Kakao Pay), as the worker works it."""
    run, has_work = await open_run(BatchJob.MONTHLY_SETTLEMENT, month, clock=clock)
    if not has_work:
        await reopen(run.id, clock=clock, from_start=True)
    return await run_in_chunks(run.id, monthly_step(
        month, default_bp=DEFAULT_BP, zone=SEOUL, clock=clock, look_up=None, sample=0,
        told=set()), clock=clock)


def first_of_next_month(day: date) -> ManualClock:
    following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return ManualClock(datetime.combine(following, time(4), SEOUL))


async def test_a_month_is_settled_once_per_center_and_verified_only_when_it_adds_up(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker,
) -> None:
    day = seoul_day(70)
    month = rules.month_of(day)
    busy, quiet = await open_place(client, sign_up), await open_place(client, sign_up)
    busy_slot = await timeslot(client, busy, at(day, time(9)))
    busy_seats = [(await seat(client, sign_up, busy_slot))[1] for _ in range(3)]
    await seat(client, sign_up, await timeslot(client, quiet, at(day, time(9))))
    await record_day(day, after(day))
    clock = first_of_next_month(day)

    async def settle() -> None:
        await settle_month_run(month, clock)

    await settle()
    mine = {s.center_id: s for s in await Settlement.filter(
        month=month, center_id__in=[busy.center_id, quiet.center_id])}
    gross = 3 * PRICE * 1000
    assert (mine[busy.center_id].gross_krw, mine[busy.center_id].commission_krw,
            mine[busy.center_id].vat_krw, mine[busy.center_id].payout_krw) == (
        gross, gross * 5 // 100, gross * 5 // 1000, gross - gross * 5 // 100 - gross * 5 // 1000)
    assert await Notification.filter(user_id=busy.owner.id, type="settlement.ready").count() == 1
    await settle()  # again: still one settlement each, one notice
    assert await Settlement.filter(month=month, center_id=busy.center_id).count() == 1
    assert await Notification.filter(user_id=busy.owner.id, type="settlement.ready").count() == 1

    app = await aiohttp_client(make_app(clock=clock))
    admin = await admin_headers(client, settings)
    verify = f"/api/v1/admin/settlements/{mine[busy.center_id].id}/verify"
    pay = f"/api/v1/admin/settlements/{mine[busy.center_id].id}/pay"

    async def blocked(kind: str) -> None:
        """Verifying fails while the planted difference is open; resolving it lets it through."""
        refused = await app.post(verify, headers=admin)
        assert (refused.status, (await refused.json())["code"]) == (409, "discrepancies_open")
        listed = await (await app.get(f"/api/v1/admin/discrepancies?status=open&month={month}",
                                      headers=admin)).json()
        found = [row for row in listed["items"] if row["center_id"] == busy.center_id]
        assert [row["kind"] for row in found] == [kind], found
        resolved = await app.post(f"/api/v1/admin/discrepancies/{found[0]['id']}/resolve",
                                  json={"note": "checked with the center by phone"},
                                  headers=admin)
        assert resolved.status == 200
        assert (await resolved.json())["status"] == "resolved"

    # 1. A usage record that says more than the seat kept.
    await UsageRecord.filter(reservation_id=busy_seats[0]).update(coupons=PRICE + 1)
    for _ in range(2):  # found again: the same row, not a second (nor a duplicate-key warning)
        await check_usage(month, busy.center_id, zone=SEOUL, now=clock.now())
    await blocked("usage")
    await UsageRecord.filter(reservation_id=busy_seats[0]).update(coupons=PRICE)
    # 3. A settlement whose gross is not what its usage records add up to.
    await Settlement.filter(id=mine[busy.center_id].id).update(gross_krw=gross + 1)
    await blocked("gross")
    await Settlement.filter(id=mine[busy.center_id].id).update(gross_krw=gross)

    assert (await app.post(pay, headers=admin)).status == 409  # not verified yet
    verified = await app.post(verify, headers=admin)
    assert verified.status == 200, await verified.text()
    assert (await verified.json())["status"] == "verified"
    # Each settlement names its center, so the admin's page asks for no center by id.
    center = await Center.get(id=busy.center_id)
    assert (await verified.json())["center_name"] == center.name
    before = await Settlement.get(id=mine[busy.center_id].id)
    rate = f"/api/v1/admin/centers/{busy.center_id}/commission"
    assert (await app.put(rate, json={"percent": "1"}, headers=admin)).status == 200
    await settle()  # a verified month is not recomputed, whatever its center's rate is now
    after_rerun = await Settlement.get(id=mine[busy.center_id].id)
    assert (after_rerun.status, after_rerun.commission_bp, after_rerun.payout_krw,
            after_rerun.computed_at) == (before.status, before.commission_bp, before.payout_krw,
                                         before.computed_at)
    paid = await app.post(pay, headers=admin)
    assert (paid.status, (await paid.json())["status"]) == (200, "paid")
    assert (await app.post(pay, headers=admin)).status == 200  # once
    assert await Notification.filter(user_id=busy.owner.id, type="settlement.paid").count() == 1

    owner_view = await (await app.get(f"/api/v1/owner/settlements?month={month}",
                                      headers=busy.owner.headers)).json()
    assert [(s["center_id"], s["status"], s["payout_krw"], s["commission_percent"])
            for s in owner_view["items"]] == [
        (busy.center_id, "paid", mine[busy.center_id].payout_krw, "5")]
    assert (await app.get("/api/v1/admin/settlements", headers=busy.owner.headers)).status == 403
    assert (await app.get("/api/v1/owner/settlements?month=2026-13",
                          headers=busy.owner.headers)).status == 400


async def test_a_centers_own_rate_applies_to_its_next_draft(
    client: Client, sign_up: Any, settings: Any, worker: dramatiq.Worker,
) -> None:
    day = seoul_day(105)
    month = rules.month_of(day)
    place = await open_place(client, sign_up)
    await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    await record_day(day, after(day))
    admin = await admin_headers(client, settings)
    rate = f"/api/v1/admin/centers/{place.center_id}/commission"
    for bad in ({"percent": "95"}, {"percent": "3.333"}, {"percent": 3}, {}):
        assert (await client.put(rate, json=bad, headers=admin)).status == 400, bad
    assert (await client.put(rate, json={"percent": "3.5"},
                             headers=place.owner.headers)).status == 403
    assert (await client.put("/api/v1/admin/centers/999999999/commission",
                             json={"percent": "3.5"}, headers=admin)).status == 404
    assert (await client.put(rate, json={"percent": "3.5"}, headers=admin)).status == 200
    await settle_month_run(month, first_of_next_month(day))
    settlement = await Settlement.get(month=month, center_id=place.center_id)
    assert (settlement.commission_bp, settlement.commission_krw, settlement.vat_krw) == (
        350, 350, 35)


async def test_orders_are_checked_against_their_credits_and_kakao_pay(
    aiohttp_client: Any, make_app: Any, kakao_server: Any, client: Client, sign_up: Any,
    settings: Any,
) -> None:
    """Through our Kakao Pay client, against the local Kakao Pay. The month's
    payment differences block every settlement of the month."""
    kakao, url = kakao_server
    shop = await open_shop(aiohttp_client, make_app, kakao_server, "open-api")
    person = await sign_up()
    started = await buy(shop, person, coupons=30)
    await come_back(shop, await pay_on_kakao(shop, started))
    order = await CouponOrder.get(id=started["id"])
    assert order.status is OrderStatus.APPROVED
    assert order.approved_at is not None
    now = system_clock.now()
    month = rules.month_of(now.astimezone(SEOUL).date())
    config = replace(settings, kakaopay_base_url=url, kakaopay_secret_key=SECRET_KEY).kakaopay
    assert config is not None

    async def check() -> dict[str, str]:
        """This test's orders' differences: subject -> detail."""
        async with aiohttp.ClientSession() as session:
            pay = KakaoPay(config, session)

            async def look_up(tid: str) -> dict[str, Any]:
                return await pay.order(tid=tid)

            await check_payments(month, zone=SEOUL, now=now, look_up=look_up, sample=0)
        return {row.subject: row.detail for row in await Discrepancy.filter(
            month=month, subject__in=[f"order:{order.id}:credit", f"order:{order.id}:kakao",
                                      f"order:{planted.id}:credit"])}

    planted = order  # before it is planted, only the real order is looked at
    assert await check() == {}
    # Kakao says part of it was cancelled; we know of no refund.
    kakao.by_order(str(order.id)).canceled_amount = 1_000
    # An order marked approved that no credit ever followed (planted).
    planted = await CouponOrder.create(
        user_id=person.id, bundle_id="custom", coupons=10, amount_krw=10_000,
        gateway=order.gateway, tid=order.tid + "-planted", status=OrderStatus.APPROVED,
        approved_krw=10_000, callback_key_hash="-", created_at=now, approved_at=now)
    found = await check()
    assert set(found) == {f"order:{order.id}:kakao", f"order:{planted.id}:credit"}, found
    assert "1000 cancelled" in found[f"order:{order.id}:kakao"]

    # Any settlement of that month is blocked until they are resolved.
    place = await open_place(client, sign_up)
    draft = await Settlement.create(center_id=place.center_id, month=month, gross_krw=0,
                                    commission_bp=DEFAULT_BP, commission_krw=0, vat_krw=0,
                                    payout_krw=0, created_at=now, computed_at=now)
    admin = await admin_headers(client, settings)
    verify = f"/api/v1/admin/settlements/{draft.id}/verify"
    early = await client.post(verify, headers=admin)
    assert (early.status, (await early.json())["code"]) == (409, "settlement_run_not_done")
    await BatchRun.create(job=BatchJob.MONTHLY_SETTLEMENT, period=month, status=RunStatus.DONE,
                          started_at=now, updated_at=now, finished_at=now)
    refused = await client.post(verify, headers=admin)
    assert (refused.status, (await refused.json())["code"]) == (409, "discrepancies_open")
    listed = await (await client.get(f"/api/v1/admin/discrepancies?status=open&month={month}",
                                     headers=admin)).json()
    for row in listed["items"]:
        if row["center_id"] is None:
            assert row["kind"] == "payment"
            answer = await client.post(f"/api/v1/admin/discrepancies/{row['id']}/resolve",
                                       json={"note": "refunded by hand at Kakao"}, headers=admin)
            assert answer.status == 200
    assert (await client.post(verify, headers=admin)).status == 200
    for bad in ({}, {"note": ""}, {"note": 5}, {"note": "x" * 501}):
        assert (await client.post(f"/api/v1/admin/discrepancies/{listed['items'][0]['id']}"
                                  "/resolve", json=bad, headers=admin)).status == 400
    assert (await client.post("/api/v1/admin/discrepancies/999999999/resolve",
                              json={"note": "n"}, headers=admin)).status == 404
    assert (await client.post("/api/v1/admin/settlements/999999999/verify",
                              headers=admin)).status == 404
    assert (await client.post(verify, headers=person.headers)).status == 403


async def test_an_admins_monthly_run_records_the_days_no_daily_run_recorded_first(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker,
) -> None:
    """No 01:00 run ever came for this month (a worker down): the monthly
    run records each of its days before it settles them."""
    day = seoul_day(140)
    month = rules.month_of(day)
    place = await open_place(client, sign_up)
    await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    admin = await admin_headers(client, settings)
    office = await aiohttp_client(make_app(clock=first_of_next_month(day)))
    runs = "/api/v1/admin/batches/monthly_settlement/runs"
    started = await office.post(runs, json={"period": month}, headers=admin)
    assert started.status == 202, await started.text()
    run_id = (await started.json())["run_id"]

    async def done() -> bool:
        shown = await (await office.get(f"{runs}/{run_id}", headers=admin)).json()
        assert shown["status"] != "failed", shown
        return bool(shown["status"] == "done")

    await eventually(done, deadline_seconds=60)
    settlement = await Settlement.get(month=month, center_id=place.center_id)
    assert settlement.gross_krw == PRICE * 1000
    first, following = rules.month_days(month)
    assert await BatchRun.filter(job=BatchJob.DAILY_USAGE, status=RunStatus.DONE,
                                 period__startswith=month).count() == (following - first).days
    # Nothing is a draft any more once verified: a re-run then changes nothing and says so.
    verified = await office.post(f"/api/v1/admin/settlements/{settlement.id}/verify",
                                 headers=admin)
    assert verified.status == 200, await verified.text()
    again = await office.post(runs, json={"period": month}, headers=admin)
    assert again.status == 200
    assert (await again.json())["detail"] == "this period is done already: nothing changes"


async def test_a_monthly_run_waits_for_a_day_another_runner_is_recording(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Any,
    worker: dramatiq.Worker,
) -> None:
    """Drafted while one of its days is still being recorded elsewhere, the
    month would miss that day: the monthly run stops, and settles it on a
    retry once the day is recorded. The month's first day, so the run meets
    it before any other; a month no other test's days fall in."""
    day = seoul_day(260).replace(day=1)
    month = rules.month_of(day)
    place = await open_place(client, sign_up)
    await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    clock = first_of_next_month(day)
    day_run, _ = await open_run(BatchJob.DAILY_USAGE, day.isoformat(), clock=clock)
    admin = await admin_headers(client, settings)
    office = await aiohttp_client(make_app(clock=clock))
    runs = "/api/v1/admin/batches/monthly_settlement/runs"
    first, following = rules.month_days(month)

    async def the_others_recorded() -> bool:
        return await BatchRun.filter(job=BatchJob.DAILY_USAGE, status=RunStatus.DONE,
                                     period__startswith=month).count() == (
            following - first).days - 1

    async with in_transaction():
        # Another runner is at work on that day.
        await BatchRun.select_for_update().get(id=day_run.id)
        started = await office.post(runs, json={"period": month}, headers=admin)
        assert started.status == 202, await started.text()
        await eventually(the_others_recorded, deadline_seconds=60)
        await asyncio.sleep(0.5)
        assert not await Settlement.filter(month=month, center_id=place.center_id).exists()
    run_id = (await started.json())["run_id"]

    async def done() -> bool:
        return (await BatchRun.get(id=run_id)).status is RunStatus.DONE

    await eventually(done, deadline_seconds=60)
    settlement = await Settlement.get(month=month, center_id=place.center_id)
    assert settlement.gross_krw == PRICE * 1000


async def test_two_monthly_runs_at_once_settle_the_month_once(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    day = seoul_day(175)
    month = rules.month_of(day)
    place = await open_place(client, sign_up)
    await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    await record_day(day, after(day))
    clock = first_of_next_month(day)
    first, second = await asyncio.gather(settle_month_run(month, clock),
                                         settle_month_run(month, clock))
    assert first.id == second.id
    assert (await BatchRun.get(id=first.id)).status is RunStatus.DONE
    assert await Settlement.filter(month=month, center_id=place.center_id).count() == 1
    assert await Notification.filter(user_id=place.owner.id,
                                     type="settlement.ready").count() == 1
