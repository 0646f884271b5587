"""The workers' queues as operators see them, on either broker: depths,
dead letters listed and sent back to their queues."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from pika.exceptions import AMQPError

from fitnus.messages import WorkerQueue


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    died_at_ms: int
    message: dramatiq.Message  # type: ignore[type-arg]


def dead_queue(name: str) -> str:
    return dramatiq.common.xq_name(name)


def worker_queues(broker: dramatiq.Broker, names: list[str], *, now: float) -> list[WorkerQueue]:
    """Ready, delayed and dead-lettered messages of each queue; how long the
    oldest ready one has waited by ``now`` (POSIX seconds) where the broker
    can tell without taking it (Redis: yes, RabbitMQ: no). Blocking calls:
    run it on a thread."""
    if isinstance(broker, RabbitmqBroker):
        return [WorkerQueue(name, *_rabbitmq_counts(broker, name), oldest_age_s=None)
                for name in sorted(names)]
    redis_broker = cast(RedisBroker, broker)
    found = []
    for name in sorted(names):
        queue = f"{redis_broker.namespace}:{name}"
        with redis_broker.client.pipeline(transaction=False) as pipe:
            pipe.llen(queue)
            pipe.llen(dramatiq.common.dq_name(queue))
            pipe.zcard(dead_queue(queue))
            pipe.lindex(queue, 0)
            ready, delayed, dead, oldest = pipe.execute()
        age = None
        if oldest is not None:
            message = redis_broker.client.hget(f"{queue}.msgs", oldest)
            if message is not None:
                age = round(now - json.loads(cast(bytes, message))["message_timestamp"] / 1000, 3)
        found.append(WorkerQueue(name, int(ready), int(delayed), int(dead), age))
    return found


def _rabbitmq_counts(broker: RabbitmqBroker, queue: str) -> tuple[int, int, int]:
    """Ready, delayed, dead, on this thread's connection; a connection
    RabbitMQ dropped while idle is opened again, once."""
    try:
        return broker.get_queue_message_counts(queue)
    except AMQPError:
        del broker.connection  # closes this thread's connection; the next use opens one
        return broker.get_queue_message_counts(queue)


def dead_letters(broker: dramatiq.Broker, queues: list[str]) -> list[DeadLetter]:
    """Every dead-lettered message of these queues (both brokers keep them a week)."""
    if isinstance(broker, RabbitmqBroker):
        return [letter for queue in queues for letter, _ in _rabbitmq_dead(broker, queue,
                                                                          requeue=False)]
    return [letter for queue in queues for letter, _ in _redis_dead(cast(RedisBroker, broker),
                                                                   queue)]


def requeue_dead_letters(broker: dramatiq.Broker, queues: list[str]) -> int:
    """Every dead letter back on its queue, then out of the dead letters: a
    crash in between leaves a copy in both, which the idempotent actors
    decide once. The number sent back."""
    if isinstance(broker, RabbitmqBroker):
        return sum(1 for queue in queues for _ in _rabbitmq_dead(broker, queue, requeue=True))
    redis_broker = cast(RedisBroker, broker)
    sent = 0
    for queue in queues:
        dead = f"{redis_broker.namespace}:{dead_queue(queue)}"
        for letter, redis_id in _redis_dead(redis_broker, queue):
            broker.enqueue(letter.message)
            redis_broker.client.zrem(dead, redis_id)
            redis_broker.client.hdel(f"{dead}.msgs", redis_id)
            sent += 1
    return sent


def _redis_dead(broker: RedisBroker, queue: str) -> list[tuple[DeadLetter, bytes]]:
    """The queue's dead letters, each with the id the broker files it under
    (its own, not the message's)."""
    dead = f"{broker.namespace}:{dead_queue(queue)}"
    found = []
    entries = cast(list[tuple[bytes, float]], broker.client.zrange(dead, 0, -1, withscores=True))
    for redis_id, died_at in entries:
        data = cast(bytes | None, broker.client.hget(f"{dead}.msgs", redis_id))
        if data is None:
            continue
        message = dramatiq.Message.decode(data)
        found.append((DeadLetter(queue, message.message_id, message.actor_name, int(died_at),
                                 message), redis_id))
    return found


def _rabbitmq_dead(broker: RabbitmqBroker, queue: str, *,
                   requeue: bool) -> list[tuple[DeadLetter, Any]]:
    """Takes every message of the queue's dead-letter queue unacknowledged,
    then either sends each back to its queue and acknowledges it, or returns
    them all to the dead letters (``requeue`` False: only a look)."""
    _, _, dead = broker.get_queue_message_counts(queue)  # declares the queues too
    channel = broker.channel
    taken = []
    for _ in range(dead):
        method, properties, body = channel.basic_get(dead_queue(queue), auto_ack=False)
        if method is None:
            break
        message = dramatiq.Message.decode(body)
        taken.append((DeadLetter(queue, message.message_id, message.actor_name,
                                 _died_at_ms(properties), message), method.delivery_tag))
    for letter, tag in taken:
        if requeue:
            broker.enqueue(letter.message)
            channel.basic_ack(tag)
        else:
            channel.basic_nack(tag, requeue=True)
    return taken


def _died_at_ms(properties: Any) -> int:
    """When RabbitMQ dead-lettered the message (its first ``x-death`` entry)."""
    deaths = (properties.headers or {}).get("x-death") or [{}]
    died = deaths[0].get("time")
    return int(died.timestamp() * 1000) if died is not None else 0
