"""The event streams open on this process, and the one timer they share.

A timer per stream (a heartbeat while it waits, a deadline on each write)
puts 10,000 handles on the event loop's heap for every broadcast, and their
pushes and cancels cost a 10,000-stream fan-out about 80 ms. Instead one
tick a second looks at every stream: one quiet for ``heartbeat_seconds`` is
rung, so it reads again and writes a heartbeat if nothing is new, and one
whose client has not taken a write for ``write_timeout_seconds`` is dropped
(it reconnects and replays from its last id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from fitnus.pubsub import Waiter

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
# A client that cannot take an event within this long is dropped; it
# reconnects and replays from its last id.
WRITE_TIMEOUT_SECONDS = 10.0


class OpenStream:
    """One response being streamed, as the tick sees it."""

    __slots__ = ("_dropped", "_loop", "_transport", "owner", "seat", "writing_since",
                 "written_at")

    def __init__(self, seat: Waiter, owner: int, transport: asyncio.Transport | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._dropped = False
        self.owner = owner
        self.seat = seat
        self.written_at = self._loop.time()
        self.writing_since: float | None = None

    async def send(self, response: web.StreamResponse, text: str) -> None:
        """Write ``text``; raises ConnectionResetError if the stream was dropped meanwhile."""
        self.writing_since = self._loop.time()
        await response.write(text.encode())
        # A connection aborted under a waiting write lets the write return as
        # if it had gone out: the stream must end here all the same.
        if self._dropped:
            raise ConnectionResetError("the client took no write in time")
        self.writing_since = None
        self.written_at = self._loop.time()

    def quiet_for(self, seconds: float) -> bool:
        return self._loop.time() - self.written_at >= seconds

    def drop(self) -> None:
        """Close the connection under a write that cannot finish; ``send`` raises."""
        self._dropped = True
        if self._transport is not None:
            self._transport.abort()


class OpenStreams:
    """Every open stream of this process, the tick that watches them, and
    ``closing``: set at shutdown, when each stream ends after its current read."""

    def __init__(self, *, heartbeat_seconds: float = HEARTBEAT_SECONDS,
                 write_timeout_seconds: float = WRITE_TIMEOUT_SECONDS) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self.write_timeout_seconds = write_timeout_seconds
        self.closing = False
        self._open: set[OpenStream] = set()
        self._ticking: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._open)

    def open(self, seat: Waiter, owner: int, request: web.Request) -> OpenStream:
        stream = OpenStream(seat, owner, request.transport)
        self._open.add(stream)
        return stream

    def close(self, stream: OpenStream) -> None:
        self._open.discard(stream)

    def close_all(self) -> None:
        """End every stream: those waiting read once more and stop; one stuck
        in a write is dropped, so it cannot hold the shutdown."""
        self.closing = True
        for stream in list(self._open):
            if stream.writing_since is None:
                stream.seat.set()
            else:
                stream.drop()

    async def start(self) -> None:
        self._ticking = asyncio.create_task(self._tick_forever(), name="event-streams")

    async def stop(self) -> None:
        if self._ticking is not None:
            self._ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticking

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except Exception:
                # A fault here must not end heartbeats and deadlines for good.
                log.exception("the event streams' tick failed")

    def tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for stream in list(self._open):
            if stream.writing_since is not None:
                if now - stream.writing_since >= self.write_timeout_seconds:
                    log.info("event stream of %s dropped: its client took no write for %.0f s",
                             stream.owner, now - stream.writing_since)
                    stream.drop()
            elif now - stream.written_at >= self.heartbeat_seconds:
                stream.seat.set()
