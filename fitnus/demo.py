"""Demo data for local runs: known accounts and ~200 centers around Seoul,
each with programs and sessions for the next 14 days. Loaded idempotently:
accounts are reset, centers that exist (by owner and name) are left alone."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fitnus.accounts.models import Role, User
from fitnus.accounts.passwords import Passwords
from fitnus.accounts.service import create_account
from fitnus.accounts.tokens import Principal
from fitnus.centers.models import Center
from fitnus.centers.service import (
    CenterDraft,
    ProgramDraft,
    create_center,
    create_program,
    create_timeslots,
)
from fitnus.clock import Clock


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    name: str
    role: Role


DEMO_ACCOUNTS = (
    DemoAccount("admin@demo.example.com", "admin-demo-pass", "운영자", Role.ADMIN),
    DemoAccount("owner1@demo.example.com", "owner-demo-pass", "김센터", Role.OWNER),
    DemoAccount("owner2@demo.example.com", "owner-demo-pass", "이헬스", Role.OWNER),
    DemoAccount("owner3@demo.example.com", "owner-demo-pass", "박요가", Role.OWNER),
    DemoAccount("user1@demo.example.com", "user-demo-pass", "최민수", Role.USER),
    DemoAccount("user2@demo.example.com", "user-demo-pass", "정서연", Role.USER),
    DemoAccount("user3@demo.example.com", "user-demo-pass", "강지훈", Role.USER),
)

# District, and its approximate centre (latitude, longitude).
SEOUL_DISTRICTS = (
    ("강남구", "강남", 37.5172, 127.0473), ("서초구", "서초", 37.4837, 127.0324),
    ("송파구", "잠실", 37.5145, 127.1059), ("마포구", "홍대", 37.5663, 126.9019),
    ("용산구", "이태원", 37.5326, 126.9905), ("성동구", "성수", 37.5634, 127.0369),
    ("광진구", "건대", 37.5385, 127.0823), ("종로구", "종로", 37.5735, 126.9790),
    ("중구", "을지로", 37.5641, 126.9979), ("영등포구", "여의도", 37.5264, 126.8962),
    ("관악구", "신림", 37.4784, 126.9516), ("동작구", "사당", 37.5124, 126.9393),
    ("강서구", "마곡", 37.5509, 126.8495), ("노원구", "노원", 37.6542, 127.0568),
    ("은평구", "연신내", 37.6027, 126.9291), ("서대문구", "신촌", 37.5791, 126.9368),
    ("성북구", "성신여대", 37.5894, 127.0167), ("강동구", "천호", 37.5301, 127.1238),
    ("양천구", "목동", 37.5170, 126.8665), ("구로구", "구로", 37.4954, 126.8874),
)

# Brand word, its sports, and its programs (name, sport, coupons, minutes).
CENTER_KINDS = (
    ("피트니스", ["gym", "crossfit"], [("자유 이용", "gym", 8, 120), ("크로스핏 WOD", "crossfit", 15, 60)]),
    ("요가원", ["yoga"], [("아침 빈야사", "yoga", 12, 60), ("저녁 하타 요가", "yoga", 12, 60)]),
    ("필라테스", ["pilates"], [("기구 필라테스", "pilates", 25, 50), ("매트 필라테스", "pilates", 15, 50)]),
    ("복싱짐", ["boxing", "gym"], [("복싱 기초", "boxing", 15, 60), ("스파링 클래스", "boxing", 18, 60)]),
    ("클라이밍", ["climbing"], [("볼더링 자유", "climbing", 18, 180), ("입문 강습", "climbing", 25, 90)]),
    ("수영장", ["swimming"], [("자유 수영", "swimming", 7, 60), ("성인 강습", "swimming", 15, 50)]),
    ("댄스 스튜디오", ["dance"], [("K-POP 댄스", "dance", 15, 60), ("스트릿 댄스", "dance", 15, 60)]),
    ("골프 아카데미", ["golf"], [("스크린 연습", "golf", 20, 60), ("레슨", "golf", 40, 50)]),
    ("테니스 클럽", ["tennis"], [("코트 이용", "tennis", 25, 60), ("그룹 레슨", "tennis", 30, 60)]),
    ("스피닝", ["spinning", "gym"], [("스피닝 클래스", "spinning", 12, 45), ("자유 이용", "gym", 8, 120)]),
    ("풋살파크", ["futsal"], [("픽업 풋살", "futsal", 10, 120), ("풋살 레슨", "futsal", 15, 90)]),
    ("배드민턴장", ["badminton"], [("자유 게임", "badminton", 8, 120), ("초급 레슨", "badminton", 12, 60)]),
)
PREFIXES = ("", "더", "뉴", "프라임", "올데이", "바디", "핏", "하이")
CENTERS_PER_DISTRICT = 10
SESSION_DAYS = 14
SESSION_HOURS = (7, 19)
DEMO_SEED = 20261124


async def load_demo_data(
    *, passwords: Passwords, clock: Clock, time_zone: ZoneInfo
) -> list[DemoAccount]:
    for account in DEMO_ACCOUNTS:
        await create_account(
            passwords=passwords, email=account.email, password=account.password,
            name=account.name, role=account.role,
        )
    owners = await User.filter(email__in=[a.email for a in DEMO_ACCOUNTS if a.role is Role.OWNER])
    await _load_centers(owners=owners, clock=clock, time_zone=time_zone)
    return list(DEMO_ACCOUNTS)


async def _no_index(center_id: int) -> None:
    """The demo loader reindexes everything at the end instead."""


async def _load_centers(*, owners: list[User], clock: Clock, time_zone: ZoneInfo) -> None:
    generator = random.Random(DEMO_SEED)  # noqa: S311 - demo data, not security
    first_day = (clock.now().astimezone(time_zone) + timedelta(days=1)).date()
    for district, area, latitude, longitude in SEOUL_DISTRICTS:
        for number in range(CENTERS_PER_DISTRICT):
            brand, sports, programs = CENTER_KINDS[(number + len(area)) % len(CENTER_KINDS)]
            prefix = PREFIXES[generator.randrange(len(PREFIXES))]
            name = f"{prefix}{area} {brand} {number + 1}호점".strip()
            owner = owners[number % len(owners)]
            point = (latitude + generator.uniform(-0.02, 0.02),
                     longitude + generator.uniform(-0.025, 0.025))
            # Drawn before the existence check, so a rerun draws the same sequence.
            street_number = generator.randrange(1, 300)
            phone = f"02-{generator.randrange(200, 999)}-{generator.randrange(1000, 9999)}"
            capacity = generator.choice((6, 10, 20, 30))
            if await Center.exists(owner_id=owner.id, name=name):
                continue
            principal = Principal(owner.id, owner.role)
            center = await create_center(
                principal=principal,
                draft=CenterDraft(
                    name=name, description=f"{district} {area}의 {brand}",
                    address=f"서울 {district} {area}로 {street_number}",
                    latitude=round(point[0], 6), longitude=round(point[1], 6), sports=sports,
                    phone=phone,
                    opens_at=time(6), closes_at=time(23),
                ),
                clock=clock, index_center=_no_index,
            )
            for (program_name, sport, coupons, minutes), hour in zip(
                programs, SESSION_HOURS, strict=True
            ):
                program = await create_program(
                    principal=principal, center_id=center.id, clock=clock,
                    draft=ProgramDraft(name=program_name, sport=sport, price_coupons=coupons,
                                       duration_minutes=minutes),
                )
                starts = [
                    datetime.combine(first_day + timedelta(days=day), time(hour),
                                     tzinfo=time_zone)
                    for day in range(SESSION_DAYS)
                ]
                await create_timeslots(
                    principal=principal, program_id=program.id, starts=starts,
                    capacity=capacity, clock=clock,
                )
