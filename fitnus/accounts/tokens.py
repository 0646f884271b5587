"""Access tokens (JWT) and refresh tokens (opaque, stored hashed).

Only the configured algorithm is accepted when decoding: ``alg: none``, another
algorithm, another key, a tampered or expired token all fail the same way.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

from fitnus.accounts.models import Role
from fitnus.errors import NotAuthenticated

REFRESH_TOKEN_BYTES = 32
REQUIRED_CLAIMS = ["sub", "role", "iat", "exp", "jti", "iss", "aud"]
# Tokens verified lately, each kept until its own expiry: a client sends the
# same token with every request, and the signature check is most of the cost
# of authenticating one. Oldest first out beyond this many.
VERIFIED_TOKENS_KEPT = 20_000


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the access token says."""

    user_id: int
    role: Role


@dataclass(frozen=True, kw_only=True)
class AccessTokens:
    secret: str
    algorithm: str
    issuer: str
    audience: str
    ttl_seconds: int
    # JWT_PREVIOUS_SECRET: still accepted (never used to sign) during a rotation.
    previous_secret: str | None = field(default=None, repr=False)
    # token -> (who it names, its expiry in POSIX seconds); only tokens that verified.
    _verified: dict[str, tuple[Principal, float]] = field(
        default_factory=dict, compare=False, repr=False)

    def issue(self, *, user_id: int, role: Role, now: datetime) -> str:
        claims = {
            "sub": str(user_id),
            "role": role.value,
            "iat": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.audience,
        }
        return jwt.encode(claims, self.secret, algorithm=self.algorithm)

    def verify(self, token: str) -> Principal:
        """The same token string verified before and not expired since names
        the same principal: its signature is not checked again."""
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        principal, expires = self._decode(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        """Signed with the secret, or with the previous one while a rotation
        is under way: tokens issued before it stay good until they expire
        (one token lifetime), and every new one is signed with the new secret."""
        secrets_accepted = [self.secret, *([self.previous_secret] if self.previous_secret else [])]
        for n, secret in enumerate(secrets_accepted):
            try:
                claims = jwt.decode(token, secret, algorithms=[self.algorithm],
                                    audience=self.audience, issuer=self.issuer,
                                    options={"require": REQUIRED_CLAIMS})
                return (Principal(user_id=int(claims["sub"]), role=Role(claims["role"])),
                        float(claims["exp"]))
            except jwt.InvalidSignatureError as exc:
                if n == len(secrets_accepted) - 1:
                    raise NotAuthenticated("the access token is invalid or expired") from exc
            except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
                raise NotAuthenticated("the access token is invalid or expired") from exc
        raise AssertionError("unreachable: the last secret raises or returns")


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def refresh_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
