from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    USER = "user"
    OWNER = "owner"
    ADMIN = "admin"


# No semicolons in model docstrings: they become table comments, and tortoise's
# SQLite migration runner splits statements on them.


class User(Model):
    id = fields.BigIntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=100)
    role = fields.CharEnumField(Role, max_length=16)
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user"


class RefreshToken(Model):
    """One issued refresh token. Rotation spends it, reuse revokes its family.

    Only a SHA-256 of the token is stored, so a database leak yields no usable
    token.
    """

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    family = fields.UUIDField(db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    spent_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_token"


class KakaoLink(Model):
    """The Kakao account that signs in to this one, by Kakao's user id: one
    each way. Never matched by email."""

    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "fitnus.User", related_name="kakao_link", on_delete=fields.CASCADE
    )
    kakao_id = fields.CharField(max_length=32, unique=True)
    linked_at = fields.DatetimeField()

    class Meta:
        table = "kakao_link"
