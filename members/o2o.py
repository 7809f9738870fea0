"""What the O2O orders need of members: the stores that take orders, the member
behind an order's phone, a new customer joining the store an order is routed to
(and moving with the order while nothing else ties them there), and the recruit
credit of the advisor who delivers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from core import clock
from core.db import LostRace, fetch, in_list, is_postgres, rows_source
from core.events import bus
from core.periods import keys_of
from members.events import MemberJoined
from members.stores import StoreRef

# Stores taking orders now: marked o2o, with a position, and open (an active advisor
# to take the order). Joined by the orders' routing inside its own statement; the
# database inlines it, so the bounding box reaches the partial index on position.
TAKING_ORDERS = (
    "(SELECT s.id, s.code, s.timezone, s.region, s.latitude, s.longitude FROM store s"
    " WHERE s.o2o AND s.latitude IS NOT NULL AND s.longitude IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM advisor a WHERE a.store = s.id AND a.active))"
)


@dataclass(frozen=True, slots=True)
class OrderMember:
    id: int
    home_store: int
    # The home store, if it takes orders now (the order goes back to it).
    home: StoreRef | None
    home_region: str | None
    home_position: tuple[float, float]


async def member_of_phone(phone: str) -> OrderMember | None:
    rows = await fetch(
        "SELECT m.id, m.home_store, s.id AS taking, s.code, s.timezone, s.region,"
        " s.latitude, s.longitude"
        f" FROM member m LEFT JOIN {TAKING_ORDERS} s ON s.id = m.home_store WHERE m.phone = {{}}",
        phone,
    )
    if not rows:
        return None
    row = rows[0]
    home = (
        StoreRef(id=int(row["taking"]), code=row["code"], timezone=row["timezone"])
        if row["taking"] is not None
        else None
    )
    position = (row["latitude"] or 0.0, row["longitude"] or 0.0)
    return OrderMember(int(row["id"]), int(row["home_store"]), home, row["region"], position)


async def product_skus(skus: Sequence[str]) -> set[str]:
    """The SKUs of these that the registry knows."""
    if not skus:
        return set()
    cond, args = in_list(sorted(set(skus)), "text")
    return {row["sku"] for row in await fetch(f"SELECT sku FROM product WHERE sku {cond}", *args)}


async def join_for_order(phone: str, name: str, store: StoreRef, at: datetime) -> int:
    """A new customer joins the store their order is routed to. Nobody recruited them
    yet: the credit goes to the advisor who delivers (``credit_delivery``). A phone
    that joined meanwhile (a till, another order) means the order is routed again."""
    rows = await fetch(
        "INSERT INTO member (phone, name, home_store, owning_advisor, recruited_by,"
        " joined_at, joined_on, do_not_contact, points_balance, created_at)"
        " VALUES ({}, {}, {}, NULL, NULL, {}, {}, false, 0, {})"
        " ON CONFLICT (phone) DO NOTHING RETURNING id",
        phone,
        name,
        store.id,
        at,
        clock.local_date(at, store.tz),
        clock.now(),
    )
    if not rows:
        raise LostRace()
    return int(rows[0]["id"])


async def move_order_member(member_id: int, to_store: int) -> bool:
    """A member who joined for an order moves with it to the next store, as long as
    nothing else ties them to where they are: no purchase, no advisor. Their recruit
    count in the stores' figures moves too. Returns whether they moved."""
    lock = " FOR UPDATE" if is_postgres() else ""  # a till's purchase may come meanwhile
    rows = await fetch(
        "SELECT home_store, joined_on FROM member WHERE id = {}"
        f" AND last_purchased_at IS NULL AND owning_advisor IS NULL{lock}",
        member_id,
    )
    if not rows or int(rows[0]["home_store"]) == to_store:
        return False
    from_store = int(rows[0]["home_store"])
    await fetch("UPDATE member SET home_store = {} WHERE id = {}", to_store, member_id)
    joined_on = rows[0]["joined_on"]
    day = joined_on if isinstance(joined_on, date) else date.fromisoformat(str(joined_on))
    await _shift_recruit(day, from_store, to_store)
    return True


async def _shift_recruit(day: date, from_store: int, to_store: int) -> None:
    """store_day counts a recruit where the member joined (a trigger on insert): one
    less there, one more at the store they moved to, for the day, week and month."""
    source, args = rows_source(
        [("store", "int"), ("period", "text"), ("n", "int")],
        [(store, key, n) for store, n in ((from_store, -1), (to_store, 1)) for key in keys_of(day)],
    )
    await fetch(
        "INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen, new_members)"
        f" SELECT store, period, 0, 0, 0, n FROM ({source}) AS src WHERE true"
        " ORDER BY store, period ON CONFLICT (store, period) DO UPDATE SET"
        " new_members = store_day.new_members + excluded.new_members",
        *args,
    )


async def credit_delivery(member_id: int, store: StoreRef, advisor_id: int, day: date) -> None:
    """The advisor who delivered the first order of a member who joined for it
    recruited them and looks after them: the welcome task and the new-member credit
    follow, as for a member joining at the till."""
    rows = await fetch(
        "UPDATE member SET recruited_by = {}, owning_advisor = {}"
        " WHERE id = {} AND home_store = {} AND recruited_by IS NULL"
        " RETURNING id, do_not_contact",
        advisor_id,
        advisor_id,
        member_id,
        store.id,
    )
    if rows:
        await bus.publish(
            [MemberJoined(member_id, store.id, day, bool(rows[0]["do_not_contact"]), advisor_id)]
        )


async def store_refs(ids: Sequence[int]) -> dict[int, tuple[StoreRef, str]]:
    """Stores by id, with their region."""
    if not ids:
        return {}
    cond, args = in_list(sorted(set(ids)), "int")
    rows = await fetch(f"SELECT id, code, timezone, region FROM store WHERE id {cond}", *args)
    return {
        int(r["id"]): (StoreRef(int(r["id"]), r["code"], r["timezone"]), r["region"]) for r in rows
    }


async def advisor_code(advisor_id: int) -> str:
    rows = await fetch("SELECT code FROM advisor WHERE id = {}", advisor_id)
    return str(rows[0]["code"])
