"""Centers, programs and timeslots over HTTP: who may change what, what is valid."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fitnus.accounts.models import Role
from fitnus.accounts.passwords import Passwords
from fitnus.accounts.service import create_account
from fitnus.centers.models import Timeslot
from tests.conftest import TEST_PASSWORD, unique_email

Client = TestClient[Any, Any]


def center_body(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "강남 바디핏", "description": "24시간 헬스장", "address": "서울 강남구 테헤란로 1",
        "latitude": 37.4979, "longitude": 127.0276, "sports": ["gym", "yoga"],
        "phone": "02-555-0100", "opens_at": "06:00:00", "closes_at": "23:00:00",
    }
    body.update(changes)
    return body


def program_body(**changes: Any) -> dict[str, Any]:
    body = {"name": "아침 요가", "sport": "yoga", "price_coupons": 12, "duration_minutes": 60}
    body.update(changes)
    return body


def monday(weeks_ahead: int) -> date:
    """A Monday a few weeks out: inside the publishing horizon whenever the suite runs."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


def in_days(days: float, hour: int = 10) -> str:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return start.isoformat()


async def new_center(client: Client, owner: Any, **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/centers", json=center_body(**changes),
                                 headers=owner.headers)
    assert response.status == 201, await response.text()
    center: dict[str, Any] = await response.json()
    return center


async def new_program(client: Client, owner: Any, center_id: int, **changes: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/centers/{center_id}/programs",
                                 json=program_body(**changes), headers=owner.headers)
    assert response.status == 201, await response.text()
    program: dict[str, Any] = await response.json()
    return program


@dataclass
class Admin:
    email: str
    name: str
    headers: dict[str, str]


async def admin_account(client: Client) -> Admin:
    """An admin (made as `fitnus users create-admin` makes one), signed in."""
    email, name = unique_email("admin"), "관리자"
    await create_account(
        passwords=Passwords(time_cost=1, memory_kib=1024), email=email, password=TEST_PASSWORD,
        name=name, role=Role.ADMIN,
    )
    response = await client.post("/api/v1/auth/login",
                                 json={"email": email, "password": TEST_PASSWORD})
    assert response.status == 200, await response.text()
    return Admin(email, name,
                 {"Authorization": f"Bearer {(await response.json())['access_token']}"})


async def admin_headers(client: Client, settings: Any) -> dict[str, str]:
    return (await admin_account(client)).headers


@pytest.mark.portable
async def test_an_owner_publishes_a_center_anyone_can_read(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    assert center["owner_id"] == owner.id
    assert center["name"] == "강남 바디핏"
    assert center["opens_at"] == "06:00:00"
    response = await client.get(f"/api/v1/centers/{center['id']}")
    assert response.status == 200
    assert (await response.json())["sports"] == ["gym", "yoga"]


async def test_users_and_strangers_cannot_create_centers(client: Client, sign_up: Any) -> None:
    user = await sign_up("user")
    refused = await client.post("/api/v1/centers", json=center_body(), headers=user.headers)
    assert refused.status == 403
    assert (await refused.json())["code"] == "owner_role_required"
    assert (await client.post("/api/v1/centers", json=center_body())).status == 401


@pytest.mark.parametrize(
    "changes",
    [{"latitude": 90.0001}, {"latitude": -91}, {"longitude": 180.5}, {"longitude": -181},
     {"sports": []}, {"sports": ["chess"]}, {"sports": ["gym", "gym"]}, {"name": ""},
     {"latitude": "37.5"}, {"phone": "call me"}, {"opens_at": "25:00"}],
)
async def test_invalid_centers_are_400(client: Client, sign_up: Any, changes: Any) -> None:
    owner = await sign_up("owner")
    response = await client.post("/api/v1/centers", json=center_body(**changes),
                                 headers=owner.headers)
    assert response.status == 400
    assert (await response.json())["errors"]


# Opening hours are the center's local wall-clock times: a zone offset or a
# fraction of a second means something the contract does not take.
NOT_LOCAL_TIMES = ["00:00:00Z", "03:43:47.334Z", "06:00+09:00", "06:00:00.5", "6:00", "24:00",
                   "06:00:60", 600]


@pytest.mark.parametrize("value", NOT_LOCAL_TIMES)
@pytest.mark.parametrize("field", ["opens_at", "closes_at"])
async def test_opening_hours_other_than_local_times_are_400(
    client: Client, sign_up: Any, field: str, value: Any
) -> None:
    owner = await sign_up("owner")
    created = await client.post("/api/v1/centers", json=center_body(**{field: value}),
                                headers=owner.headers)
    assert created.status == 400, await created.text()
    assert [error["field"] for error in (await created.json())["errors"]] == [field]
    center = await new_center(client, owner)
    changed = await client.patch(f"/api/v1/centers/{center['id']}", json={field: value},
                                 headers=owner.headers)
    assert changed.status == 400, await changed.text()


@pytest.mark.portable
async def test_opening_hours_are_taken_as_hh_mm_and_answered_as_hh_mm_ss(
    client: Client, sign_up: Any
) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner, opens_at="06:30", closes_at="22:00:00")
    assert (center["opens_at"], center["closes_at"]) == ("06:30:00", "22:00:00")
    response = await client.patch(f"/api/v1/centers/{center['id']}",
                                  json={"opens_at": "00:00", "closes_at": "23:59"},
                                  headers=owner.headers)
    assert response.status == 200, await response.text()
    read = await (await client.get(f"/api/v1/centers/{center['id']}")).json()
    assert (read["opens_at"], read["closes_at"]) == ("00:00:00", "23:59:00")


