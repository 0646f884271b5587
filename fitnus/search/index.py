"""The search port: one interface, a Redis GEO and an Elasticsearch backend.

MySQL is the source of truth. Each document carries the center's version and
a backend never lets an older version replace a newer one, so index actors
may run in any order, twice, or late.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from fitnus.errors import InvalidInput

MAX_RADIUS_M = 50_000
DEFAULT_RADIUS_M = 3_000


@dataclass(frozen=True, kw_only=True)
class CenterDocument:
    id: int
    version: int
    name: str
    address: str
    latitude: float
    longitude: float
    sports: list[str]


@dataclass(frozen=True, order=True)
class SearchCursor:
    """Keyset position: everything strictly after (distance, id) comes next."""

    distance_m: float
    center_id: int

    def encode(self) -> str:
        raw = json.dumps([self.distance_m, self.center_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> SearchCursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            distance, center_id = json.loads(base64.urlsafe_b64decode(padded))
            cursor = cls(float(distance), int(center_id))
        except (ValueError, TypeError) as exc:
            raise InvalidInput("the cursor is not one we issued", code="invalid_cursor") from exc
        if not math.isfinite(cursor.distance_m) or cursor.distance_m < 0:
            raise InvalidInput("the cursor is not one we issued", code="invalid_cursor")
        return cursor


@dataclass(frozen=True, kw_only=True)
class CenterQuery:
    latitude: float
    longitude: float
    radius_m: float = DEFAULT_RADIUS_M
    sport: str | None = None
    text: str | None = None
    limit: int = 20
    after: SearchCursor | None = None

    @property
    def terms(self) -> list[str]:
        return (self.text or "").casefold().split()


def summary_json(document: CenterDocument) -> str:
    """The center as search results show it, rendered once when it is indexed:
    a JSON object, so a page is assembled without decoding each hit."""
    return json.dumps(
        {"id": document.id, "name": document.name, "address": document.address,
         "latitude": document.latitude, "longitude": document.longitude,
         "sports": document.sports},
        ensure_ascii=False, separators=(",", ":"),
    )


class CenterHit(NamedTuple):
    """A tuple: a search page builds dozens of these per request."""

    center_id: int
    distance_m: float
    summary_json: bytes  # UTF-8, as stored: a page is written without decoding it

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = json.loads(self.summary_json)
        return summary


@dataclass(frozen=True)
class SearchPage:
    hits: list[CenterHit]
    next_cursor: SearchCursor | None


def name_matches(name: str, terms: list[str]) -> bool:
    """The text filter every backend implements: each term is a substring of the name."""
    folded = name.casefold()
    return all(term in folded for term in terms)


def page_from_sorted(hits: list[CenterHit], limit: int) -> SearchPage:
    """Cut ``limit + 1`` sorted hits into a page and the cursor after it."""
    if len(hits) <= limit:
        return SearchPage(hits, None)
    last = hits[limit - 1]
    return SearchPage(hits[:limit], SearchCursor(last.distance_m, last.center_id))


# Puts every center into the index it is given; returns how many.
Fill = Callable[["CenterIndex"], Awaitable[int]]


class CenterIndex(Protocol):
    # The sphere the backend measures distances on; tests place centers on it.
    earth_radius_m: float

    async def ensure(self) -> None:
        """Create what the backend needs if it is missing."""

    async def put(self, document: CenterDocument) -> None:
        """Index this version unless a newer one is there."""

    async def put_many(self, documents: Sequence[CenterDocument]) -> None:
        """``put`` for a batch (reindexing), in as few round trips as the backend allows."""

    async def remove(self, center_id: int, *, version: int) -> None:
        """Remove the center unless a newer version is there."""

    async def search(self, query: CenterQuery) -> SearchPage: ...

    async def clear(self) -> None:
        """Drop everything."""

    async def rebuild(self, fill: Fill) -> int:
        """Index everything anew with ``fill`` (given where to put it; it
        returns how many), then serve that. Where the backend allows, searches
        answer from the old index until the new one is complete."""

    async def close(self) -> None: ...
