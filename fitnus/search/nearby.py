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
import operator
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
ASKED_KEPT = 4 * MAX_ENTRIES
POPULAR_ASKS = 3
# A batch of changes larger than this (a reindex) empties the cache: sorting
# them out costs a distance per entry and change.
MAX_CHANGES_SORTED_OUT = 20
# A step of WITHDIST's four decimals, in metres, with room for float error.
ROUNDING_M = 0.0002
# Floating-point slack on the triangle inequality, in metres.
SLACK_M = 0.001
# How far Redis may store a center from its given place: its 52-bit geohash
# cells are about 0.6 m wide.
STORED_PLACE_SLACK_M = 1.0
_METRES_PER_DEGREE = EARTH_RADIUS_M * DEGREES_TO_RADIANS

CellKey = tuple[str | None, int, int]


class Place(NamedTuple):
    """A point as geohashGetDistance takes it apart, computed once."""

    longitude_rad: float
    latitude_rad: float
    cos_latitude: float


def place(longitude: float, latitude: float) -> Place:
    latitude_rad = latitude * DEGREES_TO_RADIANS
    return Place(longitude * DEGREES_TO_RADIANS, latitude_rad, math.cos(latitude_rad))


def redis_distances_m(origin: Place, others: Iterable[Place]) -> list[float]:
    """geohashGetDistance (Redis 7, src/geohash_helper.c), operation for
    operation, from the query's point to each member: the doubles Redis gets.
    One loop rather than a call per member: a page computes dozens."""
    longitude_rad, latitude_rad, cos_latitude = origin
    sin, asin, sqrt = math.sin, math.asin, math.sqrt
    distances = []
    for other_longitude_rad, other_latitude_rad, other_cos_latitude in others:
        v = sin((other_longitude_rad - longitude_rad) / 2)
        if v == 0.0:
            distances.append(EARTH_RADIUS_M * abs(other_latitude_rad - latitude_rad))
            continue
        u = sin((other_latitude_rad - latitude_rad) / 2)
        a = u * u + cos_latitude * other_cos_latitude * v * v
        distances.append(2.0 * EARTH_RADIUS_M * asin(sqrt(a)))
    return distances


def redis_distance_m(origin: Place, other: Place) -> float:
    return redis_distances_m(origin, (other,))[0]


def as_redis_replies(distance_m: float) -> float:
    """WITHDIST's four decimals, read back as our parser reads them (round()
    rounds the decimal value correctly, as Redis 7.0's printf does; 7.2
    rounds distance × 10⁴ to an integer instead, which differs only when that
    product lies within an ulp of a half)."""
    return round(distance_m, 4)


class Candidate(NamedTuple):
    center_id: int
    place: Place  # where Redis stores it (its geohash cell's middle)
    summary_json: bytes


@dataclass(frozen=True)
class Neighbourhood:
    middle: Place
    complete_within_m: float
    candidates: list[Candidate]
    places: list[Place]  # the candidates' own, in their order
    center_ids: frozenset[int]
    expires_at: float
    generation: int


_EXACT = operator.itemgetter(0)


def _as_redis_orders(pair: tuple[float, CenterHit]) -> tuple[float, int]:
    """By distance as Redis replies it, then id (what the backend sorts by)."""
    return pair[1].distance_m, pair[1].center_id


class NearbyCache:
    def __init__(
        self, *, ttl_seconds: float, fill_at_first_ask: bool = False,
        max_entries: int = MAX_ENTRIES, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``fill_at_first_ask``: every cell is popular (tests of exactness)."""
        self._ttl = ttl_seconds
        self._fill_at_first_ask = fill_at_first_ask
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[CellKey, Neighbourhood] = OrderedDict()
        # When each cell without an entry was asked for lately.
        self._asked: OrderedDict[CellKey, tuple[float, ...]] = OrderedDict()
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

    def popular(self, key: CellKey) -> bool:
        """Whether a cell without an entry is worth one: asked for POPULAR_ASKS
        times within the time an entry lives. A fill costs Redis about four
        plain searches, so a place asked for now and then asks the plain way."""
        if self._fill_at_first_ask:
            return True
        now = self._monotonic()
        recent = [asked for asked in self._asked.pop(key, ()) if now - asked < self._ttl]
        if len(recent) + 1 >= POPULAR_ASKS:
            return True
        self._asked[key] = (*recent, now)
        if len(self._asked) > ASKED_KEPT:
            self._asked.popitem(last=False)
        return False

    def keep(
        self, key: CellKey, *, longitude: float, latitude: float, radius_m: float,
        candidates: list[Candidate], generation: int,
    ) -> Neighbourhood:
        """An entry from the FILL_COUNT nearest within ``radius_m`` of the
        point, nearest first. Kept only if no change was heard meanwhile."""
        middle = place(longitude, latitude)
        # Centers as far as the last one may have been cut off by COUNT.
        complete_within = radius_m if len(candidates) < FILL_COUNT else redis_distance_m(
            middle, candidates[-1].place)
        entry = Neighbourhood(
            middle, complete_within - SLACK_M, candidates,
            [candidate.place for candidate in candidates],
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
        origin = place(query.longitude, query.latitude)
        trusted = entry.complete_within_m - redis_distance_m(origin, entry.middle)
        if trusted <= 0:
            return None
        radius = query.radius_m
        within = [
            (exact, candidate) for exact, candidate in zip(
                redis_distances_m(origin, entry.places), entry.candidates, strict=True)
            if exact <= radius
        ]
        within.sort(key=_EXACT)
        # Walk out from the query's point; past the last hit wanted by more
        # than Redis's rounding, nothing can enter the page.
        terms, after, wanted = query.terms, query.after, query.limit + 1
        found: list[tuple[float, CenterHit]] = []
        for exact, candidate in within:
            if len(found) >= wanted and exact > found[wanted - 1][0] + ROUNDING_M:
                break
            hit = CenterHit(candidate.center_id, as_redis_replies(exact), candidate.summary_json)
            if after is not None and (hit.distance_m, hit.center_id) <= (
                after.distance_m, after.center_id
            ):
                continue
            if terms and not name_matches(hit.summary()["name"], terms):
                continue
            found.append((exact, hit))
        found.sort(key=_as_redis_orders)
        page = found[:wanted]
        decided = radius < trusted or (
            len(page) == wanted and all(exact < trusted for exact, _ in page))
        if not decided:
            return None
        return page_from_sorted([hit for _, hit in page], query.limit)

    def forget(self, changes: Iterable[tuple[int, Place | None]]) -> None:
        """Drop every entry a change touches: one that holds the center, or
        whose complete disk its new place (None: removed) lies in."""
        self.generation += 1
        changes = list(changes)
        if len(changes) > MAX_CHANGES_SORTED_OUT:
            self._entries.clear()
            return
        for key, entry in list(self._entries.items()):
            for center_id, moved_to in changes:
                if center_id in entry.center_ids or (moved_to is not None and redis_distance_m(
                    entry.middle, moved_to
                ) <= entry.complete_within_m + STORED_PLACE_SLACK_M):
                    del self._entries[key]
                    break

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
