"""Placing points at exact distances on a backend's own sphere."""

from __future__ import annotations

import math


def destination(
    latitude: float, longitude: float, *, distance_m: float, bearing_deg: float, radius_m: float
) -> tuple[float, float]:
    """The point ``distance_m`` away along a great circle, on a sphere of ``radius_m``."""
    angular = distance_m / radius_m
    bearing = math.radians(bearing_deg)
    lat1, lon1 = math.radians(latitude), math.radians(longitude)
    lat2 = math.asin(
        math.sin(lat1) * math.cos(angular) + math.cos(lat1) * math.sin(angular) * math.cos(bearing)
    )
    lon2 = lon1 + math.atan2(
        math.sin(bearing) * math.sin(angular) * math.cos(lat1),
        math.cos(angular) - math.sin(lat1) * math.sin(lat2),
    )
    return math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180
