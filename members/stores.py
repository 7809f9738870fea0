"""The store a till or a person acts for, its advisors as the till names them, and
when something happened there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import clock
from core.errors import InvalidInput, NotFound
from members.tables import Advisor, Store

# A till's clock may run a little fast; beyond this a time is refused as future.
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoreRef:
    """The store a POS key or a person acts for."""

    id: int
    code: str
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return clock.zone(self.timezone)


async def store_by_code(code: str) -> StoreRef:
    row = await Store.select(Store.id, Store.code, Store.timezone).where(Store.code == code).first()
    if row is None:
        raise NotFound(f"no store {code}")
    return StoreRef(id=row["id"], code=row["code"], timezone=row["timezone"])


async def advisors_by_code(codes: set[str]) -> dict[str, dict[str, Any]]:
    """The advisors these codes name, wherever they work."""
    if not codes:
        return {}
    rows = await Advisor.select(Advisor.id, Advisor.code, Advisor.store, Advisor.active).where(
        Advisor.code.is_in(sorted(codes))
    )
    return {row["code"]: row for row in rows}


def advisors_at(
    store: StoreRef, codes: set[str], known: dict[str, dict[str, Any]]
) -> dict[str, int | str]:
    """Advisor id by code for codes that are active at this store; for others, why not."""
    found: dict[str, int | str] = {}
    for code in codes:
        row = known.get(code)
        if row is None:
            found[code] = f"no advisor {code}"
        elif row["store"] != store.id:
            found[code] = f"advisor {code} does not work at store {store.code}"
        elif not row["active"]:
            found[code] = f"advisor {code} is no longer active"
        else:
            found[code] = row["id"]
    return found


async def store_advisors(store: StoreRef, codes: set[str]) -> dict[str, int | str]:
    """Advisor id by code for codes that are active at this store; for others, why not."""
    return advisors_at(store, codes, await advisors_by_code(codes))


async def advisor_at(store: StoreRef, code: str | None, field: str = "advisor_code") -> int | None:
    """The id of an advisor the till names, who must be active at its store."""
    if code is None:
        return None
    found = (await store_advisors(store, {code}))[code]
    if isinstance(found, str):
        raise InvalidInput.on(field, found)
    return found


def event_instant(value: datetime, store: StoreRef, field_name: str) -> datetime:
    """When something happened at a store: not in the future (beyond a till's clock
    drift) and not before the program could have existed."""
    try:
        instant = clock.as_instant(value, store.tz)
    except ValueError as exc:
        raise InvalidInput.on(field_name, str(exc)) from None
    if instant > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput.on(field_name, "is in the future")
    if instant < EARLIEST_EVENT:
        raise InvalidInput.on(field_name, f"is before {EARLIEST_EVENT.date()}")
    return instant
