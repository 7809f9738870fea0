"""The demo chain's O2O orders: four stores take the brand's online orders, the
mini-program sends a few a day over the last weeks (members near their store, new
customers near one, now and then someone out of every store's reach), and the stores
accept, decline, let the time limit pass and deliver, all through the services the
API uses, so the owner's and HQ's pages show real ages and routing figures."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core import clock
from members import registry
from members.policy import PointsRule
from members.queries import advisor_id_by_code
from members.schemas import MemberRegistration, StoreIn
from members.stores import StoreRef, store_by_code
from orders import queries, services, store_side
from orders.channels import (
    CHANNEL_KEY_PREFIX,
    channel_for_key,
    create_channel_key,
    revoke_channel_key,
)
from orders.schemas import AddressIn, DeliveredIn, OrderIn, OrderLineIn

# The demo's channel key, like the demo tills' keys: known, for the README's curl.
DEMO_CHANNEL_KEY = f"{CHANNEL_KEY_PREFIX}demo_miniprogram"
TAKING_ORDERS = ("S0001", "S0002", "S0003", "S0004")
ORDER_DAYS = 28  # orders on each of the last four weeks' days
ORDERS_PER_DAY = (2, 5)
# Far from every store taking orders: near S0005 (杭州), which takes none.
FAR_SHARE = 0.08
NEW_CUSTOMER_SHARE = 0.45
DECLINE_SHARE, TIMEOUT_SHARE = 0.12, 0.08
STREETS = ("幸福路", "花城大道", "新港西路", "科技园南路", "漕溪北路", "文三路", "体育西路")
SKUS = (("F1-800", "358.00"), ("F2-800", "338.00"), ("F3-800", "318.00"), ("PB-30", "198.00"))


class DemoOrders:
    """The mini-program's orders, day by day, as ``live_history`` replays the past."""

    def __init__(
        self,
        joins: dict[str, list[MemberRegistration]],
        stores: list[tuple[str, str, str, float, float]],
    ) -> None:
        self.rng = random.Random(16)  # apart from the chain's: its figures stay as they were
        self.joins = joins
        self.positions = {code: (lat, lng) for code, _n, _r, lat, lng in stores}
        self.names = {code: (name, region) for code, name, region, _la, _lo in stores}
        self.channel_id = 0
        self.limits = services.Limits()
        self.rule = PointsRule()
        self.made = 0
        self.serial = 0

    async def open(self) -> None:
        """The stores that take orders, and the mini-program's key."""
        for code in TAKING_ORDERS:
            lat, lng = self.positions[code]
            name, region = self.names[code]
            await registry.put_store(
                code, StoreIn(name=name, region=region, latitude=lat, longitude=lng, o2o=True)
            )
        # A retired web shop's key, revoked: HQ's key page shows both states.
        retired = await create_channel_key("旧版网店")
        retired_channel = await channel_for_key(retired)
        assert retired_channel is not None
        await revoke_channel_key(retired_channel.id)
        await create_channel_key("品牌小程序", DEMO_CHANNEL_KEY)
        channel = await channel_for_key(DEMO_CHANNEL_KEY)
        assert channel is not None
        self.channel_id = channel.id

    async def day(self, day: date, today: date) -> None:
        if (today - day).days > ORDER_DAYS:
            return
        for n in range(self.rng.randint(*ORDERS_PER_DAY)):
            placed = datetime.combine(day, time(9 + 2 * n, self.rng.randrange(60)), _zone())
            await self._one(placed, finish=True)

    async def now(self) -> None:
        """Orders in flight at the moment the demo is seeded: one just placed, one
        near its time limit, one accepted on its way, one no store could take."""
        now = clock.now()
        for minutes_ago, accept in ((6, False), (24, False), (48, True), (37, False)):
            await self._one(now - timedelta(minutes=minutes_ago), finish=False, accept=accept)
        await self._one(now - timedelta(minutes=15), finish=False, far=True)
        # Whatever the dice said above: a member of the first demo advisor's (A00001,
        # 13800000001) ordered two minutes ago, so that phone's 紧急 shows an order
        # waiting for 接单, with most of its time limit left.
        first = self._member_of("S0001", "A00001", now)
        if first:
            await self._one(now - timedelta(minutes=2), False, far=False, phone=first, home="S0001")

    async def _one(
        self,
        placed: datetime,
        finish: bool,
        accept: bool = False,
        far: bool | None = None,
        phone: str | None = None,
        home: str | None = None,
    ) -> None:
        rng = self.rng
        far = rng.random() < FAR_SHARE if far is None else far
        home = home or rng.choice(TAKING_ORDERS[:3] if not finish else TAKING_ORDERS)
        # A member goes back to their own store from anywhere: far away is a new customer.
        known = not far and rng.random() > NEW_CUSTOMER_SHARE
        phone = phone or (self._phone(home, placed) if known else None)
        lat, lng = self._near(self.positions["S0005" if far else home])
        self.serial += 1
        order_id = f"MP{placed:%Y%m%d}{self.serial:04d}"
        sku, price = rng.choice(SKUS)
        with clock.living_at(placed):
            _, answer = await services.place_order(
                self.channel_id,
                OrderIn(
                    order_id=order_id,
                    member_phone=phone or f"136{self.serial:08d}",
                    name=f"{rng.choice('王李张刘陈杨黄')}女士",
                    address=AddressIn(
                        text=f"{rng.choice(STREETS)}{rng.randint(1, 300)}号",
                        latitude=lat,
                        longitude=lng,
                    ),
                    lines=[OrderLineIn(sku=sku, quantity=rng.choice((1, 1, 2)), amount=price)],
                    placed_at=placed,
                ),
                self.limits,
            )
        self.made += 1
        if answer.store_code is None or not (finish or accept):
            return
        await self._work(order_id, placed, finish)

    async def _work(self, order_id: str, placed: datetime, finish: bool) -> None:
        rng, at = self.rng, placed
        code = await self._holder(order_id)
        if finish and (r := rng.random()) < DECLINE_SHARE + TIMEOUT_SHARE and code:
            at += timedelta(minutes=rng.randint(3, 10) if r < DECLINE_SHARE else 31)
            with clock.living_at(at):
                if r < DECLINE_SHARE:
                    store, adv = await self._store_advisor(code)
                    await store_side.decline(store, adv, order_id, self.limits)
                else:
                    await services.reroute_overdue(self.limits)
            code = await self._holder(order_id)
        if code is None:
            return
        store, adv = await self._store_advisor(code)
        at += timedelta(minutes=rng.randint(2, 22))
        with clock.living_at(at):
            await store_side.accept(store, adv, order_id)
        if not finish:
            return
        at += timedelta(minutes=rng.randint(25, 140))
        with clock.living_at(at):
            await store_side.delivered(
                store, adv, order_id, DeliveredIn(f"{code}-O2O-{order_id}", at), self.rule
            )

    async def _holder(self, order_id: str) -> str | None:
        return (await queries.channel_order(self.channel_id, order_id)).store_code

    async def _store_advisor(self, code: str) -> tuple[StoreRef, int]:
        n = (int(code[1:]) - 1) * 2 + 1 + self.rng.randrange(2)
        advisor = await advisor_id_by_code(f"A{n:05d}")
        assert advisor is not None
        return await store_by_code(code), advisor

    def _phone(self, code: str, before: datetime) -> str | None:
        members = [
            m.phone
            for m in self.joins.get(code, [])
            if m.registered_at and m.registered_at < before
        ]
        return self.rng.choice(members) if members else None

    def _member_of(self, store: str, advisor: str, before: datetime) -> str | None:
        return next(
            (
                m.phone
                for m in self.joins.get(store, [])
                if m.advisor_code == advisor and m.registered_at and m.registered_at < before
            ),
            None,
        )

    def _near(self, position: tuple[float, float]) -> tuple[float, float]:
        """A point 0.3 to 6 km from ``position``, in any direction."""
        km, bearing = self.rng.uniform(0.3, 6), self.rng.uniform(0, 2 * math.pi)
        lat, lng = position
        dlat = km * math.cos(bearing) / 111.195
        dlng = km * math.sin(bearing) / (111.195 * math.cos(math.radians(lat)))
        return round(lat + dlat, 6), round(lng + dlng, 6)


def _zone() -> ZoneInfo:
    return clock.zone(clock.DEFAULT_TIMEZONE)
