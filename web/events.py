"""Notifications: the list, read marks, and the SSE stream.

The stream replays rows after the client's last event id, then waits on the
user's doorbell (Redis pub/sub) and reads rows after the last id it sent. The
doorbell is watched before the first read, a ring during a read is kept for
the next, and rows are the only payload, so there is no gap and no duplicate
at the seam, on any instance.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from fitnus.accounts.tokens import Principal
from fitnus.errors import InvalidInput
from fitnus.notifications.reads import CoalescedReads, Row
from fitnus.notifications.service import (
    StoredNotification,
    latest_notification_id,
    mark_read,
    notifications_after,
)
from fitnus.pubsub import ChannelListener
from web.auth import authenticate
from web.keys import (
    CLOCK,
    DOORBELLS,
    NEW_ROWS,
    STREAM_EVENTS,
    STREAMS,
    TICKETS,
    service_zone,
)
from web.routing import Api
from web.schemas import json as json_response

log = logging.getLogger(__name__)
api = Api()

RETRY_MS = 3_000


class NotificationOut(BaseModel):
    id: int
    type: str
    payload: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: None = None


class NotificationQuery(BaseModel):
    after_id: int = Field(default=0, ge=0, le=2**63 - 1)
    limit: int = Field(default=20, ge=1, le=100)


class NotificationPath(BaseModel):
    notification_id: int = Field(ge=1, le=2**63 - 1)


class TicketOut(BaseModel):
    ticket: str
    expires_in: int
    latest_event_id: int = Field(description="your newest event's id (0 for none): "
                                             "?last_event_id= for a screen that needs "
                                             "only what comes next")


class StreamQuery(BaseModel):
    ticket: Annotated[str, StringConstraints(max_length=100)] | None = None
    last_event_id: int | None = Field(default=None, ge=0, le=2**63 - 1)


@api.route("GET", "/api/v1/notifications", tag="notifications",
           summary="Your notifications after an id, oldest first", query=NotificationQuery,
           auth=True, responses={200: NotificationPage}, errors=(400, 401))
async def list_notifications(
    request: web.Request, *, query: NotificationQuery, principal: Principal
) -> web.Response:
    zone = service_zone(request)
    rows = await notifications_after(principal.user_id, after_id=query.after_id,
                                     limit=query.limit)
    return json_response(NotificationPage(items=[
        NotificationOut(id=row.id, type=row.type, payload=row.payload,
                        created_at=row.created_at.astimezone(zone),
                        read_at=row.read_at.astimezone(zone) if row.read_at else None)
        for row in rows
    ]))


@api.route("POST", "/api/v1/notifications/{notification_id}/read", tag="notifications",
           summary="Mark a notification read", path_params=NotificationPath, auth=True,
           responses={204: None}, errors=(401, 404))
async def read_notification(
    request: web.Request, *, path: NotificationPath, principal: Principal
) -> web.Response:
    await mark_read(user_id=principal.user_id, notification_id=path.notification_id,
                    now=request.app[CLOCK].now())
    return web.Response(status=204)


@api.route("POST", "/api/v1/events/tickets", tag="notifications",
           summary="A single-use, short-lived ticket for EventSource (?ticket=)", auth=True,
           responses={201: TicketOut}, errors=(401,))
async def new_ticket(request: web.Request, *, principal: Principal) -> web.Response:
    tickets = request.app[TICKETS]
    return json_response(TicketOut(ticket=await tickets.issue(principal.user_id),
                                   expires_in=tickets.ttl_seconds,
                                   latest_event_id=await latest_notification_id(
                                       principal.user_id)), 201)


@api.route("GET", "/api/v1/events", tag="notifications",
           summary="Your events as text/event-stream (Bearer header or ?ticket=); resumes "
                   "after Last-Event-ID, or ?last_event_id= when no header is sent",
           query=StreamQuery, responses={200: "text/event-stream"}, errors=(400, 401))
async def stream_events(request: web.Request, *, query: StreamQuery) -> web.StreamResponse:
    cursor = last_event_id(request, query.last_event_id)
    if query.ticket is not None:
        user_id = await request.app[TICKETS].redeem(query.ticket)
    else:
        user_id = authenticate(request).user_id
    return await serve_stream(request, doorbells=request.app[DOORBELLS], owner=user_id,
                              reads=request.app[NEW_ROWS], cursor=cursor, encode=_event)


async def serve_stream(request: web.Request, *, doorbells: ChannelListener, owner: int,
                       reads: CoalescedReads[Row], cursor: int,
                       encode: Callable[[Row], str]) -> web.StreamResponse:
    """Rows of ``owner`` after ``cursor`` as text/event-stream, then each new
    row as its doorbell rings, until the client or the server goes."""
    seat = doorbells.attach(str(owner), reads.seat(owner))
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    streams = request.app[STREAMS]
    stream = streams.open(seat, owner, request)
    try:
        await response.prepare(request)
        await stream.send(response, f"retry: {RETRY_MS}\n\n")
        new = await seat.now(cursor)
        while not streams.closing:
            if new.rows:
                await stream.send(response, "".join(encode(row) for row in new.rows))
                cursor = new.rows[-1].pk
                request.app[STREAM_EVENTS].inc(len(new.rows))
            elif stream.quiet_for(streams.heartbeat_seconds):
                await stream.send(response, ": heartbeat\n\n")
            new = await (seat.now(cursor) if new.more else seat.next(cursor))
    except ConnectionError:
        log.info("event stream of %s closed: client gone or too slow", owner)
    finally:
        streams.close(stream)
        doorbells.unwatch(str(owner), seat)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def last_event_id(request: web.Request, in_query: int | None) -> int:
    """Where a stream resumes: the Last-Event-ID header, else ``?last_event_id=``."""
    header = request.headers.get("Last-Event-ID")
    if header is None:
        return in_query or 0
    if not header.isdigit() or len(header) > 19:
        raise InvalidInput("Last-Event-ID must be an event id we sent", code="invalid_event_id")
    return int(header)


def _event(row: StoredNotification) -> str:
    """The payload's stored JSON object with the id first, spliced rather than
    decoded and encoded again (a key of the payload's own comes later and wins,
    as it did when the event was built from a dict)."""
    inner = row.payload_json.strip()[1:-1].strip()
    data = f'{{"id": {row.id}, {inner}}}' if inner else f'{{"id": {row.id}}}'
    return f"id: {row.id}\nevent: {row.type}\ndata: {data}\n\n"