async def test_coordinates_at_the_limits_are_accepted(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    for latitude, longitude in ((90, 180), (-90, -180), (0, 0)):
        await new_center(client, owner, latitude=latitude, longitude=longitude)


async def test_an_owner_cannot_touch_another_owners_center(client: Client, sign_up: Any) -> None:
    alice, bob = await sign_up("owner"), await sign_up("owner")
    center = await new_center(client, alice)
    program = await new_program(client, alice, center["id"])
    path = f"/api/v1/centers/{center['id']}"
    attempts = [
        client.patch(path, json={"name": "탈취"}, headers=bob.headers),
        client.delete(path, headers=bob.headers),
        client.post(f"{path}/programs", json=program_body(), headers=bob.headers),
        client.post(f"/api/v1/programs/{program['id']}/timeslots",
                    json={"starts_at": in_days(3), "capacity": 5}, headers=bob.headers),
        client.post(f"/api/v1/programs/{program['id']}/timeslots/weekly",
                    json={"weekdays": [1], "times": ["07:00"], "from_date": str(monday(2)),
                          "to_date": str(monday(6)), "capacity": 5}, headers=bob.headers),
    ]
    for response in await asyncio.gather(*attempts):
        assert response.status == 403
        assert (await response.json())["code"] == "not_center_owner"
    assert (await (await client.get(path)).json())["name"] == "강남 바디핏"


async def test_a_user_cannot_create_programs_or_timeslots(client: Client, sign_up: Any) -> None:
    owner, user = await sign_up("owner"), await sign_up("user")
    center = await new_center(client, owner)
    program = await new_program(client, owner, center["id"])
    program_attempt = await client.post(f"/api/v1/centers/{center['id']}/programs",
                                        json=program_body(), headers=user.headers)
    timeslot_attempt = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                         json={"starts_at": in_days(2), "capacity": 3},
                                         headers=user.headers)
    assert program_attempt.status == timeslot_attempt.status == 403


async def test_an_admin_may_change_any_center(
    client: Client, sign_up: Any, settings: Any
) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    response = await client.patch(f"/api/v1/centers/{center['id']}", json={"name": "운영자 수정"},
                                  headers=await admin_headers(client, settings))
    assert response.status == 200
    assert (await response.json())["name"] == "운영자 수정"


