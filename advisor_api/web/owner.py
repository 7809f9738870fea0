"""The store owner's pages: the store's figures, ranks, the month's targets, a 30-day
chart, its PK head-to-heads and the advisors' league table. HQ may look at any store,
a regional marketer at their region's (without the national tables: theirs is the
region)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from advisor_api.params import CodePath, Id, Offset, PeriodQuery, SearchText
from advisor_api.web import charts
from advisor_api.web.common import page_period, page_user
from advisor_api.web.member_page import member_context, search_context
from core import clock
from core.errors import NotFound
from core.periods import Period, month_of, week_key
from incentives import boards
from incentives.queries import store_cards, store_days
from incentives.schemas import StoreEntry
from incentives.targets import target_table
from members import queries as members
from members.accounts import Principal
from members.scopes import scope_for
from members.settlement import store_settlement
from orders.queries import store_orders
from tasks.dashboard import store_dashboard

TREND_DAYS = 30
ORDERS_SHOWN = 20  # the waiting ones first, then the latest
BOARDS = {"store": "本店", "region": "区域", "national": "全国"}


async def trend(store_id: int, tz: str, days: int = TREND_DAYS) -> dict[str, Any]:
    """The store's last ``days`` days of points and new members, as a chart."""
    today = clock.today(clock.zone(tz))
    first = today - timedelta(days=days - 1)
    keys = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    rows = await store_days(store_id, keys[0], keys[-1])
    points = [rows[k]["points"] if k in rows else 0 for k in keys]
    joined = [rows[k]["new_members"] if k in rows else 0 for k in keys]
    return {
        "chart": charts.day_chart(keys, points, joined),
        "first": keys[0],
        "last": keys[-1],
        "max": max(points),
        "total_points": sum(points),
        "total_members": sum(joined),
    }


async def month_targets(who: Principal, code: str, month: str) -> dict[str, Any]:
    """The store's month target and each advisor's (their own, or their share of the
    store's), as progress bars."""
    scope = await scope_for(who, f"store:{code}")
    (store,) = (await target_table(scope, month, "store")).rows
    advisors = (await target_table(scope, month, "advisor")).rows
    return {
        "month": month,
        "store": charts.target_bars(store),
        "advisors": [(a, charts.target_bars(a)) for a in advisors],
    }


async def _rank(who: Principal, scope: str, period: Period, code: str) -> StoreEntry | None:
    table = await boards.store_table(who, scope, period, 1, False)
    return next((m for m in table.mine if m.store_code == code), None)


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

    @get("/members/{member_id:int}")
    async def member(self, request: Request[Any, Any, Any], member_id: Id) -> Template:
        """会员全知道 for a member of the owner's stores: to read, not to call."""
        who = await page_user(request, "owner")
        return Template("member.html", context=await member_context(who, member_id, True))

    @get("/search")
    async def search(
        self, request: Request[Any, Any, Any], q: SearchText = None, offset: Offset = 0
    ) -> Template:
        who = await page_user(request, "owner")
        context = await search_context(
            who, q, offset, "/web/owner/", "/web/owner/search", "/web/owner/members/"
        )
        return Template("member_search.html", context=context)

    @get("/stores/{code:str}")
    async def store(
        self,
        request: Request[Any, Any, Any],
        code: CodePath,
        period: PeriodQuery = None,
        board: Annotated[str, QueryParameter(pattern="^(store|region|national)$")] = "store",
    ) -> Template:
        who = await page_user(request, "owner", "hq", "region")
        try:
            store = await members.visible_store(code, who.visible_stores)
        except NotFound:
            raise NotFound(f"没有门店 {code},或不是您的门店") from None
        chosen = page_period(period, store["timezone"])
        # A regional marketer's tables stop at the region.
        shown = [b for b in BOARDS if b != "national" or who.role != "region"]
        board = board if board in shown else "region"
        board_scope = {
            "store": f"store:{code}",
            "region": f"region:{store['region']}",
            "national": "national",
        }[board]
        today = clock.today(clock.zone(store["timezone"]))
        accept_minutes = request.app.state.settings.o2o_accept_minutes
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
                "boards": [(b, BOARDS[b]) for b in shown],
                "table": await boards.advisor_table(who, board_scope, chosen, 20),
                "rank_national": None
                if "national" not in shown
                else await _rank(who, "national", chosen, code),
                "rank_regional": await _rank(who, f"region:{store['region']}", chosen, code),
                "trend": await trend(store["id"], store["timezone"]),
                "targets": await month_targets(who, code, month_of(chosen.first).name),
                "settlement": await store_settlement(store["id"], month_of(chosen.first).name),
                "orders": await store_orders(store["id"], None, accept_minutes, ORDERS_SHOWN),
                "accept_minutes": accept_minutes,
                "pk": await boards.store_head_to_heads(
                    store["id"], clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
                ),
            },
        )
