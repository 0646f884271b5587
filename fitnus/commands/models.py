from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User


class CommandStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Command(Model):
    """The status record of one asynchronous command, visible to its sender."""

    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="commands", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=64)
    status = fields.CharEnumField(CommandStatus, max_length=16, default=CommandStatus.PENDING)
    result: dict[str, Any] | None = fields.JSONField(null=True)
    error: dict[str, str] | None = fields.JSONField(null=True)
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "command"
        indexes = (("status", "created_at"),)
