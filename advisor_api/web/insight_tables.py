"""What the insight pages read and the tables they show: a ``Source`` reads each
service once for a page (or for the one table a CSV download asks for), and each
table is built from it the same way for the page and for the CSV."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from advisor_api.web import charts
from advisor_api.web.common import KINDS_ZH
from advisor_api.web.tables import Column, Table
from core.periods import Period, month_of
from incentives import boards
from incentives.schemas import StoreTable, TargetRow
from incentives.targets import store_targets, target_totals
from members.accounts import Principal
from members.scopes import Scope
from tasks.insights import (
    MemberInsights,
    PlaybookFigures,
    PlaybookInsights,
    TrendPoint,
    member_insights,
    member_trend,
    playbook_insights,
)

TREND_MONTHS = 6
LEAGUE_ROWS = 20


async def trend_to(scope: Scope, month: Period, today: date) -> list[TrendPoint]:
    """The six months ending with ``month`` (this month's activity as of yesterday)."""
    return await member_trend(
        scope, today, TREND_MONTHS, last=min(month, month_of(today), key=lambda p: p.first)
    )


class Source:
    """What one page (or one of its CSV tables) reads, each read at most once."""

    def __init__(self, who: Principal, scope: Scope, month: Period, today: date) -> None:
        self.who, self.scope, self.month, self.today = who, scope, month, today
        self.by = "region" if scope.kind == "national" else "store"
        self._memo: dict[str, Any] = {}

    async def _once(self, key: str, read: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._memo:
            self._memo[key] = await read()
        return self._memo[key]

    async def playbook(self) -> PlaybookInsights:
        found: PlaybookInsights = await self._once(
            "playbook", lambda: playbook_insights(self.scope, self.month)
        )
        return found

    async def members(self) -> MemberInsights:
        found: MemberInsights = await self._once(
            "members", lambda: member_insights(self.scope, self.month, self.by)
        )
        return found

    async def trend(self) -> list[TrendPoint]:
        found: list[TrendPoint] = await self._once(
            "trend", lambda: trend_to(self.scope, self.month, self.today)
        )
        return found

    async def targets(self) -> list[TargetRow]:
        """By region for the chain (one grouped statement), by store for a region."""
        found: list[TargetRow] = await self._once(
            "targets",
            lambda: (
                target_totals(self.scope, self.month.name, "region")
                if self.by == "region"
                else store_targets(self.scope, self.month.name)
            ),
        )
        return found

    async def target_total(self) -> TargetRow:
        (total,) = await target_totals(self.scope, self.month.name, None)
        return total

    async def league(self) -> StoreTable:
        found: StoreTable = await self._once(
            "league",
            lambda: boards.store_table(self.who, self.scope.text, self.month, LEAGUE_ROWS, False),
        )
        return found

    def link(self, key: str) -> str:
        """Where a region's or a store's name leads: one level down."""
        if self.by == "region":
            return "/web/region/?" + urlencode({"region": key, "period": self.month.name})
        return f"/web/owner/stores/{key}?period={self.month.name}"


# --- the tables --------------------------------------------------------------


PLAYBOOK_COLUMNS = [
    Column("made", "生成"),
    Column("due", "应跟进"),
    Column("contacted", "已跟进"),
    Column("reached", "已联系上"),
    Column("done", "完成"),
    Column("expired", "过期"),
    Column("converted", "转化"),
    Column("converted_amount", "转化金额(元)", "yuan"),
    Column("completion_rate", "完成率", "share"),
    Column("conversion_rate", "转化率", "share"),
]
MEMBER_COLUMNS = [
    Column("members", "会员"),
    Column("new_members", "新会员"),
    Column("active_3m", "近3月活跃"),
    Column("active_12m", "近12月活跃"),
    Column("receipts", "小票"),
    Column("revenue", "营业额(元)", "yuan"),
    Column("average_ticket", "客单价(元)", "yuan"),
    Column("rn3", "RN3", "share"),
    Column("stage_up_due", "转段应跟进"),
    Column("stage_up_kept", "转段留存"),
    Column("stage_up_retention", "转段留存率", "share"),
]


def _playbook_row(figures: PlaybookFigures) -> dict[str, Any]:
    return {c.key: getattr(figures, c.key) for c in PLAYBOOK_COLUMNS}


async def split_table(source: Source) -> Table:
    found = await source.members()
    first = [Column("key", "区域", "text")]
    if source.by == "store":
        first = [Column("key", "门店", "text"), Column("name", "名称", "text")]
    rows = [
        {
            "key": row.key,
            "name": row.name,
            "_href": source.link(row.key),
            **{c.key: getattr(row, c.key) for c in MEMBER_COLUMNS},
        }
        for row in found.rows
    ]
    name, title = ("regions", "各区域") if source.by == "region" else ("stores", "各门店")
    return Table(name, title, first + MEMBER_COLUMNS, rows)


async def kinds_table(source: Source) -> Table:
    rows = [
        {"name": KINDS_ZH.get(k.kind, k.kind), "kind": k.kind, **_playbook_row(k)}
        for k in (await source.playbook()).kinds
    ]
    columns = [Column("name", "任务类型", "text"), Column("kind", "代码", "text")]
    return Table("kinds", "任务类型", [*columns, *PLAYBOOK_COLUMNS], rows)


async def campaigns_table(source: Source) -> Table:
    rows = [
        {"campaign": c.name or f"活动 {c.campaign_id}", "id": c.campaign_id, **_playbook_row(c)}
        for c in (await source.playbook()).campaigns
    ]
    columns = [Column("campaign", "活动", "text"), Column("id", "编号"), *PLAYBOOK_COLUMNS]
    return Table("campaigns", "季节关怀活动", columns, rows)


TARGET_COLUMNS = [
    Column("target_new_members", "新会员目标"),
    Column("new_members", "新会员实际"),
    Column("new_members_attainment", "新会员达成率", "share"),
    Column("target_points", "积分目标"),
    Column("points", "积分实际"),
    Column("points_attainment", "积分达成率", "share"),
]


def _target_row(line: TargetRow, href: str) -> dict[str, Any]:
    return {
        "key": line.code,
        "name": line.name,
        "_href": href,
        "_bars": charts.target_bars(line),
        "target_new_members": line.target.new_members if line.target else None,
        "new_members": line.actual.new_members,
        "new_members_attainment": line.attainment.new_members,
        "target_points": line.target.points if line.target else None,
        "points": line.actual.points,
        "points_attainment": line.attainment.points,
    }


async def targets_table(source: Source) -> Table:
    lines = await source.targets()
    first = [Column("key", "区域", "text")]
    if source.by == "store":
        first = [Column("key", "门店", "text"), Column("name", "名称", "text")]
    rows = [_target_row(line, source.link(line.code)) for line in lines]
    title = f"{source.month.name} 目标达成"
    return Table("targets", title, first + TARGET_COLUMNS, rows, param="t")


TREND_COLUMNS = [
    Column("month", "月份", "text"),
    Column("members", "会员"),
    Column("active_3m", "近3月活跃"),
    Column("active_12m", "近12月活跃"),
    Column("rn3", "RN3", "share"),
    Column("stage_up_due", "转段应跟进"),
    Column("stage_up_kept", "转段留存"),
    Column("stage_up_retention", "转段留存率", "share"),
]


async def trend_table(source: Source) -> Table:
    rows = [{c.key: getattr(p, c.key) for c in TREND_COLUMNS} for p in await source.trend()]
    return Table("trend", "近六个月", TREND_COLUMNS, rows, sortable=False)


LEAGUE_COLUMNS = [
    Column("rank", "名次"),
    Column("store_code", "门店", "text"),
    Column("store_name", "名称", "text"),
    Column("score", "得分", "yuan"),
    Column("new_members", "新会员"),
    Column("points", "积分"),
    Column("tasks_done", "完成任务"),
    Column("tasks_converted", "转化"),
    Column("rank_change", "名次变化", "change"),
]


async def league_table(source: Source) -> Table:
    rows = [
        {**{c.key: getattr(e, c.key) for c in LEAGUE_COLUMNS}, "_href": source.link(e.store_code)}
        for e in (await source.league()).entries
    ]
    return Table("league", "门店排行", LEAGUE_COLUMNS, rows, sortable=False, link="store_code")


TableOf = Callable[[Source], Awaitable[Table]]
HQ_TABLES: dict[str, TableOf] = {
    "regions": split_table,
    "targets": targets_table,
    "kinds": kinds_table,
    "campaigns": campaigns_table,
    "trend": trend_table,
}
REGION_TABLES: dict[str, TableOf] = {
    **{k: v for k, v in HQ_TABLES.items() if k != "regions"},
    "stores": split_table,
    "league": league_table,
}
