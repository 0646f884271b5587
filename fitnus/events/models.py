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
    # The drainer (its lease's token) that is sending it: a row still here
    # with one was sent by a drainer that died, and may be in the log already.
    sent_by = fields.BigIntField(null=True)

    class Meta:
        table = "event_outbox"
