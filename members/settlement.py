"""What the brand owes each store (积分结算), month by month: points issued, redeemed,
reversed and expired at the store, and the value of what was redeemed there at the
rate each redemption was made at. A month is read live from the points ledger (its
rows booked in that month) until its close freezes the lines; a row written after
that is booked in the month it was written in, as an adjustment."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from core import clock
from core.db import fetch, in_list
from core.money import yuan_text
from members.queries import STORES
from members.schemas import (
    GoodsLineIn,
    RedemptionView,
    Settlement,
    SettlementFigures,
    SettlementLineOut,
    StoreSettlement,
)

COLUMNS = ("points_issued", "points_redeemed", "points_reversed", "points_expired")
LIVE = (
    "SELECT l.store,"
    " SUM(CASE WHEN l.kind = 'earn' THEN l.points ELSE 0 END) AS points_issued,"
    " -SUM(CASE WHEN l.kind = 'redeem' THEN l.points ELSE 0 END) AS points_redeemed,"
    " -SUM(CASE WHEN l.kind = 'reverse' THEN l.points ELSE 0 END) AS points_reversed,"
    " -SUM(CASE WHEN l.kind = 'expire' THEN l.points ELSE 0 END) AS points_expired,"
    " SUM(COALESCE(r.value_fen, 0)) AS redeemed_value_fen"
    " FROM points_ledger l LEFT JOIN redemption r ON r.id = l.redemption"
    " WHERE l.booked_month = {}{where} GROUP BY l.store"
)


async def is_settled(month: str) -> bool:
    return bool(await fetch("SELECT 1 FROM settled_month WHERE month = {}", month))


async def freeze(month: str) -> int:
    """The month's close: its lines as they stand, kept. Run in the close's
    transaction, which holds the books alone. Returns the lines frozen."""
    await fetch(
        "INSERT INTO settled_month (month, settled_at) VALUES ({}, {})"
        " ON CONFLICT (month) DO NOTHING",
        month,
        clock.now(),
    )
    rows = await fetch(
        "INSERT INTO settlement_line (month, store, points_issued, points_redeemed,"
        " points_reversed, points_expired, redeemed_value_fen) SELECT {}, x.store,"
        " x.points_issued, x.points_redeemed, x.points_reversed, x.points_expired,"
        f" x.redeemed_value_fen FROM ({LIVE.format('{}', where='')}) AS x WHERE true"
        " ON CONFLICT (month, store) DO NOTHING RETURNING id",
        month,
        month,
    )
    return len(rows)


async def _lines(month: str, store_ids: list[int] | None) -> tuple[bool, list[dict[str, Any]]]:
    where, args = "", list[Any]()
    frozen = await is_settled(month)
    if store_ids is not None:
        cond, args = in_list(store_ids, "int")
        where = f" AND {'x' if frozen else 'l'}.store {cond}"
    if frozen:
        body = (
            "SELECT x.store, x.points_issued, x.points_redeemed, x.points_reversed,"
            f" x.points_expired, x.redeemed_value_fen FROM settlement_line x"
            f" WHERE x.month = {{}}{where}"
        )
    else:
        body = LIVE.replace("{where}", where)
    rows = await fetch(
        f"SELECT s.code, s.name, s.region, b.* FROM ({body}) AS b JOIN {STORES} s"
        " ON s.id = b.store ORDER BY s.code",
        month,
        *args,
    )
    return frozen, rows


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{c: int(row.get(c) or 0) for c in COLUMNS},
        "redeemed_value": yuan_text(int(row.get("redeemed_value_fen") or 0)),
    }


async def settlement(month: str, store_ids: list[int] | None = None) -> Settlement:
    frozen, rows = await _lines(month, store_ids)
    total = {c: sum(int(r[c] or 0) for r in rows) for c in COLUMNS}
    value = sum(int(r["redeemed_value_fen"] or 0) for r in rows)
    return Settlement(
        period=month,
        frozen=frozen,
        stores=[
            SettlementLineOut(
                store_code=r["code"], store_name=r["name"], region=r["region"], **_figures(r)
            )
            for r in rows
        ],
        total=SettlementFigures(**total, redeemed_value=yuan_text(value)),
    )


def settlement_csv(found: Settlement) -> bytes:
    """The settlement for Excel: UTF-8 with a byte-order mark, Chinese headings."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "月份",
            "门店编码",
            "门店",
            "大区",
            "发放积分",
            "兑换积分",
            "退货扣回",
            "过期积分",
            "应付门店金额(元)",
        ]
    )
    for line in found.stores:
        writer.writerow(
            [
                found.period,
                line.store_code,
                line.store_name,
                line.region,
                line.points_issued,
                line.points_redeemed,
                line.points_reversed,
                line.points_expired,
                line.redeemed_value,
            ]
        )
    t = found.total
    writer.writerow(
        [
            found.period,
            "",
            "合计",
            "",
            t.points_issued,
            t.points_redeemed,
            t.points_reversed,
            t.points_expired,
            t.redeemed_value,
        ]
    )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


async def store_settlement(store_id: int, month: str) -> StoreSettlement:
    """A store's own line and the redemptions it is owed for (booked that month)."""
    found = await settlement(month, [store_id])
    card = await fetch(f"SELECT code, name, region FROM {STORES} s WHERE s.id = {{}}", store_id)
    line = (
        found.stores[0]
        if found.stores
        else SettlementLineOut(
            store_code=card[0]["code"],
            store_name=card[0]["name"],
            region=card[0]["region"],
            points_issued=0,
            points_redeemed=0,
            points_reversed=0,
            points_expired=0,
            redeemed_value="0.00",
        )
    )
    rows = await fetch(
        "SELECT r.id, r.redemption_id, m.phone, r.points, r.value_fen, r.redeemed_at"
        " FROM points_ledger l JOIN redemption r ON r.id = l.redemption"
        " JOIN member m ON m.id = r.member WHERE l.booked_month = {} AND l.store = {}"
        " AND l.kind = 'redeem' ORDER BY r.redeemed_at, r.id",
        month,
        store_id,
    )
    goods = await _goods([int(r["id"]) for r in rows])
    return StoreSettlement(
        period=month,
        frozen=found.frozen,
        line=line,
        redemptions=[
            RedemptionView(
                redemption_id=r["redemption_id"],
                member_phone=_masked(r["phone"]),
                points=int(r["points"]),
                value=yuan_text(int(r["value_fen"])),
                redeemed_at=r["redeemed_at"]
                if isinstance(r["redeemed_at"], datetime)
                else datetime.fromisoformat(str(r["redeemed_at"])),
                lines=goods.get(int(r["id"]), []),
            )
            for r in rows
        ],
    )


async def _goods(redemption_ids: list[int]) -> dict[int, list[GoodsLineIn]]:
    if not redemption_ids:
        return {}
    cond, args = in_list(redemption_ids, "bigint")
    found: dict[int, list[GoodsLineIn]] = {}
    for r in await fetch(
        "SELECT l.redemption, p.sku, l.quantity, l.amount_fen FROM redemption_line l"
        f" JOIN product p ON p.id = l.product WHERE l.redemption {cond}"
        " ORDER BY l.redemption, l.line_no",
        *args,
    ):
        amount = None if r["amount_fen"] is None else yuan_text(int(r["amount_fen"]))
        found.setdefault(int(r["redemption"]), []).append(
            GoodsLineIn(r["sku"], int(r["quantity"]), amount)
        )
    return found
