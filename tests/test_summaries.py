"""The summaries insights read equal the raw computation, whatever history led there.

Random histories: members joining on random days in stores of two regions and two
time zones, receipts sent in any order (one by one and in batches, so that a late
earlier receipt recomputes the next one's repeat flag), tasks of several kinds moved
through calls (done, reached, do-not-contact cancelling the member's other tasks,
conversions), purchases (conversions, a stage-up kept by buying the next stage, a
reactivate cancelled, a replenish superseded), expiry, and direct changes to a task
row (status, due date across periods, kept, converted, store, deleted), since the
database's own triggers are what keeps the summaries. Then:

- ``store_day`` equals the GROUP BY over ``purchase`` and ``member`` for every store
  and period key (day, ISO week, month), with RN3's repeat flag recomputed here from
  its definition (bought within 90 days of the member's previous purchase);
- ``task_summary`` equals the GROUP BY over ``task``;
- every snapshot ``members.activity.take_snapshot`` took (some again after more
  history) equals its definition: the members who joined the store by that day, and
  those of them with a purchase in the 90 or 365 days up to it.

The days run from 2024-10 to the spring of 2026 around START (so ISO week 2026-W01,
which starts on 2025-12-29, is in range), long before the suite's clock: no purchase makes
a task of its own. The stores keep time zones no other test uses, so a snapshot
touches only them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import clock
from core.db import fetch, in_list, in_write_transaction
from core.errors import Conflict, InvalidInput
from core.periods import keys_of
from members.activity import take_snapshot
from tasks.campaigns import create_campaign
from tasks.lifecycle import transition
from tasks.outcomes import record_outcome
from tasks.schemas import OutcomeIn
from tests.conftest import FORMULA_1, FORMULA_2, PROBIOTIC, WIPES, Shop, make_shop, unique_phone

START = date(2025, 12, 10)
ZONES = ("Asia/Taipei", "Asia/Kolkata")
PRODUCTS = (FORMULA_1, FORMULA_2, PROBIOTIC, WIPES)
KINDS = ("followup_3d", "replenish", "stage_up", "reactivate", "campaign")
TOPICS = {"replenish": "formula", "stage_up": "6"}
RESULTS = ("reached", "will_buy", "purchased", "no_answer", "declined", "do_not_contact")
STATUSES = ("open", "done", "expired", "cancelled")
DAY_FIGURES = ("receipts", "revenue_fen", "repeat_fen", "new_members")
TASK_FIGURES = (
    "made",
    "cancelled",
    "contacted",
    "reached",
    "done",
    "expired",
    "converted",
    "converted_fen",
    "kept",
)

# Most days within ten weeks of START, some up to fourteen months before it.
days = st.one_of(st.integers(0, 70), st.integers(-430, -1))
hours = st.integers(0, 23)
# A buyer: a new phone (negative) or an earlier member, by index modulo how many.
member = st.integers(-3, 20)
line = st.tuples(st.sampled_from(PRODUCTS), st.integers(1, 3), st.integers(1, 90_000))
join = st.tuples(st.just("join"), st.integers(0, 2), days, hours)
buy = st.tuples(st.just("buy"), st.integers(0, 2), member, days, hours, line)
batch = st.tuples(
    st.just("batch"),
    st.integers(0, 2),
    st.lists(st.tuples(member, days, hours, line), min_size=2, max_size=5),
)
task = st.tuples(
    st.just("task"),
    st.integers(0, 30),  # whose: an earlier member, by index modulo how many
    st.sampled_from(KINDS),
    days,
    st.sampled_from(("open", *STATUSES)),  # made open, mostly
    st.booleans(),  # contacted (and reached)
    st.booleans(),  # kept (the member bought the next stage)
)
# Direct changes to a task's row, one to four in a row.
change = st.tuples(
    st.just("change"),
    st.integers(0, 30),
    st.lists(
        st.tuples(
            st.sampled_from(
                ["due", "status", "kept", "convert", "unconvert", "contact", "store", "delete"]
            ),
            st.integers(-40, 40),
        ),
        min_size=1,
        max_size=4,
    ),
)
# A purchase by a task's member, days after it is due: a conversion after a reached
# call, a stage-up kept by stage 2, a reactivate ended, a replenish superseded.
buy_after = st.tuples(
    st.just("buy_after"),
    st.integers(0, 30),
    st.integers(0, 40),
    st.sampled_from([FORMULA_2, FORMULA_1, PROBIOTIC]),
)
# A task worked: a call days after it is due, then the member buys days after the call
# (within the 7 days of a conversion, or not).
work = st.tuples(
    st.just("work"),
    st.integers(0, 30),
    st.sampled_from(RESULTS[:3] + RESULTS[3:4]),
    st.integers(-1, 8),
    st.integers(0, 9),
    st.sampled_from([FORMULA_2, PROBIOTIC]),
)
event = st.one_of(
    change,
    change,
    change,
    work,
    work,
    buy_after,
    # A call on a task, days from when it is due (before it was made: refused).
    st.tuples(st.just("call"), st.integers(0, 30), st.sampled_from(RESULTS), st.integers(-3, 16)),
    buy,
    batch,
    st.tuples(st.just("expire"), days),
    st.tuples(st.just("snapshot"), st.just("day"), days, st.just(0)),
    # On the edges of the windows: a purchase's day and 89, 90, 364 or 365 days on; a
    # member's joining day and the day before.
    st.tuples(
        st.just("snapshot"),
        st.just("purchase"),
        st.integers(0, 30),
        st.sampled_from([0, 89, 90, 364, 365]),
    ),
    st.tuples(st.just("snapshot"), st.just("joined"), st.integers(0, 30), st.sampled_from([-1, 0])),
)


def on(offset: int) -> date:
    return START + timedelta(days=offset)


def at(offset: int, hour: int) -> str:
    return f"{on(offset).isoformat()}T{hour:02d}:15:00+08:00"


class History:
    """The stores, members and tasks one example made, and how to drive them."""

    def __init__(self, client: httpx.AsyncClient, shops: list[Shop], campaign: int) -> None:
        self.client = client
        self.shops = shops
        self.campaign = campaign
        self.phones: list[str] = []
        self.tasks: list[int] = []
        self.snapshots: set[date] = set()

    async def apply(self, op: tuple[Any, ...]) -> None:
        what, *args = op
        if what == "buy":
            s, pick, day, hour, bought = args
            await self.buy(s, [self.receipt(pick, day, hour, bought)])
        elif what == "batch":
            s, lines = args
            await self.buy(s, [self.receipt(*line) for line in lines])
        elif what == "snapshot":
            await self.snapshot_of(*args)
        else:
            await getattr(self, what)(*args)

    async def store_ids(self) -> list[int]:
        cond, args = in_list([s.code for s in self.shops], "text")
        return [int(r["id"]) for r in await fetch(f"SELECT id FROM store WHERE code {cond}", *args)]

    def phone(self, pick: int) -> tuple[str, bool]:
        if pick >= 0 and self.phones:
            return self.phones[pick % len(self.phones)], False
        return unique_phone(), True

    async def join(self, s: int, day: int, hour: int) -> None:
        phone = unique_phone()
        r = await self.client.post(
            "/pos/v1/members",
            json={"phone": phone, "name": "会员", "registered_at": at(day, hour), "babies": []},
            headers=self.shops[s].pos,
        )
        assert r.status_code == 201, r.text
        self.phones.append(phone)

    def receipt(self, pick: int, day: int, hour: int, bought: tuple[str, int, int]) -> Any:
        phone, new = self.phone(pick)
        if new:
            self.phones.append(phone)
        return self.receipt_for(phone, day, hour, bought)

    def receipt_for(self, phone: str, day: int, hour: int, bought: tuple[str, int, int]) -> Any:
        sku, quantity, fen = bought
        return {
            "receipt_id": f"R{uuid.uuid4().hex[:12]}",
            "member_phone": phone,
            "purchased_at": at(day, hour),
            "lines": [
                {"sku": sku, "quantity": quantity, "amount": f"{fen // 100}.{fen % 100:02d}"}
            ],
        }

    async def buy(self, s: int, receipts: list[Any]) -> None:
        shop = self.shops[s]
        if len(receipts) == 1:
            r = await self.client.post("/pos/v1/purchases", json=receipts[0], headers=shop.pos)
            assert r.status_code == 201, r.text
            return
        r = await self.client.post(
            "/pos/v1/purchases/batch", json={"purchases": receipts}, headers=shop.pos
        )
        assert r.status_code == 200, r.text
        assert {x["status"] for x in r.json()["results"]} == {"created"}, r.text

    async def task(
        self, pick: int, kind: str, due: int, status: str, contacted: bool, kept: bool
    ) -> None:
        """A task as a flow would have made it (at the member's home store, for its
        first advisor), in any status: the insert is what the trigger sees."""
        if self.phones:
            await in_write_transaction(
                lambda: self.make_task(pick, kind, due, status, contacted, kept)
            )

    async def make_task(
        self, pick: int, kind: str, due: int, status: str, contacted: bool, kept: bool
    ) -> None:
        rows = await fetch(
            "SELECT m.id, m.home_store, (SELECT MIN(a.id) FROM advisor a"
            " WHERE a.store = m.home_store) AS advisor FROM member m WHERE m.phone = {}",
            self.phones[pick % len(self.phones)],
        )
        if not rows:
            return
        row = rows[0]
        due_on = on(due)
        anchor = due_on + timedelta(days=7) if kind == "stage_up" else due_on
        topic = str(self.campaign) if kind == "campaign" else TOPICS.get(kind, "")
        made_at = datetime.combine(due_on - timedelta(days=10), datetime.min.time(), UTC)
        inserted = await fetch(
            "INSERT INTO task (kind, member, store, assignee, topic, reason, script, anchor_on,"
            " due_on, expires_on, priority, status, status_reason, cause, dedupe_key,"
            " contacted_at, reached, kept_on, done_at, result, created_at, updated_at)"
            " VALUES ({}, {}, {}, {}, {}, '', '', {}, {}, {}, 3, {}, {}, 'test', {}, {}, {},"
            " {}, {}, {}, {}, {}) RETURNING id",
            kind,
            row["id"],
            row["home_store"],
            row["advisor"],
            topic,
            anchor,
            due_on,
            due_on + timedelta(days=14),
            status,
            None if status == "open" else status,
            f"test:{uuid.uuid4().hex}",
            made_at + timedelta(days=10) if contacted else None,
            contacted,
            anchor if kept else None,
            made_at + timedelta(days=10) if status == "done" else None,
            "reached" if status == "done" and contacted else None,
            made_at,
            made_at,
        )
        self.tasks.append(int(inserted[0]["id"]))

    async def work(self, n: int, result: str, later: int, gap: int, sku: str) -> None:
        await self.call(n, result, later)
        await self.buy_after(n, later + gap, sku)

    async def buy_after(self, n: int, later: int, sku: str) -> None:
        task_id = self.pick(n)
        if task_id is None:
            return
        rows = await fetch(
            "SELECT m.phone, s.code, t.due_on FROM task t JOIN member m ON m.id = t.member"
            " JOIN store s ON s.id = m.home_store WHERE t.id = {}",
            task_id,
        )
        phone, store, due = rows[0]["phone"], rows[0]["code"], as_date(rows[0]["due_on"])
        shop = next(i for i, s in enumerate(self.shops) if s.code == store)
        day = (due + timedelta(days=later) - START).days
        await self.buy(shop, [self.receipt_for(phone, day, 14, (sku, 1, 33_800))])

    def pick(self, n: int) -> int | None:
        return self.tasks[n % len(self.tasks)] if self.tasks else None

    async def call(self, n: int, result: str, later: int) -> None:
        task_id = self.pick(n)
        if task_id is None:
            return
        rows = await fetch(
            "SELECT t.assignee, t.due_on, s.timezone FROM task t JOIN store s ON s.id = t.store"
            " WHERE t.id = {}",
            task_id,
        )
        if not rows or rows[0]["assignee"] is None:
            return
        day = (as_date(rows[0]["due_on"]) - START).days + later
        body = OutcomeIn(
            client_outcome_id=uuid.uuid4().hex,
            channel="phone",
            result=result,  # type: ignore[arg-type]
            recorded_at=datetime.fromisoformat(at(day, 9)),
        )
        try:
            await record_outcome(int(rows[0]["assignee"]), rows[0]["timezone"], task_id, body)
        except (Conflict, InvalidInput):
            pass  # a call the task cannot take: done already, or before it was made

    async def change(self, n: int, changes: list[tuple[str, int]]) -> None:
        task_id = self.pick(n)

        async def work() -> None:
            for what, k in changes:
                if task_id in self.tasks:  # not deleted by the change before
                    await self.change_one(task_id, what, k)

        await in_write_transaction(work)

    async def change_one(self, task_id: int, what: str, k: int) -> None:
        if what == "due":
            rows = await fetch("SELECT due_on FROM task WHERE id = {}", task_id)
            moved = clock.as_date(rows[0]["due_on"]) + timedelta(days=k)
            await fetch("UPDATE task SET due_on = {} WHERE id = {}", moved, task_id)
        elif what == "status":
            await fetch(
                "UPDATE task SET status = {} WHERE id = {}", STATUSES[k % len(STATUSES)], task_id
            )
        elif what == "kept":
            await fetch(
                "UPDATE task SET kept_on = CASE WHEN kept_on IS NULL THEN due_on ELSE NULL END"
                " WHERE id = {}",
                task_id,
            )
        elif what == "convert":
            free = await fetch(
                "SELECT p.id, p.total_fen FROM purchase p JOIN task t ON t.member = p.member"
                " WHERE t.id = {} AND NOT EXISTS (SELECT 1 FROM task c"
                " WHERE c.converted_purchase = p.id) ORDER BY p.id",
                task_id,
            )
            if free:
                chosen = free[k % len(free)]
                await fetch(
                    "UPDATE task SET converted_purchase = {}, converted_fen = {} WHERE id = {}",
                    chosen["id"],
                    chosen["total_fen"],
                    task_id,
                )
        elif what == "unconvert":
            await fetch(
                "UPDATE task SET converted_purchase = NULL, converted_fen = NULL WHERE id = {}",
                task_id,
            )
        elif what == "contact":
            await fetch(
                "UPDATE task SET contacted_at = {}, reached = {} WHERE id = {}",
                datetime.fromisoformat(at(k, 9)),
                k % 2 == 0,
                task_id,
            )
        elif what == "store":
            stores = await self.store_ids()
            await fetch(
                "UPDATE task SET store = {} WHERE id = {}", stores[k % len(stores)], task_id
            )
        else:
            # Only a task nothing refers to: no call on it, no score booked for it.
            referred = await fetch(
                "SELECT 1 FROM outcome WHERE task = {} OR callback_task = {}"
                " UNION ALL SELECT 1 FROM score_fact WHERE task = {}",
                task_id,
                task_id,
                task_id,
            )
            if not referred:
                await fetch("DELETE FROM task_event WHERE task = {}", task_id)
                await fetch("DELETE FROM task WHERE id = {}", task_id)
                self.tasks.remove(task_id)

    async def expire(self, day: int) -> None:
        cond, args = in_list(await self.store_ids(), "int")
        await in_write_transaction(
            lambda: transition(
                f"expires_on < {{}} AND store {cond}", [on(day), *args], "expired", "expired"
            )
        )

    async def snapshot_of(self, which: str, n: int, offset: int) -> None:
        """A snapshot on a day of the history: ``which`` is a purchase's, a member's
        joining day or START's, ``offset`` days on."""
        if which == "day":
            await self.snapshot(on(n))
            return
        cond, args = in_list(await self.store_ids(), "int")
        column, table = (
            ("purchased_on", "purchase") if which == "purchase" else ("joined_on", "member")
        )
        store = "store" if which == "purchase" else "home_store"
        rows = await fetch(
            f"SELECT {column} AS day FROM {table} WHERE {store} {cond} ORDER BY id", *args
        )
        if rows:
            await self.snapshot(as_date(rows[n % len(rows)]["day"]) + timedelta(days=offset))

    async def snapshot(self, *days: date) -> None:
        """Each day's snapshot of both zones' stores, as the daily job takes it."""
        self.snapshots.update(days)

        async def work() -> None:
            for day in days:
                for zone in ZONES:
                    await take_snapshot(day, zone)

        await in_write_transaction(work)


