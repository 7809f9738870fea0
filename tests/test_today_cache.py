"""The advisor list cache: served from memory until one of the advisor's tasks
changes, which PostgreSQL tells every API process about; never stale for long."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx

from advisor_api.today_cache import TodayCache
from core.db import fetch
from tests.conftest import BACKEND, Shop, receipt, unique_phone


async def test_a_list_is_recomputed_once_the_advisors_tasks_change(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    cache = TodayCache(ttl_seconds=60)
    await cache.start()
    advisor = (await fetch("SELECT id FROM advisor WHERE code = {}", shop.advisors[0]))[0]["id"]
    other = (await fetch("SELECT id FROM advisor WHERE code = {}", shop.advisors[1]))[0]["id"]
    computed: list[int] = []

    async def compute() -> bytes:
        computed.append(1)
        return b"[]"

    try:
        day = date(2026, 11, 23)
        await cache.get(advisor, day, compute)
        await cache.get(advisor, day, compute)
        if BACKEND != "postgres":  # no notifications, so no cache
            assert len(computed) == 2
            return
        assert len(computed) == 1

        async def purchase_for(advisor_code: str) -> None:
            phone = unique_phone()
            await client.post(
                "/pos/v1/members",
                json={"phone": phone, "advisor_code": advisor_code},
                headers=shop.pos,
            )
            await client.post("/pos/v1/purchases", json=receipt(phone=phone), headers=shop.pos)

        await purchase_for(shop.advisors[1])  # someone else's tasks: the list stays
        await asyncio.sleep(0.2)
        await cache.get(advisor, day, compute)
        assert len(computed) == 1
        await cache.get(other, day, compute)
        assert len(computed) == 2

        await purchase_for(shop.advisors[0])
        for _ in range(50):
            await asyncio.sleep(0.05)
            await cache.get(advisor, day, compute)
            if len(computed) == 3:
                break
        assert len(computed) == 3
    finally:
        await cache.stop()
