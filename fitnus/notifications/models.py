from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from fitnus.accounts.models import User

# A person's rows in id order: what each event stream reads after its cursor.
BY_PERSON = "notification_user_id_id"


class Notification(Model):
    """Every event for a user is a row, and its id is the SSE event id.

    ``dedupe_key`` makes sending idempotent: a retried actor finds the row it
    already wrote instead of writing a second one.
    """

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="notifications", on_delete=fields.CASCADE
    )
    type = fields.CharField(max_length=64)
    payload: dict[str, Any] = fields.JSONField()
    dedupe_key = fields.CharField(max_length=128)
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification"
        unique_together = (("user", "dedupe_key"),)
        indexes = (Index(fields=["user_id", "id"], name=BY_PERSON),)