# --- the raw computation ------------------------------------------------------------


def as_date(value: Any) -> date:
    return clock.as_date(value if isinstance(value, date) else str(value)[:10])


async def raw_purchases(stores: list[int]) -> list[dict[str, Any]]:
    """Every purchase of a member of these stores' histories (a member may buy at
    another of them): id, member, store, when, day, total and the stored flag."""
    cond, args = in_list(stores, "int")
    return await fetch(
        "SELECT p.id, p.member, p.store, p.purchased_at, p.purchased_on, p.total_fen,"
        f" p.repeat FROM purchase p JOIN member m ON m.id = p.member WHERE m.home_store {cond}",
        *args,
    )


def repeats(purchases: list[dict[str, Any]]) -> dict[int, bool]:
    """RN3's flag by definition: within 90 days of the member's previous purchase (in
    the order they were made, the earlier id first at the same instant)."""
    by_member: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in purchases:
        by_member[int(p["member"])].append(p)
    flags = {}
    for rows in by_member.values():
        rows.sort(key=lambda p: (clock.as_datetime(p["purchased_at"]), int(p["id"])))
        previous: date | None = None
        for p in rows:
            day = as_date(p["purchased_on"])
            flags[int(p["id"])] = previous is not None and (day - previous).days <= 90
            previous = day
    return flags


