"""Account use cases: sign up, log in, refresh, log out, who am I."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fitnus.accounts.models import RefreshToken, Role, User
from fitnus.accounts.passwords import Passwords
from fitnus.accounts.throttle import LoginThrottle
from fitnus.accounts.tokens import AccessTokens, new_refresh_token, refresh_token_digest
from fitnus.clock import Clock
from fitnus.commands.models import Command
from fitnus.commands.service import Dispatch, open_command
from fitnus.errors import Conflict, InvalidInput, NotAuthenticated
from fitnus.wallet.service import open_wallet

SELF_SERVICE_ROLES = frozenset({Role.USER, Role.OWNER})
WELCOME_COMMAND = "send_welcome"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class SignedUp:
    user: User
    welcome: Command


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_account(
    *, passwords: Passwords, email: str, password: str, name: str, role: Role
) -> User:
    """Create the account, or reset its name, role and password if it exists.

    For operators (``fitnus users create-admin``) and demo data, not for signup.
    """
    password_hash = await passwords.hash(password)
    async with in_transaction():
        user, created = await User.get_or_create(
            email=normalize_email(email),
            defaults={"name": name, "role": role, "password_hash": password_hash},
        )
        if created:
            await open_wallet(user_id=user.id, now=user.created_at)
    if not created:
        user.name, user.role, user.password_hash = name, role, password_hash
        await user.save(update_fields=["name", "role", "password_hash"])
    return user


@dataclass(frozen=True, kw_only=True)
class Accounts:
    passwords: Passwords
    access_tokens: AccessTokens
    throttle: LoginThrottle
    refresh_ttl_seconds: int
    clock: Clock
    dispatch: Dispatch

    async def signup(self, *, email: str, password: str, name: str, role: Role) -> SignedUp:
        if role not in SELF_SERVICE_ROLES:
            raise InvalidInput("role must be user or owner", code="invalid_role")
        password_hash = await self.passwords.hash(password)
        try:
            async with in_transaction():
                user = await User.create(
                    email=normalize_email(email), name=name.strip(), role=role,
                    password_hash=password_hash,
                )
                await open_wallet(user_id=user.id, now=self.clock.now())
                welcome = await open_command(
                    user_id=user.id, kind=WELCOME_COMMAND, now=self.clock.now()
                )
        except IntegrityError as exc:
            raise Conflict("an account with this email exists", code="email_taken") from exc
        await self.dispatch(welcome)
        return SignedUp(user=user, welcome=welcome)

    async def login(self, *, email: str, password: str, address: str) -> TokenPair:
        email = normalize_email(email)
        await self.throttle.check(email=email, address=address)
        user = await User.get_or_none(email=email)
        if not await self.passwords.verify(user.password_hash if user else None, password):
            await self.throttle.record_failure(email=email, address=address)
            raise NotAuthenticated("wrong email or password", code="invalid_credentials")
        assert user is not None
        await self.throttle.record_success(email=email, address=address)
        return await self._issue(user, family=uuid.uuid4())

    async def sign_in(self, user: User) -> TokenPair:
        """A new session for someone another party vouched for (Kakao)."""
        return await self._issue(user, family=uuid.uuid4())

    async def refresh(self, *, refresh_token: str, reuse_grace_seconds: int = 0) -> TokenPair:
        """A new pair for a live refresh token, which is spent. A spent token
        presented again revokes its family, except within
        ``reuse_grace_seconds`` of its spending: then the holder most likely
        never received its successor (a browser navigated away mid-refresh),
        so the successor is revoked and a new pair issued in its place."""
        digest = refresh_token_digest(refresh_token)
        now = self.clock.now()
        async with in_transaction():
            spent = await RefreshToken.filter(
                token_hash=digest, spent_at=None, revoked_at=None, expires_at__gt=now
            ).update(spent_at=now)
            if spent == 1:
                token = await RefreshToken.get(token_hash=digest).select_related("user")
                return await self._issue(token.user, family=token.family)
            reused = await RefreshToken.get_or_none(
                token_hash=digest, spent_at__isnull=False).select_related("user")
            if (reused is not None and reused.revoked_at is None and reused.spent_at is not None
                    and now - reused.spent_at < timedelta(seconds=reuse_grace_seconds)):
                await RefreshToken.filter(family=reused.family, spent_at=None,
                                          revoked_at=None).update(revoked_at=now)
                return await self._issue(reused.user, family=reused.family)
        if reused is not None:
            # A spent token presented again means one of its holders is a thief:
            # end the whole family, so neither holder can go on refreshing.
            await self._revoke_family(reused.family)
        raise NotAuthenticated("the refresh token is invalid", code="invalid_refresh_token")

    async def logout(self, *, user_id: int, refresh_token: str) -> None:
        token = await RefreshToken.get_or_none(
            token_hash=refresh_token_digest(refresh_token), user_id=user_id
        )
        if token is not None:
            await self._revoke_family(token.family)

    async def user(self, user_id: int) -> User:
        user = await User.get_or_none(id=user_id)
        if user is None:
            raise NotAuthenticated("the account no longer exists", code="not_authenticated")
        return user

    async def _issue(self, user: User, *, family: uuid.UUID) -> TokenPair:
        now = self.clock.now()
        refresh_token = new_refresh_token()
        await RefreshToken.create(
            user_id=user.id,
            family=family,
            token_hash=refresh_token_digest(refresh_token),
            created_at=now,
            expires_at=now + timedelta(seconds=self.refresh_ttl_seconds),
        )
        return TokenPair(
            access_token=self.access_tokens.issue(user_id=user.id, role=user.role, now=now),
            refresh_token=refresh_token,
            expires_in=self.access_tokens.ttl_seconds,
        )

    async def _revoke_family(self, family: uuid.UUID) -> None:
        await RefreshToken.filter(family=family, revoked_at=None).update(
            revoked_at=self.clock.now()
        )


async def prune_refresh_tokens(*, now: datetime) -> int:
    """Refresh tokens past their expiry, deleted: none of them can be spent
    again, and each page a browser opens issues one (/api/v1/session/refresh)."""
    return await RefreshToken.filter(expires_at__lt=now).delete()
