"""The insight pages: HQ's (the chain, by region) and a region's (营销通: the region,
by store), each with the month's targets as progress bars, the playbook funnel per
task kind, the campaigns, a six-month trend, a table sortable by any figure and, for a
region, its stores' league table. Every table downloads as CSV. The figures come
from the same services as ``/v1/insights`` and ``/v1/targets``, with the same scoping:
a regional login sees its own region only."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from advisor_api.params import PRINTABLE
from advisor_api.web import charts
from advisor_api.web.common import KINDS_ZH, page_user
from advisor_api.web.insight_tables import (
    HQ_TABLES,
    REGION_TABLES,
    TREND_MONTHS,
    Source,
    TableOf,
    campaigns_table,
    kinds_table,
    league_table,
    split_table,
    targets_table,
    trend_table,
)
from advisor_api.web.tables import Table, attachment, yuan_text
from core import clock
from core.errors import NotFound
from core.periods import MONTH_PATTERN, Period, month_of, parse_period
from members.accounts import Principal
from members.registry import list_stores
from members.scopes import Scope, scope_for
from tasks.insights import PlaybookFigures, TrendPoint, months_back

MonthText = Annotated[str | None, QueryParameter(max_length=10)]
SortKey = Annotated[str | None, QueryParameter(pattern=r"^[a-z_0-9]{1,32}$")]
Direction = Annotated[str | None, QueryParameter(pattern=r"^(asc|desc)$")]
RegionName = Annotated[str | None, QueryParameter(min_length=1, max_length=50, pattern=PRINTABLE)]
TableName = Annotated[str, QueryParameter(pattern=r"^[a-z]{1,16}$")]


def page_month(text: str | None, today: date) -> Period:
    """The month asked for; this month for none, a malformed one or one yet to come."""
    if text and re.fullmatch(MONTH_PATTERN, text):
        try:
            chosen = parse_period(text)
        except ValueError:
            chosen = None
        if chosen is not None and chosen.first <= today:
            return chosen
    return month_of(today)


# --- the page -----------------------------------------------------------------


async def page_context(source: Source, query: dict[str, str], csv: str) -> dict[str, Any]:
    """Everything insights.html shows. ``query`` is the page's own (period, region and
    the tables' sort), which every link keeps; ``csv`` where its tables download."""
    playbook, members, trend = await source.playbook(), await source.members(), await source.trend()
    base = {k: v for k, v in query.items() if k in ("region", "period")}
    tables = {
        "split": (await split_table(source)).sorted_by(query.get("sort"), query.get("dir")),
        "targets": (await targets_table(source)).sorted_by(query.get("tsort"), query.get("tdir")),
        "kinds": await kinds_table(source),
        "campaigns": await campaigns_table(source),
        "trend": await trend_table(source),
    }
    if source.by == "store":
        tables["league"] = await league_table(source)
    return {
        "who": source.who,
        "pct": charts.percent_text,
        "yuan": yuan_text,
        "kinds_zh": KINDS_ZH,
        # HQ moves between regions; the regions with stores come with the targets.
        "regions": [t.code for t in await source.targets()] if source.by == "region" else [],
        "month": source.month,
        "months": [p.name for p in reversed(months_back(source.today, TREND_MONTHS))],
        "query": query,
        "base": base,
        "total": members.total,
        "active_as_of": members.active_as_of,
        "total_bars": charts.target_bars(await source.target_total()),
        **tables,
        "csv": {t.name: _download(csv, t, base) for t in tables.values()},
        "funnels": [
            (k, charts.funnel(KINDS_ZH.get(k.kind, k.kind), _counts(k)))
            for k in playbook.kinds
            if k.made
        ],
        "idle_kinds": [KINDS_ZH.get(k.kind, k.kind) for k in playbook.kinds if not k.made],
        **_trend_charts(trend),
    }


def _download(csv: str, table: Table, base: dict[str, str]) -> str:
    """A table's CSV link: the page's month and region, the table's sort."""
    sort = {"sort": table.sort, "dir": "desc" if table.descending else "asc"}
    return f"{csv}?{urlencode({'table': table.name, **base, **(sort if table.sort else {})})}"