def nonzero(table: dict[Any, list[int]]) -> dict[Any, tuple[int, ...]]:
    return {k: tuple(v) for k, v in table.items() if any(v)}


async def check_store_day(stores: list[int]) -> None:
    purchases = await raw_purchases(stores)
    flags = repeats(purchases)
    assert {int(p["id"]): bool(p["repeat"]) for p in purchases} == flags
    expected: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for p in purchases:
        if int(p["store"]) not in stores:
            continue
        fen = int(p["total_fen"])
        for key in keys_of(as_date(p["purchased_on"])):
            line = expected[(int(p["store"]), key)]
            line[0] += 1
            line[1] += fen
            line[2] += fen if flags[int(p["id"])] else 0
    cond, args = in_list(stores, "int")
    for m in await fetch(
        f"SELECT home_store, joined_on FROM member WHERE home_store {cond}", *args
    ):
        for key in keys_of(as_date(m["joined_on"])):
            expected[(int(m["home_store"]), key)][3] += 1
    kept = {
        (int(r["store"]), str(r["period"])): [int(r[f]) for f in DAY_FIGURES]
        for r in await fetch(
            f"SELECT store, period, {', '.join(DAY_FIGURES)} FROM store_day WHERE store {cond}",
            *args,
        )
    }
    assert nonzero(kept) == nonzero(expected)


