from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import BaseModel, Field

from fitnus.accounts.tokens import Principal
from fitnus.db import ping
from fitnus.errors import Unavailable
from fitnus.events.models import EventOutbox
from fitnus.messages import no_worker_queues
from fitnus.operations import KEYED_KINDS, keyed_queue, queues_now
from web.auth import require_admin
from web.keys import CLOCK, DATABASE, KEYS, MESSAGES, METRICS, REDIS, SERVICE_GAUGES, SETTINGS
from web.routing import Api
from web.schemas import json

log = logging.getLogger(__name__)
api = Api()

READINESS_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str


@api.route("GET", "/healthz", tag="operations", summary="The process is up",
           responses={200: Health})
async def healthz(request: web.Request) -> web.Response:
    return json(Health(status="ok"))


@api.route("GET", "/readyz", tag="operations", summary="The database and Redis answer",
           responses={200: Health}, errors=(503,))
async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await ping(request.app[DATABASE])
            await request.app[REDIS].ping()
    except Exception as exc:
        # Readiness reports any failure of a dependency, whatever its type.
        log.warning("not ready: %r", exc)
        raise Unavailable("a dependency does not answer", code="not_ready") from exc
    return json(Health(status="ready"))


class ServiceGauges:
    """What the whole service looks like now (every web process reports the
    same: read them with max()), refreshed at each scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("fitnus_keyed_queue_depth", "Requests waiting in keyed queues",
                           ["kind"], registry=registry)
        self.set_aside = Gauge("fitnus_keyed_queue_set_aside",
                               "Requests set aside undecided after failing on every try",
                               ["kind"], registry=registry)
        self.oldest = Gauge("fitnus_keyed_queue_oldest_seconds",
                            "How long the oldest waiting request of a kind has waited",
                            ["kind"], registry=registry)
        self.backlog = Gauge("fitnus_event_outbox_backlog",
                             "Domain events committed and not yet published to Kafka",
                             registry=registry)
        self.stale = Gauge("fitnus_commands_pending_stale",
                           "Commands pending past the redrive delay", registry=registry)

    async def refresh(self, app: web.Application) -> None:
        settings = app[SETTINGS]
        queues = await queues_now(
            app[REDIS], app[KEYS], worker_queues=no_worker_queues,
            redrive_after=timedelta(seconds=settings.command_redrive_after_seconds),
            now=app[CLOCK].now())
        for kind in KEYED_KINDS:
            states = [state for state in queues.keyed if state.kind == kind]
            self.depth.labels(kind).set(sum(state.depth for state in states))
            self.set_aside.labels(kind).set(sum(state.set_aside for state in states))
            self.oldest.labels(kind).set(max(
                (state.oldest_age_s or 0.0 for state in states), default=0.0))
        self.backlog.set(await EventOutbox.all().count())
        self.stale.set(queues.pending_commands)


@api.route("GET", "/metrics", tag="operations", summary="Prometheus metrics",
           responses={200: "Prometheus text exposition"})
async def metrics(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await request.app[SERVICE_GAUGES].refresh(request.app)
    except Exception:
        # The process's own metrics still go out; the service's are as last read.
        log.warning("service gauges not refreshed", exc_info=True)
    return web.Response(
        body=generate_latest(request.app[METRICS]), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


class KeyedQueueOut(BaseModel):
    kind: str
    key: str
    depth: int
    oldest_age_s: float | None = Field(description="how long its first item has waited")
    lease_token: int | None = Field(description="the drainer's fencing token, if one holds it")
    lease_left_s: float | None = Field(description="time left on that lease")
    set_aside: int = Field(description="requests set aside undecided after failing on every "
                                       "try (their senders were told); the worker's error log "
                                       "has why")


class WorkerQueueOut(BaseModel):
    queue: str
    ready: int
    delayed: int
    dead: int
    oldest_age_s: float | None


class QueuesOut(BaseModel):
    keyed: list[KeyedQueueOut]
    dramatiq: list[WorkerQueueOut]
    pending_commands: int = Field(description="commands pending past the redrive delay")



@api.route("GET", "/api/v1/admin/queues", tag="operations",
           summary="Every keyed queue with items or a lease, the workers' queues, and "
                   "commands pending past the redrive delay (admins)",
           auth=True, responses={200: QueuesOut}, errors=(401, 403))
async def admin_queues(request: web.Request, *, principal: Principal) -> web.Response:
    require_admin(principal)
    settings = request.app[SETTINGS]
    queues = await queues_now(
        request.app[REDIS], request.app[KEYS], worker_queues=request.app[MESSAGES].worker_queues,
        redrive_after=timedelta(seconds=settings.command_redrive_after_seconds),
        now=request.app[CLOCK].now())
    return json(QueuesOut(
        keyed=[KeyedQueueOut(**vars(state)) for state in queues.keyed],
        dramatiq=[WorkerQueueOut(**vars(queue)) for queue in queues.workers],
        pending_commands=queues.pending_commands))


class QueuePath(BaseModel):
    kind: Literal["timeslot", "meetup", "auction"]
    key: int = Field(ge=1, le=2**63 - 1)


class Redriven(BaseModel):
    kind: str
    key: int
    depth: int


@api.route("POST", "/api/v1/admin/queues/{kind}/{key}/redrive", tag="operations",
           summary="Send a drain message for one keyed queue now (admins); safe at any time: "
                   "the lease and its fence make a second drainer harmless",
           path_params=QueuePath, auth=True, responses={202: Redriven}, errors=(401, 403, 404))
async def redrive_queue(request: web.Request, *, path: QueuePath,
                        principal: Principal) -> web.Response:
    require_admin(principal)
    depth = await keyed_queue(request.app[REDIS], request.app[KEYS], path.kind).length(path.key)
    await request.app[MESSAGES].drain(path.kind)(path.key)
    return json(Redriven(kind=path.kind, key=path.key, depth=depth), 202)
