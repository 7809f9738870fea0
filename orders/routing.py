"""Where an order goes: back to the member's home store if it takes orders, else the
nearest store taking orders within the radius that has not had the order yet.

The nearest-store search is one statement on either database: a bounding box around
the address on the indexed latitude and longitude of the stores taking orders (a
partial index), then the exact great-circle distance (haversine) of the few stores
inside it. SQLite computes it with its built-in math functions (``sin``, ``asin`` …,
present in the sqlite3 builds we run; tests/test_o2o checks they answer)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.db import fetch, param
from members.o2o import TAKING_ORDERS
from members.stores import StoreRef

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180  # along a meridian


@dataclass(frozen=True, slots=True)
class Spot:
    store: StoreRef
    region: str
    distance_km: float


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """Latitude and longitude ranges holding every point within ``radius_km``."""
    dlat = radius_km / KM_PER_DEGREE
    widest = min(89.9, abs(lat) + dlat)  # where a degree of longitude is shortest
    dlon = min(180.0, dlat / math.cos(math.radians(widest)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _distance_sql() -> str:
    lat, lon = param("float8"), param("float8")
    return (
        f"2 * {EARTH_RADIUS_KM} * asin(sqrt(power(sin(radians(s.latitude - {lat}) / 2), 2)"
        f" + cos(radians({param('float8')})) * cos(radians(s.latitude))"
        f" * power(sin(radians(s.longitude - {lon}) / 2), 2)))"
    )


async def nearest_store(
    lat: float, lon: float, radius_km: float, order_pk: int | None = None
) -> Spot | None:
    """The nearest store taking orders within ``radius_km`` of the address, leaving
    out every store the order ``order_pk`` was routed to before."""
    lat_lo, lat_hi, lon_lo, lon_hi = bounding_box(lat, lon, radius_km)
    tried = ""
    args: list[object] = [lat, lat, lon, lat_lo, lat_hi, lon_lo, lon_hi]
    if order_pk is not None:
        tried = (
            " AND s.id NOT IN (SELECT e.store FROM o2o_order_event e"
            " WHERE e.o2o_order = {} AND e.event = 'routed')"
        )
        args.append(order_pk)
    rows = await fetch(
        "SELECT d.id, d.code, d.timezone, d.region, d.km FROM ("
        f" SELECT s.id, s.code, s.timezone, s.region, {_distance_sql()} AS km"
        f" FROM {TAKING_ORDERS} s"
        " WHERE s.latitude BETWEEN {} AND {} AND s.longitude BETWEEN {} AND {}"
        f"{tried}) AS d WHERE d.km <= {{}} ORDER BY d.km, d.id LIMIT 1",
        *args,
        radius_km,
    )
    if not rows:
        return None
    row = rows[0]
    return Spot(
        StoreRef(int(row["id"]), row["code"], row["timezone"]),
        row["region"],
        round(float(row["km"]), 3),
    )
