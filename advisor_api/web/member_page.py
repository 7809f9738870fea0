"""会员全知道: the member at a glance on a phone (babies and their next stage, run-out
days by category, points and what is about to lapse, every task and its outcome,
the open ones with their buttons), and the member search behind the phone page's
search box. Advisors work from it; an owner reads the same page for their stores'
members, without the buttons."""

from __future__ import annotations

from datetime import UTC, timedelta, tzinfo
from functools import partial
from typing import Any

from advisor_api.web.common import KINDS_ZH, RESULTS_ZH
from core import clock
from core.errors import InvalidInput
from members.accounts import Principal
from members.search import search_members
from members.views import expiring_soon
from tasks import queries

# Results as a list reads them: the buttons' words, and the till's own.
RESULT_NAMES = {**RESULTS_ZH, "purchased": "已购买"}
STATUSES_ZH = {"open": "待跟进", "done": "已完成", "expired": "已过期", "cancelled": "已取消"}
SEARCH_PAGE = 20
# The page lists a member's whole history of calls: a few a month, so this is years.
PAGE_TASKS = 200


def local_time(tz: tzinfo, instant: object, fmt: str) -> str:
    """A stored instant as the store's clock reads it."""
    at = clock.as_datetime(instant)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(tz).strftime(fmt)


async def member_context(who: Principal, member_id: int, readonly: bool) -> dict[str, Any]:
    """The member page's figures, for a member of one of ``who``'s stores (any store
    for HQ); another store's member is not found."""
    view = await queries.member_view(who.visible_stores, member_id, 0, 5, PAGE_TASKS)
    # An advisor's store is the member's; an owner's page reads the chain's clock.
    tz = clock.zone(who.timezone or clock.DEFAULT_TIMEZONE)
    today = clock.today(tz)
    return {
        "who": who,
        "v": view,
        "readonly": readonly,
        "today": today,
        "at": partial(local_time, tz),
        "soon": (await expiring_soon([member_id], today)).get(member_id, []),
        "open": [t for t in view.tasks if t.status == "open"],
        "past": [t for t in view.tasks if t.status != "open"],
        "order_tasks": set(),  # open tasks that are an O2O order's delivery
        "kinds": KINDS_ZH,
        "results": RESULTS_ZH,
        "result_names": RESULT_NAMES,
        "statuses": STATUSES_ZH,
        "tomorrow": (today + timedelta(days=1)).isoformat(),
        "now": clock.now().isoformat(),
    }


async def search_context(
    who: Principal, q: str | None, offset: int, home: str, action: str, member_href: str
) -> dict[str, Any]:
    """The search page: the box, and (for a query) a page of members of ``who``'s
    stores; a query that reads as nothing says so beside the box."""
    found, problem = None, None
    if q:
        try:
            found = await search_members(who.store_ids, q[:50], SEARCH_PAGE, max(offset, 0))
        except InvalidInput:
            problem = "请输入手机尾号 4 位、完整手机号或姓名的开头"
    return {
        "who": who,
        "q": q or "",
        "found": found,
        "problem": problem,
        "home": home,
        "action": action,
        "member_href": member_href,
    }
