"""Argon2id password hashing. Hashing is CPU-bound (tens of ms by design), so
it runs in a thread and never blocks the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Verified against when the email is unknown, so a login for a missing account
# costs the same time as one with a wrong password (no account enumeration).
_ABSENT_ACCOUNT_PASSWORD = "fitnus-no-such-account"  # noqa: S105 - not a credential


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        self._absent_hash = self._hasher.hash(_ABSENT_ACCOUNT_PASSWORD)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(password_hash or self._absent_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None
