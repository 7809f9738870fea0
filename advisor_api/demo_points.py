"""The demo chain's points as money: HQ's double-points promotions (one over, one
running), members spending points at the till now and then, and the odd receipt
brought back, all through the services the till's API uses."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from core.errors import Conflict
from members import points, returns, views
from members.promotions import create_promotion
from members.schemas import GoodsLineIn, PromotionIn, PurchaseIn, RedemptionIn, ReturnIn
from members.stores import StoreRef

REDEEM_SHARE = 0.12  # of receipts, the member spends points at the same visit
RETURN_SHARE = 0.02  # of receipts, brought back the next visit
GIFTS = (("CE-250", "68.00"), ("CA-WIPE", "59.90"), ("PB-30", "198.00"))


async def promotions(today: date) -> None:
    """An autumn double-points week on cereal and probiotics, over; and the winter
    probiotic push running in 华南 now (the campaign's script promises it)."""
    for promotion in (
        PromotionIn(
            promotion_id="DEMO-AUTUMN-2X",
            name="秋季辅食双倍积分周",
            starts_on=today - timedelta(days=40),
            ends_on=today - timedelta(days=34),
            multiplier=2,
            categories=["cereal", "probiotic"],
        ),
        PromotionIn(
            promotion_id="DEMO-WINTER-PB",
            name="冬季益生菌双倍积分",
            starts_on=today - timedelta(days=4),
            ends_on=today + timedelta(days=12),
            multiplier=2,
            skus=["PB-30"],
            region="华南",
        ),
    ):
        await create_promotion(promotion)


async def at_the_till(
    store: StoreRef, batch: list[PurchaseIn], at: datetime, rng: random.Random
) -> tuple[int, int]:
    """After a day's receipts: some members spend points on goods; a few bring back an
    earlier receipt of that day. Returns (redemptions, returns)."""
    redeemed = returned = 0
    for receipt in batch:
        if rng.random() < REDEEM_SHARE:
            redeemed += await _redeem(store, receipt, at, rng)
        if rng.random() < RETURN_SHARE:
            await returns.record_return(
                store,
                ReturnIn(
                    return_id=f"RT-{receipt.receipt_id}",
                    receipt_id=receipt.receipt_id,
                    returned_at=at + timedelta(minutes=5),
                    lines=None if rng.random() < 0.5 else [_first_line(receipt)],
                ),
            )
            returned += 1
    return redeemed, returned


def _first_line(receipt: PurchaseIn) -> GoodsLineIn:
    line = receipt.lines[0]
    return GoodsLineIn(sku=line.sku, quantity=1, amount=_one_of(line.amount, line.quantity))


def _one_of(amount: str, quantity: int) -> str:
    fen = round(float(amount) * 100) // quantity
    return f"{fen // 100}.{fen % 100:02d}"


async def _redeem(store: StoreRef, receipt: PurchaseIn, at: datetime, rng: random.Random) -> int:
    balance = (await views.member_for_till(receipt.member_phone)).points_balance
    if balance < 500:
        return 0
    sku, price = rng.choice(GIFTS)
    try:
        await points.redeem_points(
            store,
            RedemptionIn(
                redemption_id=f"RD-{receipt.receipt_id}",
                member_phone=receipt.member_phone,
                points=min(balance, rng.choice((500, 800, 1000))),
                redeemed_at=at,
                lines=[GoodsLineIn(sku=sku, quantity=1, amount=price)],
            ),
        )
    except Conflict:
        return 0
    return 1
