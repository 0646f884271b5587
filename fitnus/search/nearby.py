"""Search pages around popular places, answered inside the web process.

The map is cut into cells of about CELL_M. An entry holds what Redis has
around one cell's middle point ``c`` (for one sport, or all): its nearest
centers, with the coordinates Redis measures from, and a radius ``rho``
within which the entry is complete (no center closer to ``c`` is missing).
A query from a point ``p`` in the cell is answered from the entry when its
answer provably lies inside the entry: every hit it returns is closer to
``p`` than ``rho - |pc|``, so any center the entry lacks (at least ``rho``
from ``c``) is farther from ``p`` than all of them (the triangle
inequality). Otherwise the caller asks Redis as before.

Distances are computed the way Redis computes them (its haversine, its
earth radius, its stored coordinates, its four decimals), so a page is the
same whichever answered it, and a cursor from one pages on with the other.

Entries live a few seconds, and a change to a center drops at once every
entry that holds it or whose disk it moves into (``forget``; every web
process hears of each change). A fill that began before a change was heard
is not kept (``generation``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from fitnus.search.index import (
    CenterHit,
    CenterQuery,
    SearchPage,
    name_matches,
    page_from_sorted,
)

# Redis's own constants (src/geohash_helper.c).
EARTH_RADIUS_M = 6372797.560856
DEGREES_TO_RADIANS = math.pi / 180.0

CELL_M = 300
# Nearest centers kept per entry: a default page (20 + 1) from anywhere in a
# cell at 50 centers per km², the densest part of Seoul.
FILL_COUNT = 64
MAX_ENTRIES = 4_000
# A batch of changes larger than this (a reindex) empties the cache.
MAX_CHANGES_SORTED_OUT = 100
# Floating-point slack on the triangle inequality, in metres.
SLACK_M = 0.001
# How far Redis may store a center from its given place: its 52-bit geohash
# cells are about 0.6 m wide.
STORED_PLACE_SLACK_M = 1.0
_METRES_PER_DEGREE = EARTH_RADIUS_M * DEGREES_TO_RADIANS

CellKey = tuple[str | None, int, int]


def redis_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance, operation for operation: the same doubles Redis gets."""
    lon1r = lon1 * DEGREES_TO_RADIANS
    lon2r = lon2 * DEGREES_TO_RADIANS
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return EARTH_RADIUS_M * abs(lat2 * DEGREES_TO_RADIANS - lat1 * DEGREES_TO_RADIANS)
    lat1r = lat1 * DEGREES_TO_RADIANS
    lat2r = lat2 * DEGREES_TO_RADIANS
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def as_redis_replies(distance_m: float) -> float:
    """WITHDIST's four decimals, read back as our parser reads them."""
    return float(f"{distance_m:.4f}")


class Candidate(NamedTuple):
    center_id: int
    longitude: float  # as Redis stores it (its geohash cell's middle)
    latitude: float
    summary_json: bytes


@dataclass(frozen=True)
class Neighbourhood:
    longitude: float
    latitude: float
    complete_within_m: float
    candidates: list[Candidate]
    center_ids: frozenset[int]
    expires_at: float
    generation: int


class NearbyCache:
    def __init__(
        self, *, ttl_seconds: float, max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[CellKey, Neighbourhood] = OrderedDict()
        # Counts the changes heard; a fill records it when it starts.
        self.generation = 0

    def cell(self, query: CenterQuery) -> tuple[CellKey, float, float]:
        """The query's cell and that cell's middle point (longitude, latitude)."""
        step_lat = CELL_M / _METRES_PER_DEGREE
        row = math.floor(query.latitude / step_lat)
        middle_lat = (row + 0.5) * step_lat
        step_lon = step_lat / max(math.cos(middle_lat * DEGREES_TO_RADIANS), 0.01)
        column = math.floor(query.longitude / step_lon)
        return (query.sport, row, column), (column + 0.5) * step_lon, middle_lat

    def fresh(self, key: CellKey) -> Neighbourhood | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def keep(
        self, key: CellKey, *, longitude: float, latitude: float, radius_m: float,
        candidates: list[Candidate], generation: int,
    ) -> Neighbourhood:
        """An entry from the FILL_COUNT nearest within ``radius_m`` of the
        point, nearest first. Kept only if no change was heard meanwhile."""
        if len(candidates) < FILL_COUNT:
            complete_within = radius_m
        else:
            # Centers as far as the last one may have been cut off by COUNT.
            last = candidates[-1]
            complete_within = redis_distance_m(longitude, latitude, last.longitude, last.latitude)
        entry = Neighbourhood(
            longitude, latitude, complete_within - SLACK_M, candidates,
            frozenset(candidate.center_id for candidate in candidates),
            self._monotonic() + self._ttl, generation)
        if generation == self.generation:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return entry

    def answer(self, entry: Neighbourhood, query: CenterQuery) -> SearchPage | None:
        """The page, if the entry alone decides it; None sends the query to Redis."""
        lon, lat = query.longitude, query.latitude
        trusted = entry.complete_within_m - redis_distance_m(
            entry.longitude, entry.latitude, lon, lat)
        if trusted <= 0:
            return None
        terms, after, radius = query.terms, query.after, query.radius_m
        found: list[tuple[float, CenterHit]] = []
        for candidate in entry.candidates:
            exact = redis_distance_m(lon, lat, candidate.longitude, candidate.latitude)
            if exact > radius:
                continue
            hit = CenterHit(candidate.center_id, as_redis_replies(exact), candidate.summary_json)
            if after is not None and (hit.distance_m, hit.center_id) <= (
                after.distance_m, after.center_id
            ):
                continue
            if terms and not name_matches(hit.summary()["name"], terms):
                continue
            found.append((exact, hit))
        found.sort(key=lambda pair: (pair[1].distance_m, pair[1].center_id))
        wanted = query.limit + 1
        decided = radius < trusted or (
            len(found) >= wanted and all(exact < trusted for exact, _ in found[:wanted]))
        if not decided:
            return None
        return page_from_sorted([hit for _, hit in found[:wanted]], query.limit)

    def forget(self, changes: Iterable[tuple[int, tuple[float, float] | None]]) -> None:
        """Drop every entry a change touches: one that holds the center, or
        whose complete disk its new place (longitude, latitude) lies in."""
        self.generation += 1
        changes = list(changes)
        if len(changes) > MAX_CHANGES_SORTED_OUT:
            self._entries.clear()
            return
        for key, entry in list(self._entries.items()):
            for center_id, place in changes:
                if center_id in entry.center_ids or (place is not None and redis_distance_m(
                    entry.longitude, entry.latitude, *place
                ) <= entry.complete_within_m + STORED_PLACE_SLACK_M):
                    del self._entries[key]
                    break

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