def _trend_charts(trend: list[TrendPoint]) -> dict[str, charts.Chart]:
    months = [p.month for p in trend]
    return {
        "active_chart": charts.month_bars(
            months,
            [
                ("近3月活跃", charts.RED, [p.active_3m for p in trend]),
                ("近12月活跃", charts.BLUE, [p.active_12m for p in trend]),
            ],
        ),
        "share_chart": charts.month_shares(
            months,
            [
                ("RN3", charts.GREEN, [p.rn3 for p in trend]),
                ("转段留存率", charts.ORANGE, [p.stage_up_retention for p in trend]),
            ],
        ),
    }


def _counts(figures: PlaybookFigures) -> dict[str, int]:
    return {stage: int(getattr(figures, stage)) for stage, _ in charts.FUNNEL_STAGES}


def _query(**given: str | None) -> dict[str, str]:
    return {k: v for k, v in given.items() if v}


def _csv(table: Table, source: Source) -> Response[bytes]:
    place = source.scope.region or "national"
    name = f"insights-{{}}-{table.name}-{source.month.name}.csv"
    plain = "national" if source.scope.kind == "national" else "region"
    return Response(
        table.csv(),
        media_type="text/csv",
        headers={"Content-Disposition": attachment(name.format(place), name.format(plain))},
    )


def _today() -> date:
    return clock.today(clock.zone(clock.DEFAULT_TIMEZONE))


async def _region_scope(who: Principal, asked: str | None) -> Scope | None:
    """A regional login's own region (another's is not found); for HQ the region
    asked for, None when none is."""
    if who.role == "region":
        if asked is not None and asked != who.region:
            raise NotFound(f"没有区域 {asked},或不是您的区域")
        asked = who.region
    if not asked:
        return None
    if not await list_stores(asked, 1, 0):
        raise NotFound(f"没有区域 {asked}")
    return await scope_for(who, f"region:{asked}")


async def _table(tables: Mapping[str, TableOf], name: str, source: Source) -> Table:
    if name not in tables:
        raise NotFound(f"没有表格 {name}")
    return await tables[name](source)


class InsightPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/hq/insights")
    async def hq(
        self,
        request: Request[Any, Any, Any],
        period: MonthText = None,
        sort: SortKey = None,
        dir: Direction = None,
        tsort: SortKey = None,
        tdir: Direction = None,
    ) -> Template:
        who = await page_user(request, "hq")
        today = _today()
        source = Source(who, Scope("national", "national"), page_month(period, today), today)
        query = _query(period=source.month.name, sort=sort, dir=dir, tsort=tsort, tdir=tdir)
        context = await page_context(source, query, "/web/hq/insights.csv")
        return Template("insights.html", context={**context, "region": None})

    @get("/hq/insights.csv")
    async def hq_csv(
        self,
        request: Request[Any, Any, Any],
        table: TableName,
        period: MonthText = None,
        sort: SortKey = None,
        dir: Direction = None,
    ) -> Response[bytes]:
        who = await page_user(request, "hq")
        today = _today()
        source = Source(who, Scope("national", "national"), page_month(period, today), today)
        found = (await _table(HQ_TABLES, table, source)).sorted_by(sort, dir)
        return _csv(found, source)

    @get("/region/")
    async def region(
        self,
        request: Request[Any, Any, Any],
        region: RegionName = None,
        period: MonthText = None,
        sort: SortKey = None,
        dir: Direction = None,
        tsort: SortKey = None,
        tdir: Direction = None,
    ) -> Response[Any]:
        who = await page_user(request, "region", "hq")
        scope = await _region_scope(who, region)
        if scope is None:
            return Redirect(path="/web/hq/insights")
        today = _today()
        source = Source(who, scope, page_month(period, today), today)
        query = _query(
            region=scope.region if who.role == "hq" else None,
            period=source.month.name,
            sort=sort,
            dir=dir,
            tsort=tsort,
            tdir=tdir,
        )
        context = await page_context(source, query, "/web/region/insights.csv")
        context["regions"] = [scope.region]
        return Template("insights.html", context={**context, "region": scope.region})

    @get("/region/insights.csv")
    async def region_csv(
        self,
        request: Request[Any, Any, Any],
        table: TableName,
        region: RegionName = None,
        period: MonthText = None,
        sort: SortKey = None,
        dir: Direction = None,
    ) -> Response[bytes]:
        who = await page_user(request, "region", "hq")
        scope = await _region_scope(who, region)
        if scope is None or scope.region is None:
            raise NotFound("给出区域:?region=华南")
        today = _today()
        source = Source(who, scope, page_month(period, today), today)
        found = (await _table(REGION_TABLES, table, source)).sorted_by(sort, dir)
        return _csv(found, source)
