"""Each center sets how late a cancellation still earns coupons back; a booking
keeps the policy in force when it was made, and each person's first late
cancellation of a month is refunded in full anyway."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from tests.e2e.test_booking import PRICE, Session, fund, open_session, reserve

Client = TestClient[Any, Any]
HALF_UNDER_TWO_DAYS = {"full_refund_hours": 48, "partial_refund_hours": 12,
                       "partial_refund_percent": 50}


async def center_of(session: Session) -> int:
    timeslot = await Timeslot.get(id=session.timeslot_id).prefetch_related("program")
    return int(timeslot.program.center_id)  # type: ignore[attr-defined]


async def set_policy(client: Client, session: Session, **policy: Any) -> Any:
    return await client.put(f"/api/v1/centers/{await center_of(session)}/cancellation-policy",
                            json=policy, headers=session.owner.headers)


def hours_ahead(hours: float) -> str:
    return (system_clock.now() + timedelta(hours=hours)).replace(second=0,
                                                                 microsecond=0).isoformat()


async def booked(client: Client, sign_up: Any, session: Session, user: Any = None) -> Any:
    user = user or await sign_up()
    await fund(user.id, PRICE)
    response = await reserve(client, user, session.timeslot_id, Prefer="wait=8")
    assert response.status == 201, await response.text()
    return user, (await response.json())["id"]


async def cancel(client: Client, user: Any, reservation_id: int) -> dict[str, Any]:
    response = await client.delete(f"/api/v1/reservations/{reservation_id}",
                                   headers=user.headers)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_an_owner_sets_the_policy_and_anyone_reads_it(
    client: Client, sign_up: Any,
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    path = f"/api/v1/centers/{await center_of(session)}/cancellation-policy"
    assert await (await client.get(path)).json() == {
        "full_refund_hours": 24, "partial_refund_hours": None, "partial_refund_percent": None}
    response = await set_policy(client, session, **HALF_UNDER_TWO_DAYS)
    assert response.status == 200, await response.text()
    assert await (await client.get(path)).json() == HALF_UNDER_TWO_DAYS
    stranger = await sign_up("owner")
    assert (await client.put(path, json={"full_refund_hours": 1},
                             headers=stranger.headers)).status == 403
    assert (await client.get("/api/v1/centers/999999999/cancellation-policy")).status == 404


@pytest.mark.parametrize("policy", [
    {"full_refund_hours": 48, "partial_refund_hours": 12},
    {"full_refund_hours": 48, "partial_refund_percent": 50},
    {"full_refund_hours": 12, "partial_refund_hours": 12, "partial_refund_percent": 50},
    {"full_refund_hours": 48, "partial_refund_hours": 12, "partial_refund_percent": 100},
    {"full_refund_hours": -1},
    {"full_refund_hours": "a day"},
])
async def test_a_policy_that_cannot_be_is_400(
    client: Client, sign_up: Any, policy: dict[str, Any],
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    assert (await set_policy(client, session, **policy)).status == 400


async def test_full_notice_refunds_everything(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session = await open_session(client, sign_up, capacity=5, starts_at=hours_ahead(50))
    await set_policy(client, session, **HALF_UNDER_TWO_DAYS)
    user, reservation_id = await booked(client, sign_up, session)
    assert await cancel(client, user, reservation_id) == {
        "id": reservation_id, "status": "cancelled", "refunded_coupons": PRICE,
        "refund_reason": "policy_full"}


async def test_shorter_notice_refunds_the_partial_percentage(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session = await open_session(client, sign_up, capacity=5, starts_at=hours_ahead(30))
    await set_policy(client, session, **HALF_UNDER_TWO_DAYS)
    user, reservation_id = await booked(client, sign_up, session)
    answer = await cancel(client, user, reservation_id)
    assert (answer["refunded_coupons"], answer["refund_reason"]) == (PRICE // 2, "policy_partial")


async def test_the_first_late_cancellation_of_a_month_is_free_and_the_next_is_not(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    first = await open_session(client, sign_up, capacity=5, starts_at=hours_ahead(5))
    second = await open_session(client, sign_up, capacity=5, starts_at=hours_ahead(8))
    user, early_one = await booked(client, sign_up, first)
    _, late_one = await booked(client, sign_up, second, user)
    answer = await cancel(client, user, early_one)
    assert (answer["refunded_coupons"], answer["refund_reason"]) == (
        PRICE, "first_late_cancel_free")
    answer = await cancel(client, user, late_one)
    assert (answer["refunded_coupons"], answer["refund_reason"]) == (0, "late_no_refund")
    # Asking again tells the same story.
    assert (await cancel(client, user, early_one))["refund_reason"] == "first_late_cancel_free"


async def test_a_booking_keeps_the_policy_it_was_made_under(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session = await open_session(client, sign_up, capacity=5, starts_at=hours_ahead(30))
    user, reservation_id = await booked(client, sign_up, session)  # under the default 24 h
    await set_policy(client, session, **HALF_UNDER_TWO_DAYS)
    answer = await cancel(client, user, reservation_id)
    assert (answer["refunded_coupons"], answer["refund_reason"]) == (PRICE, "policy_full")