async def check_task_summary(stores: list[int]) -> None:
    cond, args = in_list(stores, "int")
    expected: dict[tuple[int, str, str, int], list[int]] = defaultdict(lambda: [0] * 9)
    for t in await fetch(
        "SELECT store, kind, topic, due_on, status, contacted_at, reached, converted_purchase,"
        f" converted_fen, kept_on FROM task WHERE store {cond}",
        *args,
    ):
        campaign = int(t["topic"]) if t["kind"] == "campaign" else 0
        cancelled = t["status"] == "cancelled"
        figures = (
            1,
            cancelled,
            t["contacted_at"] is not None,
            bool(t["reached"]),
            t["status"] == "done",
            t["status"] == "expired",
            t["converted_purchase"] is not None,
            int(t["converted_fen"] or 0),
            t["kept_on"] is not None and not cancelled,
        )
        for key in keys_of(as_date(t["due_on"])):
            line = expected[(int(t["store"]), key, str(t["kind"]), campaign)]
            for i, value in enumerate(figures):
                line[i] += int(value)
    kept = {
        (int(r["store"]), str(r["period"]), str(r["kind"]), int(r["campaign"])): [
            int(r[f]) for f in TASK_FIGURES
        ]
        for r in await fetch(
            f"SELECT store, period, kind, campaign, {', '.join(TASK_FIGURES)} FROM task_summary"
            f" WHERE store {cond}",
            *args,
        )
    }
    assert nonzero(kept) == nonzero(expected)


