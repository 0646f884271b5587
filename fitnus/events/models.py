from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class EventOutbox(Model):
    """Domain events committed and not yet on Kafka, in the order they happened.

    Written in the transaction of what they announce, so an event that
    rolled back is never announced. The outbox drainer publishes them in id
    order and deletes them (fitnus.events.outbox)."""

    id = fields.BigIntField(primary_key=True)
    topic = fields.CharField(max_length=64)
    key = fields.CharField(max_length=64)
    payload: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField()
    # Set just before the rows go to the broker: a row still here with it set
    # was sent by a drainer that died, and may be in the log already.
    sending_since = fields.DatetimeField(null=True)

    class Meta:
        table = "event_outbox"