async def test_patch_refuses_nulls_for_required_fields(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    response = await client.patch(f"/api/v1/centers/{center['id']}", json={"name": None},
                                  headers=owner.headers)
    assert response.status == 400


@pytest.mark.portable
async def test_a_deleted_center_is_gone(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    path = f"/api/v1/centers/{center['id']}"
    assert (await client.delete(path, headers=owner.headers)).status == 204
    assert (await client.get(path)).status == 404
    assert (await client.get(f"{path}/programs")).status == 404
    assert (await client.delete(path, headers=owner.headers)).status == 404


@pytest.mark.parametrize(
    ("changes", "code"),
    [({"sport": "boxing"}, "sport_not_offered"), ({"price_coupons": 1001}, "validation_failed"),
     ({"price_coupons": -1}, "validation_failed"), ({"duration_minutes": 9}, "validation_failed"),
     ({"duration_minutes": 601}, "validation_failed"), ({"sport": "chess"}, "validation_failed")],
)
async def test_invalid_programs_are_400(
    client: Client, sign_up: Any, changes: Any, code: str
) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    response = await client.post(f"/api/v1/centers/{center['id']}/programs",
                                 json=program_body(**changes), headers=owner.headers)
    assert response.status == 400
    assert (await response.json())["code"] == code


@pytest.mark.portable
async def test_a_timeslot_shows_reserved_and_remaining(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    program = await new_program(client, owner, center["id"], duration_minutes=50)
    response = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                 json={"starts_at": in_days(2), "capacity": 20},
                                 headers=owner.headers)
    assert response.status == 201
    timeslot = await response.json()
    assert (timeslot["capacity"], timeslot["reserved"], timeslot["remaining"]) == (20, 0, 20)
    starts = datetime.fromisoformat(timeslot["starts_at"])
    assert datetime.fromisoformat(timeslot["ends_at"]) - starts == timedelta(minutes=50)
    assert starts.utcoffset() == timedelta(hours=9)
    fetched = await (await client.get(f"/api/v1/timeslots/{timeslot['id']}")).json()
    assert fetched == timeslot


@pytest.mark.parametrize(
    "body",
    [{"starts_at": "2020-01-01T10:00:00+09:00", "capacity": 5},
     {"starts_at": "2099-01-01T10:00:00", "capacity": 5},
     {"starts_at": "2099-01-01T10:00:00+09:00", "capacity": 0},
     {"starts_at": "2099-01-01T10:00:00+09:00", "capacity": 10_001},
     {"starts_at": "9999-12-31T23:00:00+00:00", "capacity": 5},
     {"starts_at": "0001-01-01T00:12:18+01:00", "capacity": 1}],
)
async def test_invalid_timeslots_are_400(client: Client, sign_up: Any, body: Any) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    response = await client.post(f"/api/v1/programs/{program['id']}/timeslots", json=body,
                                 headers=owner.headers)
    assert response.status == 400


async def test_overlapping_timeslots_are_409_unless_parallel(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    serial = await new_program(client, owner, center["id"], duration_minutes=60)
    parallel = await new_program(client, owner, center["id"], name="자유 운동", sport="gym",
                                 parallel_sessions=True)
    for program, expected in ((serial, 409), (parallel, 201)):
        path = f"/api/v1/programs/{program['id']}/timeslots"
        first = await client.post(path, json={"starts_at": in_days(4, 10), "capacity": 5},
                                  headers=owner.headers)
        assert first.status == 201
        half_past = in_days(4, 10).replace(":00:00", ":30:00", 1)
        second = await client.post(path, json={"starts_at": half_past, "capacity": 5},
                                   headers=owner.headers)
        assert second.status == expected
    back_to_back = await client.post(
        f"/api/v1/programs/{serial['id']}/timeslots",
        json={"starts_at": in_days(4, 11), "capacity": 5}, headers=owner.headers,
    )
    assert back_to_back.status == 201


async def test_concurrent_overlapping_timeslots_admit_one(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    path = f"/api/v1/programs/{program['id']}/timeslots"
    responses = await asyncio.gather(*(
        client.post(path, json={"starts_at": in_days(5, 9).replace(":00:00", f":{m:02d}:00", 1),
                                "capacity": 5}, headers=owner.headers)
        for m in range(0, 50, 5)
    ))
    assert sorted(response.status for response in responses).count(201) == 1
    assert await Timeslot.filter(program_id=program["id"]).count() == 1


async def test_a_weekly_pattern_opens_every_session_at_once(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    first_monday = monday(3)
    response = await client.post(
        f"/api/v1/programs/{program['id']}/timeslots/weekly",
        json={"weekdays": [1, 3, 5], "times": ["07:00", "19:30"],
              "from_date": str(first_monday), "to_date": str(first_monday + timedelta(days=27)),
              "capacity": 12},
        headers=owner.headers,
    )
    assert response.status == 201
    items = (await response.json())["items"]
    assert len(items) == 4 * 3 * 2  # four weeks, three days, two sessions
    first = datetime.fromisoformat(items[0]["starts_at"])
    assert (first.isoweekday(), first.hour, first.minute) == (1, 7, 0)
    assert first.utcoffset() == timedelta(hours=9)
    clash = await client.post(
        f"/api/v1/programs/{program['id']}/timeslots/weekly",
        json={"weekdays": [1, 2], "times": ["07:30"], "from_date": str(first_monday),
              "to_date": str(first_monday + timedelta(days=1)), "capacity": 12},
        headers=owner.headers,
    )
    assert clash.status == 409
    assert await Timeslot.filter(program_id=program["id"]).count() == 24


@pytest.mark.parametrize(
    "pattern",
    [{"weekdays": [8], "times": ["07:00"], "from_date": "2030-01-01", "to_date": "2030-01-31"},
     {"weekdays": [1], "times": ["07:00"], "from_date": "2030-02-01", "to_date": "2030-01-01"},
     {"weekdays": [1], "times": ["07:00"], "from_date": "2030-01-01", "to_date": "2031-06-01"},
     {"weekdays": [2], "times": ["07:00"], "from_date": "2030-01-07", "to_date": "2030-01-07"}],
)
async def test_invalid_weekly_patterns_are_400(
    client: Client, sign_up: Any, pattern: Any
) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    response = await client.post(f"/api/v1/programs/{program['id']}/timeslots/weekly",
                                 json={**pattern, "capacity": 5}, headers=owner.headers)
    assert response.status == 400


@pytest.mark.parametrize("start", ["07:00Z", "07:00+09:00", "07:00:00.5"])
async def test_weekly_start_times_other_than_local_times_are_400(
    client: Client, sign_up: Any, start: str
) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    response = await client.post(
        f"/api/v1/programs/{program['id']}/timeslots/weekly",
        json={"weekdays": [1], "times": [start], "from_date": str(monday(2)),
              "to_date": str(monday(3)), "capacity": 5},
        headers=owner.headers,
    )
    assert response.status == 400, await response.text()
    assert [error["field"] for error in (await response.json())["errors"]] == ["times.0"]
    assert await Timeslot.filter(program_id=program["id"]).count() == 0


async def starts_page_by_page(client: Client, url: str) -> list[str]:
    """Every timeslot's start, following the cursor to the last page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = await (await client.get(url + (f"&cursor={cursor}" if cursor else ""))).json()
        seen += [item["starts_at"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_timeslots_list_by_range_in_pages(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    start = monday(2)
    created = await client.post(
        f"/api/v1/programs/{program['id']}/timeslots/weekly",
        json={"weekdays": [1, 2, 3, 4, 5, 6, 7], "times": ["08:00"], "from_date": str(start),
              "to_date": str(start + timedelta(days=30)), "capacity": 3},
        headers=owner.headers,
    )
    assert created.status == 201
    window_from, window_to = start + timedelta(days=9), start + timedelta(days=19)
    seen = await starts_page_by_page(
        client, f"/api/v1/programs/{program['id']}/timeslots?limit=4"
                f"&from={window_from}T00:00:00%2B09:00&to={window_to}T00:00:00%2B09:00")
    assert len(seen) == 10
    assert seen == sorted(set(seen))
    assert seen[0].startswith(f"{window_from}T08:00")


async def test_timeslots_created_out_of_start_order_all_appear_in_pages(
    client: Client, sign_up: Any
) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"])
    # Later sessions first: ids no longer follow starts.
    for days in (9, 8, 7, 6, 5, 4):
        created = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                    json={"starts_at": in_days(days), "capacity": 2},
                                    headers=owner.headers)
        assert created.status == 201, await created.text()
    seen = await starts_page_by_page(
        client, f"/api/v1/programs/{program['id']}/timeslots?limit=2")
    assert len(seen) == 6
    assert seen == sorted(seen)


async def test_programs_list_in_pages(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    for n in range(5):
        await new_program(client, owner, center["id"], name=f"요가 {n}")
    first = await (await client.get(f"/api/v1/centers/{center['id']}/programs?limit=3")).json()
    second = await (await client.get(
        f"/api/v1/centers/{center['id']}/programs?limit=3&cursor={first['next_cursor']}"
    )).json()
    names = [item["name"] for item in first["items"] + second["items"]]
    assert names == [f"요가 {n}" for n in range(5)]
    assert second["next_cursor"] is None


async def test_an_owner_lists_their_own_centers_only(client: Client, sign_up: Any) -> None:
    owner, other = await sign_up("owner"), await sign_up("owner")
    mine = [await new_center(client, owner, name=f"내 센터 {n}") for n in range(3)]
    await new_center(client, other, name="남의 센터")
    closed = await new_center(client, owner, name="문 닫은 센터")
    assert (await client.delete(f"/api/v1/centers/{closed['id']}",
                                headers=owner.headers)).status == 204
    first = await (await client.get("/api/v1/owner/centers?limit=2",
                                    headers=owner.headers)).json()
    second = await (await client.get(
        f"/api/v1/owner/centers?limit=2&cursor={first['next_cursor']}", headers=owner.headers
    )).json()
    assert [c["id"] for c in first["items"] + second["items"]] == [c["id"] for c in mine]
    assert second["next_cursor"] is None
    user = await sign_up("user")
    refused = await client.get("/api/v1/owner/centers", headers=user.headers)
    assert (refused.status, (await refused.json())["code"]) == (403, "owner_role_required")
    assert (await client.get("/api/v1/owner/centers")).status == 401


@pytest.mark.parametrize("path", ["/api/v1/centers/0", "/api/v1/centers/abc",
                                  "/api/v1/programs/999999999/timeslots",
                                  "/api/v1/timeslots/99999999999999999999"])
async def test_unknown_or_malformed_ids_are_404(client: Client, path: str) -> None:
    assert (await client.get(path)).status == 404


async def test_a_bad_cursor_is_400(client: Client, sign_up: Any) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner)
    response = await client.get(f"/api/v1/centers/{center['id']}/programs?cursor=bm9wZQ")
    assert response.status == 400
    assert (await response.json())["code"] == "invalid_cursor"
