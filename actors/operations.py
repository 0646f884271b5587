"""Dramatiq's dead letters, listed and sent back to their queues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import dramatiq
from dramatiq.brokers.redis import RedisBroker


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    died_at_ms: int
    message: dramatiq.Message  # type: ignore[type-arg]


def dead_letters(broker: RedisBroker, queues: list[str]) -> list[DeadLetter]:
    """Every dead-lettered message of these queues (dramatiq keeps them a week)."""
    found = []
    for queue in queues:
        dead = f"{broker.namespace}:{queue}.XQ"
        entries = cast(list[tuple[bytes, float]],
                       broker.client.zrange(dead, 0, -1, withscores=True))
        for raw_id, died_at in entries:
            data = cast(bytes | None, broker.client.hget(f"{dead}.msgs", raw_id))
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            found.append(DeadLetter(queue, message.message_id, message.actor_name,
                                    int(died_at), message))
    return found


def requeue(broker: RedisBroker, letter: DeadLetter) -> None:
    """Back on its queue, then out of the dead letters: a crash in between
    leaves a copy in both, which the idempotent actors decide once."""
    broker.enqueue(letter.message)
    dead = f"{broker.namespace}:{letter.queue}.XQ"
    broker.client.zrem(dead, letter.message_id)
    broker.client.hdel(f"{dead}.msgs", letter.message_id)
