"""Demo data for local runs: known accounts, loaded idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from fitnus.accounts.models import Role
from fitnus.accounts.passwords import Passwords
from fitnus.accounts.service import create_account


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


async def load_demo_data(*, passwords: Passwords) -> list[DemoAccount]:
    for account in DEMO_ACCOUNTS:
        await create_account(
            passwords=passwords, email=account.email, password=account.password,
            name=account.name, role=account.role,
        )
    return list(DEMO_ACCOUNTS)
