"""The store owner's pages: the store's figures, ranks, a 30-day chart, its PK
head-to-heads and the advisors' league table. HQ may look at any store."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from advisor_api.params import CodePath, PeriodQuery
from advisor_api.web.common import page_period, page_user
from core import clock
from core.errors import NotFound
from core.periods import month_of, week_key
from incentives import boards
from incentives.queries import store_cards, store_days
from members import queries as members
from members.accounts import Principal
from tasks.dashboard import store_dashboard

TREND_DAYS = 30


async def trend(store_id: int, tz: str, days: int = TREND_DAYS) -> dict[str, Any]:
    """The store's last ``days`` days of points and new members, as SVG geometry."""
    today = clock.today(clock.zone(tz))
    first = today - timedelta(days=days - 1)
    keys = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    rows = await store_days(store_id, keys[0], keys[-1])
    points = [rows[k]["points"] if k in rows else 0 for k in keys]
    joined = [rows[k]["new_members"] if k in rows else 0 for k in keys]
    top = max(points) or 1
    width, height = 300, 80
    step = width / (days - 1)
    line = " ".join(f"{i * step:.1f},{height - p * height / top:.1f}" for i, p in enumerate(points))
    return {
        "line": line,
        "bars": [(i * step, n) for i, n in enumerate(joined) if n],
        "first": keys[0],
        "last": keys[-1],
        "max": top,
        "total_points": sum(points),
        "total_members": sum(joined),
        "width": width,
        "height": height,
    }


async def own_stores(who: Principal) -> list[dict[str, Any]]:
    """An owner's stores (their login already names them), by code."""
    cards = await store_cards(sorted(who.store_ids))
    return sorted(cards.values(), key=lambda card: card["store_code"])


class OwnerPages(Controller):
    path = "/owner"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        who = await page_user(request, "owner", "hq")
        if who.role == "hq":
            first = await members.first_store_code()
            codes = [first] if first else []
        else:
            codes = [card["store_code"] for card in await own_stores(who)]
        if not codes:
            raise NotFound("没有门店")
        return Redirect(path=f"/web/owner/stores/{codes[0]}")

    @get("/stores/{code:str}")
    async def store(
        self,
        request: Request[Any, Any, Any],
        code: CodePath,
        period: PeriodQuery = None,
        board: Annotated[str, QueryParameter(pattern="^(store|region|national)$")] = "store",
    ) -> Template:
        who = await page_user(request, "owner", "hq")
        try:
            store = await members.visible_store(code, who.visible_stores)
        except NotFound:
            raise NotFound(f"没有门店 {code},或不是您的门店") from None
        chosen = page_period(period, store["timezone"])
        board_scope = {
            "store": f"store:{code}",
            "region": f"region:{store['region']}",
            "national": "national",
        }[board]
        national = await boards.store_table(who, "national", chosen, 1, False)
        regional = await boards.store_table(who, f"region:{store['region']}", chosen, 1, False)
        today = clock.today(clock.zone(store["timezone"]))
        return Template(
            "owner_store.html",
            context={
                "who": who,
                "store": store,
                "stores": await own_stores(who) if who.role == "owner" else [],
                "d": await store_dashboard(code, who.visible_stores, chosen),
                "period": chosen,
                "periods": [
                    ("今天", today.isoformat()),
                    ("本周", week_key(today)),
                    ("本月", month_of(today).name),
                ],
                "board": board,
                "table": await boards.advisor_table(who, board_scope, chosen, 20),
                "rank_national": next((m for m in national.mine if m.store_code == code), None),
                "rank_regional": next((m for m in regional.mine if m.store_code == code), None),
                "trend": await trend(store["id"], store["timezone"]),
                "pk": await boards.store_head_to_heads(
                    store["id"], clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
                ),
            },
        )
