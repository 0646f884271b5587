"""Clubs: a unique name, applications the leader decides, a member cap that
holds under concurrent acceptances, and never a club without a leader."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.clubs import service
from fitnus.clubs.models import Club, ClubMember
from fitnus.config import Settings
from fitnus.notifications.models import Notification
from tests.e2e.test_centers import admin_headers

Client = TestClient[Any, Any]


def club_body(**changes: Any) -> dict[str, Any]:
    body = {"name": "한강 러닝 크루", "description": "매주 토요일 아침", "sports": ["running"],
            "latitude": 37.5283, "longitude": 126.9326}
    body.update(changes)
    return body


async def new_club(client: Client, leader: Any, **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/clubs", json=club_body(**changes),
                                 headers=leader.headers)
    assert response.status == 201, await response.text()
    club: dict[str, Any] = await response.json()
    return club


def unique_name(label: str) -> str:
    import uuid

    return f"{label} {uuid.uuid4().hex[:8]}"


async def apply(client: Client, person: Any, club_id: int) -> Any:
    return await client.post(f"/api/v1/clubs/{club_id}/applications",
                             json={"message": "같이 뛰어요"}, headers=person.headers)


async def joined(client: Client, leader: Any, person: Any, club_id: int) -> None:
    application = await (await apply(client, person, club_id)).json()
    accepted = await client.post(
        f"/api/v1/clubs/{club_id}/applications/{application['id']}/accept",
        headers=leader.headers)
    assert accepted.status == 200, await accepted.text()


async def test_a_club_name_is_unique_however_it_is_cased_or_spaced(
    client: Client, sign_up: Any,
) -> None:
    leader = await sign_up()
    name = unique_name("Seoul Runners")
    club = await new_club(client, leader, name=name)
    assert (club["leader_id"], club["member_count"]) == (leader.id, 1)
    for variant in (name.upper(), f"  {name.lower()}  ", name.replace(" ", "   ")):
        response = await client.post("/api/v1/clubs", json=club_body(name=variant),
                                     headers=(await sign_up()).headers)
        assert (response.status, (await response.json())["code"]) == (409, "club_name_taken")
    renamed = await client.patch(f"/api/v1/clubs/{club['id']}", json={"name": name},
                                 headers=leader.headers)
    assert renamed.status == 200, await renamed.text()
    other = await new_club(client, leader, name=unique_name("Other"))
    clash = await client.patch(f"/api/v1/clubs/{other['id']}", json={"name": name.upper()},
                               headers=leader.headers)
    assert (clash.status, (await clash.json())["code"]) == (409, "club_name_taken")
    assert (await client.delete(f"/api/v1/clubs/{club['id']}",
                                headers=leader.headers)).status == 204
    assert (await client.get(f"/api/v1/clubs/{club['id']}")).status == 404
    await new_club(client, leader, name=name)  # a dissolved club lets its name go


async def test_the_leader_decides_applications_and_the_applicant_is_told(
    client: Client, sign_up: Any,
) -> None:
    leader, accepted, rejected = await sign_up(), await sign_up(), await sign_up()
    club = await new_club(client, leader, name=unique_name("Climbers"))
    first = await apply(client, accepted, club["id"])
    assert first.status == 201
    assert (await first.json())["status"] == "pending"
    again = await apply(client, accepted, club["id"])
    assert (again.status, (await again.json())["code"]) == (409, "already_applied")
    second = await (await apply(client, rejected, club["id"])).json()
    listed = await (await client.get(f"/api/v1/clubs/{club['id']}/applications?status=pending",
                                     headers=leader.headers)).json()
    assert len(listed["items"]) == 2
    assert (await client.get(f"/api/v1/clubs/{club['id']}/applications",
                             headers=accepted.headers)).status == 403
    path = f"/api/v1/clubs/{club['id']}/applications"
    yes = await client.post(f"{path}/{(await first.json())['id']}/accept", headers=leader.headers)
    assert (yes.status, (await yes.json())["status"]) == (200, "accepted")
    no = await client.post(f"{path}/{second['id']}/reject", headers=leader.headers)
    assert (await no.json())["status"] == "rejected"
    twice = await client.post(f"{path}/{second['id']}/accept", headers=leader.headers)
    assert (twice.status, (await twice.json())["code"]) == (409, "application_decided")
    for person, told in ((accepted, "club.application_accepted"),
                         (rejected, "club.application_rejected")):
        assert await Notification.filter(user_id=person.id, type=told).count() == 1
    assert await Notification.filter(user_id=leader.id,
                                     type="club.application_received").count() == 2
    member_again = await apply(client, accepted, club["id"])
    assert (await member_again.json())["code"] == "already_member"
    assert (await client.get(f"/api/v1/clubs/{club['id']}")).status == 200
    assert (await (await client.get(f"/api/v1/clubs/{club['id']}")).json())["member_count"] == 2


async def test_my_clubs_are_the_living_clubs_i_belong_to_with_my_role(
    client: Client, sign_up: Any,
) -> None:
    leader, member = await sign_up(), await sign_up(name="박지민")
    mine = await new_club(client, leader, name=unique_name("Mine"))
    other = await new_club(client, leader, name=unique_name("Other"))
    application = await (await apply(client, member, mine["id"])).json()
    assert application["applicant_name"] == "박지민"
    pending = await (await client.get(f"/api/v1/clubs/{mine['id']}/applications?status=pending",
                                      headers=leader.headers)).json()
    assert [item["applicant_name"] for item in pending["items"]] == ["박지민"]
    accepted = await client.post(
        f"/api/v1/clubs/{mine['id']}/applications/{application['id']}/accept",
        headers=leader.headers)
    assert (await accepted.json())["applicant_name"] == "박지민"

    async def my_clubs(person: Any, query: str = "") -> Any:
        response = await client.get(f"/api/v1/me/clubs{query}", headers=person.headers)
        assert response.status == 200, await response.text()
        return await response.json()

    listed = await my_clubs(member)
    assert [(club["id"], club["role"], club["member_count"]) for club in listed["items"]] == [
        (mine["id"], "member", 2)]
    first = await my_clubs(leader, "?limit=1")
    assert [club["id"] for club in first["items"]] == [mine["id"]]
    second = await my_clubs(leader, f"?limit=1&cursor={first['next_cursor']}")
    assert ([(club["id"], club["role"]) for club in second["items"]], second["next_cursor"]) == (
        [(other["id"], "leader")], None)
    assert (await client.delete(f"/api/v1/clubs/{other['id']}",
                                headers=leader.headers)).status == 204
    assert [club["id"] for club in (await my_clubs(leader))["items"]] == [mine["id"]]
    assert (await client.get("/api/v1/me/clubs")).status == 401


async def test_only_members_see_members_and_a_club_always_has_a_leader(
    client: Client, sign_up: Any,
) -> None:
    leader, member, stranger = await sign_up(), await sign_up(), await sign_up()
    club = await new_club(client, leader, name=unique_name("Swimmers"))
    await joined(client, leader, member, club["id"])
    members_path = f"/api/v1/clubs/{club['id']}/members"
    assert (await client.get(members_path, headers=stranger.headers)).status == 403
    roles = {item["user_id"]: item["role"] for item in
             (await (await client.get(members_path, headers=member.headers)).json())["items"]}
    assert roles == {leader.id: "leader", member.id: "member"}
    leaving = await client.delete(f"{members_path}/{leader.id}", headers=leader.headers)
    assert (leaving.status, (await leaving.json())["code"]) == (409, "leader_must_hand_over")
    # The target's membership is what counts, not the caller's.
    assert (await client.delete(f"{members_path}/{stranger.id}",
                                headers=leader.headers)).status == 404
    assert (await client.delete(f"{members_path}/{leader.id}",
                                headers=stranger.headers)).status == 403
    for not_a_member in (stranger.id, 2**62):
        refused = await client.post(f"/api/v1/clubs/{club['id']}/leader",
                                    json={"user_id": not_a_member}, headers=leader.headers)
        assert refused.status == 404, await refused.text()
    handed = await client.post(f"/api/v1/clubs/{club['id']}/leader",
                               json={"user_id": member.id}, headers=leader.headers)
    assert (handed.status, (await handed.json())["leader_id"]) == (200, member.id)
    assert (await client.delete(f"{members_path}/{leader.id}",
                                headers=leader.headers)).status == 204
    club_now = await (await client.get(f"/api/v1/clubs/{club['id']}")).json()
    assert (club_now["leader_id"], club_now["member_count"]) == (member.id, 1)


async def test_a_leader_removes_a_member_and_an_admin_dissolves_any_club(
    client: Client, sign_up: Any, settings: Settings,
) -> None:
    leader, member = await sign_up(), await sign_up()
    club = await new_club(client, leader, name=unique_name("Yogis"))
    await joined(client, leader, member, club["id"])
    assert (await client.delete(f"/api/v1/clubs/{club['id']}/members/{member.id}",
                                headers=leader.headers)).status == 204
    assert not await ClubMember.exists(club_id=club["id"], user_id=member.id)
    assert (await client.delete(f"/api/v1/clubs/{club['id']}",
                                headers=member.headers)).status == 403
    admin = await admin_headers(client, settings)
    assert (await client.delete(f"/api/v1/clubs/{club['id']}", headers=admin)).status == 204


async def test_clubs_are_found_by_name_sport_and_place(client: Client, sign_up: Any) -> None:
    leader = await sign_up()
    tag = unique_name("find")
    near = await new_club(client, leader, name=f"{tag} 여의도 러너스")
    far = await new_club(client, leader, name=f"{tag} 부산 러너스", latitude=35.1587,
                         longitude=129.1604)
    yoga = await new_club(client, leader, name=f"{tag} 요가", sports=["yoga"])

    async def found(query: str) -> list[int]:
        response = await client.get(f"/api/v1/clubs?q={tag.split()[1]}&{query}")
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]

    assert await found("") == [near["id"], far["id"], yoga["id"]]
    assert await found("sport=yoga") == [yoga["id"]]
    assert await found("lat=37.5283&lng=126.9326&radius_m=2000") == [near["id"], yoga["id"]]
    assert await found("lat=37.5283&lng=126.9326&radius_m=2000&sport=running") == [near["id"]]
    assert (await client.get("/api/v1/clubs?lat=37.5")).status == 400


@pytest.mark.parametrize("body", [
    club_body(name=""), club_body(sports=[]), club_body(sports=["chess"]),
    club_body(max_members=1), club_body(latitude=None), {"name": "x"},
])
async def test_clubs_that_cannot_be_are_400(
    client: Client, sign_up: Any, body: dict[str, Any],
) -> None:
    response = await client.post("/api/v1/clubs", json=body,
                                 headers=(await sign_up()).headers)
    assert response.status == 400, await response.text()


# --- The member cap under concurrent acceptances --------------------------------------

CAP, APPLICANTS = 10, 30


async def acceptance_storm(client: Client, sign_up: Any) -> tuple[int, int]:
    """30 applications to a club of 10 at most, accepted all at once; the
    members it ends with, by rows and by its count."""
    leader = await sign_up()
    club = await new_club(client, leader, name=unique_name("Capped"), max_members=CAP)
    applicants = await asyncio.gather(*(sign_up() for _ in range(APPLICANTS)))
    applications = [await (await apply(client, person, club["id"])).json()
                    for person in applicants]
    answers = await asyncio.gather(*(
        client.post(f"/api/v1/clubs/{club['id']}/applications/{application['id']}/accept",
                    headers=leader.headers)
        for application in applications
    ))
    assert {answer.status for answer in answers} <= {200, 409}
    return (await ClubMember.filter(club_id=club["id"]).count(),
            (await Club.get(id=club["id"])).member_count)


async def test_concurrent_acceptances_never_pass_the_member_cap(
    client: Client, sign_up: Any,
) -> None:
    assert await acceptance_storm(client, sign_up) == (CAP, CAP)


@pytest.mark.control
async def test_control_acceptances_counted_without_the_cap_in_the_update_pass_it(
    client: Client, sign_up: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def admit_whatever_the_count(club_id: int) -> bool:
        club = await Club.get(id=club_id)
        if club.max_members is not None and club.member_count >= club.max_members:
            return False
        await Club.filter(id=club_id).update(member_count=club.member_count + 1)
        return True

    monkeypatch.setattr(service, "_admit", admit_whatever_the_count)
    rows, _ = await acceptance_storm(client, sign_up)
    assert rows > CAP


# --- An edit while a member is admitted -----------------------------------------------


async def edit_while_a_member_is_admitted(client: Client, sign_up: Any) -> int:
    """An admission holds the club's row, its count raised but not committed,
    while the leader's edit arrives; the count the club ends with."""
    leader = await sign_up()
    club = await new_club(client, leader, name=unique_name("Edited"), max_members=CAP)
    async with in_transaction() as admission:
        await Club.filter(id=club["id"]).using_db(admission).update(
            member_count=F("member_count") + 1)
        edit = asyncio.create_task(client.patch(
            f"/api/v1/clubs/{club['id']}", json={"description": "new"}, headers=leader.headers))
        await asyncio.sleep(0.5)  # the edit has read the row, or waits to
        assert not edit.done()
    answer = await edit
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["description"] == "new"
    return (await Club.get(id=club["id"])).member_count


async def test_an_edit_never_undoes_a_member_admitted_meanwhile(
    client: Client, sign_up: Any,
) -> None:
    assert await edit_while_a_member_is_admitted(client, sign_up) == 2


@pytest.mark.control
async def test_control_an_edit_that_writes_back_the_row_it_read_undoes_it(
    client: Client, sign_up: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The edit as it was: the row read without a lock, and all of it saved."""
    club_by_id = service.club_by_id

    async def read_without_a_lock(club_id: int, *, locked: bool = False) -> Club:
        return await club_by_id(club_id)

    async def save_the_row_read(club: Club, columns: dict[str, object], *, now: Any) -> None:
        for name, value in columns.items():
            setattr(club, name, value)
        club.updated_at = now
        await club.save()

    monkeypatch.setattr(service, "club_by_id", read_without_a_lock)
    monkeypatch.setattr(service, "_save_changes", save_the_row_read)
    assert await edit_while_a_member_is_admitted(client, sign_up) == 1