async def check_snapshots(stores: list[int], snapshot_days: set[date]) -> None:
    cond, args = in_list(stores, "int")
    members = await fetch(
        f"SELECT id, home_store, joined_on FROM member WHERE home_store {cond}", *args
    )
    bought: dict[int, list[date]] = defaultdict(list)
    for p in await raw_purchases(stores):
        bought[int(p["member"])].append(as_date(p["purchased_on"]))
    for day in sorted(snapshot_days):
        expected = {s: [0, 0, 0] for s in stores}
        for m in members:
            if as_date(m["joined_on"]) > day:
                continue
            line = expected[int(m["home_store"])]
            line[0] += 1
            line[1] += any(0 <= (day - d).days < 90 for d in bought[int(m["id"])])
            line[2] += any(0 <= (day - d).days < 365 for d in bought[int(m["id"])])
        taken = {
            int(r["store"]): [int(r["members"]), int(r["active_3m"]), int(r["active_12m"])]
            for r in await fetch(
                "SELECT store, members, active_3m, active_12m FROM store_activity"
                f" WHERE day = {{}} AND store {cond}",
                day,
                *args,
            )
        }
        assert taken == expected, day


# --- the test -------------------------------------------------------------------------


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    # People and their receipts, then tasks on them, then whatever happens next.
    history=st.tuples(
        st.lists(st.one_of(join, buy, batch), min_size=3, max_size=6),
        st.lists(task, min_size=3, max_size=6),
        st.lists(event, min_size=6, max_size=14),
    ).map(lambda phases: [op for phase in phases for op in phase]),
    snapshot_days=st.lists(days, min_size=1, max_size=3),
    # Then receipts and members sent late, dated before those snapshots as often as not.
    late=st.lists(st.one_of(join, buy, batch), min_size=1, max_size=3),
)
async def test_summaries_equal_the_raw_computation(
    client: httpx.AsyncClient,
    products: None,
    history: list[tuple[Any, ...]],
    snapshot_days: list[int],
    late: list[tuple[Any, ...]],
) -> None:
    tag = uuid.uuid4().hex[:6]
    shops = [
        await make_shop(f"汇总甲{tag}", ZONES[0]),
        await make_shop(f"汇总甲{tag}", ZONES[1]),
        await make_shop(f"汇总乙{tag}", ZONES[0]),
    ]
    # A campaign long over: it makes no task of its own, its tasks are made here.
    campaign, _ = await create_campaign(
        f"汇总{tag}", on(-30), on(-1), {"store_codes": [s.code for s in shops]}, "您好"
    )
    h = History(client, shops, campaign)
    for op in history:
        await h.apply(op)
    await h.snapshot(*(on(day) for day in snapshot_days))
    for op in late:
        await h.apply(op)
    # Every snapshot taken again: the stored one must be what is true now.
    await h.snapshot(*sorted(h.snapshots))

    stores = await h.store_ids()
    await check_store_day(stores)
    await check_task_summary(stores)
    await check_snapshots(stores, h.snapshots)
