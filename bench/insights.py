"""Insights benchmark on the national data set of make_dataset.py.

    .venv/bin/python bench/make_dataset.py --database-url postgresql://…/tiantian_big
    .venv/bin/python bench/insights.py --database-url postgresql://…/tiantian_big

Times, in this process, the read side of insights for a month (by default the last
whole month before the domain's today) as the API calls it:

- ``playbook_insights``: the playbook's figures by task kind and campaign;
- ``member_insights``: members, recruits, activity, receipts, revenue, RN3 and stage-up
  retention, whole and split (the chain by region, a region by store);
- ``member_trend``: the six months HQ's chart shows;

for the chain, its largest region and its busiest store, each call ``--repeat`` times
after a warm-up (p50 and p99). Beside each, its floor: a hand-written aggregate over
the raw tables (purchase, member, task) computing the same figures for the same scope
and month, timed the same way (``--floor-repeat`` times: p50). Then, once, the figures
of the summaries and of the raw tables side by side, for the chain and the region
(and the store), which must be equal.

Target (issue 13, a national month): p50 ≤ 100 ms and p99 ≤ 300 ms. Exits 1 when it is
not met, 2 when a summary differs from the raw tables.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TZ = "Asia/Shanghai"
TARGET_P50_MS = 100.0
TARGET_P99_MS = 300.0
TREND_MONTHS = 6  # what the API's member trend shows by default
ACTIVE_3M_DAYS = 90  # members.activity
ACTIVE_12M_DAYS = 365


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--date", type=date.fromisoformat, help="the domain's today (default: today)")
    p.add_argument(
        "--period",
        action="append",
        help="a period, again for more (default: the last whole month and the current one)",
    )
    p.add_argument("--repeat", type=int, default=200, help="timed calls of each read")
    p.add_argument("--floor-repeat", type=int, default=5, help="timed runs of each floor")
    p.add_argument("--region", help="the region scope (default: the one with most stores)")
    p.add_argument("--store", help="the store scope's code (default: the month's busiest)")
    args = p.parse_args()
    if args.repeat < 1 or args.floor_repeat < 1:
        p.error("--repeat and --floor-repeat must be at least 1")
    return args


# --- timing ------------------------------------------------------------------


def padded(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` columns of a terminal (a Chinese character
    takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - columns)


def percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least ``q`` of them at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def timed(work: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls, one at a time, after one untimed call."""
    await work()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# --- what is compared: each read's figures as plain tuples ----------------------------

PLAYBOOK_FIGURES = ("made", "due", "contacted", "reached", "done", "expired", "converted")
MEMBER_FIGURES = ("members", "new_members", "active_3m", "active_12m", "receipts")
Figures = dict[str, tuple[Any, ...]]


def playbook_figures(insights: Any) -> Figures:
    """kind (or ``campaign N``) -> its counts and converted amount, from the service."""
    found: Figures = {}
    for line in insights.kinds:
        found[line.kind] = (*(getattr(line, f) for f in PLAYBOOK_FIGURES), line.converted_amount)
    for line in insights.campaigns:
        found[f"campaign {line.campaign_id}"] = (
            *(getattr(line, f) for f in PLAYBOOK_FIGURES),
            line.converted_amount,
        )
    return found


def member_line(line: Any) -> tuple[Any, ...]:
    return (
        *(getattr(line, f) for f in MEMBER_FIGURES),
        line.revenue,
        line.rn3,
        line.stage_up_due,
        line.stage_up_kept,
    )


def member_figures(insights: Any) -> Figures:
    """``total`` and each row's key -> its figures, from the service."""
    found: Figures = {"total": member_line(insights.total)}
    for row in insights.rows:
        found[row.key] = member_line(row)
    return found


def trend_figures(points: Iterable[Any]) -> Figures:
    return {
        p.month: (
            p.members,
            p.active_3m,
            p.active_12m,
            p.rn3,
            p.stage_up_due,
            p.stage_up_kept,
        )
        for p in points
    }


# --- the floors: the same figures straight from purchase, member and task -------------


@dataclass(frozen=True, slots=True)
class RawScope:
    """A scope as a condition on a store id column, for the hand-written SQL."""

    kind: str
    region: str | None = None
    store_id: int | None = None

    def where(self, column: str) -> tuple[str, list[Any]]:
        if self.kind == "store":
            return f" AND {column} = {{}}", [self.store_id]
        if self.kind == "region":
            return f" AND {column} IN (SELECT id FROM store WHERE region = {{}})", [self.region]
        return "", []


def split_key(by: str | None) -> tuple[str, str]:
    """The key column of a split and the join that finds it, for a store id column."""
    if by == "region":
        return "s.region", " JOIN store s ON s.id = {col}"
    if by == "store":
        return "s.code", " JOIN store s ON s.id = {col}"
    return "''", ""


async def raw_playbook(scope: RawScope, first: date, last: date) -> Figures:
    from core.db import fetch
    from core.money import yuan_text
    from tasks.playbook import KINDS

    where, args = scope.where("t.store")
    rows = await fetch(
        "SELECT t.kind, CASE WHEN t.kind = 'campaign' THEN CAST(t.topic AS integer) ELSE 0 END"
        " AS campaign, COUNT(*) AS made,"
        " COUNT(*) FILTER (WHERE t.status <> 'cancelled') AS due,"
        " COUNT(t.contacted_at) AS contacted, COUNT(*) FILTER (WHERE t.reached) AS reached,"
        " COUNT(*) FILTER (WHERE t.status = 'done') AS done,"
        " COUNT(*) FILTER (WHERE t.status = 'expired') AS expired,"
        " COUNT(t.converted_purchase) AS converted,"
        " COALESCE(SUM(t.converted_fen), 0) AS converted_fen"
        f" FROM task t WHERE t.due_on >= {{}} AND t.due_on <= {{}}{where}"
        " GROUP BY 1, 2",
        first,
        last,
        *args,
    )
    totals: dict[str, list[int]] = {kind: [0] * 8 for kind in KINDS}
    found: Figures = {}
    for r in rows:
        figures = [int(r[f]) for f in (*PLAYBOOK_FIGURES, "converted_fen")]
        line = totals.setdefault(str(r["kind"]), [0] * 8)
        for i, value in enumerate(figures):
            line[i] += value
        if r["kind"] == "campaign" and int(r["campaign"]):
            found[f"campaign {int(r['campaign'])}"] = (*figures[:7], yuan_text(figures[7]))
    for kind, line in totals.items():
        found[kind] = (*line[:7], yuan_text(line[7]))
    return found


async def raw_members(
    scope: RawScope, first: date, last: date, as_of: date | None, by: str | None
) -> Figures:
    """The member figures of a month, split or not, from the raw rows: sales by the
    purchase's store, recruits and activity by the member's home store, stage-ups by
    the task's store."""
    from core.db import fetch

    key, join = split_key(by)
    lines: dict[str, dict[str, int]] = {}

    def line(k: str) -> dict[str, int]:
        return lines.setdefault(
            k,
            dict.fromkeys(
                (*MEMBER_FIGURES, "revenue_fen", "repeat_fen", "stage_up_due", "stage_up_kept"), 0
            ),
        )

    where, args = scope.where("p.store")
    for r in await fetch(
        f"SELECT {key} AS key, COUNT(*) AS receipts, SUM(p.total_fen) AS revenue_fen,"
        " COALESCE(SUM(p.total_fen) FILTER (WHERE p.repeat), 0) AS repeat_fen"
        f" FROM purchase p{join.format(col='p.store')}"
        f" WHERE p.purchased_on >= {{}} AND p.purchased_on <= {{}}{where} GROUP BY 1",
        first,
        last,
        *args,
    ):
        line(str(r["key"])).update(
            receipts=int(r["receipts"]),
            revenue_fen=int(r["revenue_fen"]),
            repeat_fen=int(r["repeat_fen"]),
        )
    where, args = scope.where("m.home_store")
    for r in await fetch(
        f"SELECT {key} AS key, COUNT(*) AS n FROM member m{join.format(col='m.home_store')}"
        f" WHERE m.joined_on >= {{}} AND m.joined_on <= {{}}{where} GROUP BY 1",
        first,
        last,
        *args,
    ):
        line(str(r["key"]))["new_members"] = int(r["n"])
    if as_of is not None:
        # From the stores, as a snapshot is taken: every store in scope has its line.
        where, args = scope.where("s.id")
        for r in await fetch(
            f"SELECT {key} AS key, COUNT(m.id) AS members,"
            " COUNT(*) FILTER (WHERE a.latest >= {}) AS active_3m,"
            " COUNT(a.member) AS active_12m"
            " FROM store s LEFT JOIN member m ON m.home_store = s.id AND m.joined_on <= {}"
            " LEFT JOIN (SELECT member, MAX(purchased_on) AS latest FROM purchase"
            " WHERE purchased_on >= {} AND purchased_on <= {} GROUP BY member) a"
            f" ON a.member = m.id WHERE true{where} GROUP BY 1",
            as_of - timedelta(days=ACTIVE_3M_DAYS - 1),
            as_of,
            as_of - timedelta(days=ACTIVE_12M_DAYS - 1),
            as_of,
            *args,
        ):
            line(str(r["key"])).update(
                members=int(r["members"]),
                active_3m=int(r["active_3m"]),
                active_12m=int(r["active_12m"]),
            )
    where, args = scope.where("t.store")
    for r in await fetch(
        f"SELECT {key} AS key, COUNT(*) FILTER (WHERE t.status <> 'cancelled') AS due,"
        " COUNT(*) FILTER (WHERE t.status <> 'cancelled' AND t.kept_on IS NOT NULL) AS kept"
        f" FROM task t{join.format(col='t.store')} WHERE t.kind = 'stage_up'"
        f" AND t.due_on >= {{}} AND t.due_on <= {{}}{where} GROUP BY 1",
        first,
        last,
        *args,
    ):
        line(str(r["key"])).update(stage_up_due=int(r["due"]), stage_up_kept=int(r["kept"]))
    return member_lines(lines, by)


def member_lines(lines: dict[str, dict[str, int]], by: str | None) -> Figures:
    from core.money import share, yuan_text

    def figures(f: dict[str, int]) -> tuple[Any, ...]:
        return (
            *(f[name] for name in MEMBER_FIGURES),
            yuan_text(f["revenue_fen"]),
            share(f["repeat_fen"], f["revenue_fen"]),
            f["stage_up_due"],
            f["stage_up_kept"],
        )

    total: dict[str, int] = {}
    for f in lines.values():
        for name, value in f.items():
            total[name] = total.get(name, 0) + value
    if not total:
        total = dict.fromkeys(
            (*MEMBER_FIGURES, "revenue_fen", "repeat_fen", "stage_up_due", "stage_up_kept"), 0
        )
    found: Figures = {"total": figures(total)}
    if by:
        found.update({k: figures(f) for k, f in lines.items()})
    return found


async def raw_trend(scope: RawScope, months: list[Any], ends: list[date]) -> Figures:
    """Members and active members at each month's end, RN3 and stage-ups per month."""
    from core.db import fetch
    from core.money import share

    first, last = months[0].first, months[-1].last
    where, args = scope.where("m.home_store")
    # A member buys only once joined: whoever bought in the 12 months to a day had
    # joined by it. Members are counted by home store, wherever they bought.
    mine = f" AND p.member IN (SELECT m.id FROM member m WHERE true{where})" if where else ""
    active = {
        str(r["day"])[:10]: r
        for r in await fetch(
            "SELECT d.day, (SELECT COUNT(*) FROM member m WHERE m.joined_on <= d.day"
            f"{where}) AS members,"
            " COUNT(DISTINCT p.member) FILTER (WHERE p.purchased_on > d.day - CAST({} AS integer))"
            " AS active_3m,"
            " COUNT(DISTINCT p.member) AS active_12m"
            " FROM (SELECT CAST(x AS date) AS day FROM unnest({}::date[]) AS x) d"
            " LEFT JOIN purchase p ON p.purchased_on <= d.day AND p.purchased_on > d.day - CAST({} AS integer)"
            f"{mine} GROUP BY d.day",
            *args,
            ACTIVE_3M_DAYS,
            ends,
            ACTIVE_12M_DAYS,
            *args,
        )
    }
    where, args = scope.where("p.store")
    sales = {
        str(r["month"]): r
        for r in await fetch(
            "SELECT to_char(p.purchased_on, 'YYYY-MM') AS month, SUM(p.total_fen) AS revenue,"
            " COALESCE(SUM(p.total_fen) FILTER (WHERE p.repeat), 0) AS repeat"
            " FROM purchase p WHERE p.purchased_on >= {} AND p.purchased_on <= {}"
            f"{where} GROUP BY 1",
            first,
            last,
            *args,
        )
    }
    where, args = scope.where("t.store")
    stage_ups = {
        str(r["month"]): r
        for r in await fetch(
            "SELECT to_char(t.due_on, 'YYYY-MM') AS month,"
            " COUNT(*) FILTER (WHERE t.status <> 'cancelled') AS due,"
            " COUNT(*) FILTER (WHERE t.status <> 'cancelled' AND t.kept_on IS NOT NULL) AS kept"
            " FROM task t WHERE t.kind = 'stage_up' AND t.due_on >= {} AND t.due_on <= {}"
            f"{where} GROUP BY 1",
            first,
            last,
            *args,
        )
    }
    found: Figures = {}
    for month, end in zip(months, ends, strict=True):
        a = active.get(end.isoformat())
        s = sales.get(month.name)
        t = stage_ups.get(month.name)
        # No purchases in the 12 months to the day: the trend has no snapshot of it
        # only when there were no members either.
        found[month.name] = (
            int(a["members"]) if a else 0,
            int(a["active_3m"]) if a else 0,
            int(a["active_12m"]) if a else 0,
            share(int(s["repeat"]), int(s["revenue"])) if s else None,
            int(t["due"]) if t else 0,
            int(t["kept"]) if t else 0,
        )
    return found


# --- the run -------------------------------------------------------------------


@dataclass(slots=True)
class Case:
    label: str
    national_month: bool  # what the target is about
    read: Callable[[], Awaitable[Any]]
    figures: Callable[[Any], Figures]
    floor: Callable[[], Awaitable[Figures]]


@dataclass(slots=True)
class Timing:
    p50: float
    p99: float
    floor_p50: float

    @property
    def passes(self) -> bool:
        return self.p50 <= TARGET_P50_MS and self.p99 <= TARGET_P99_MS


async def choose(period: Any, region: str | None, store: str | None) -> tuple[str, str]:
    from core.db import fetch

    if region is None:
        rows = await fetch(
            "SELECT region FROM store GROUP BY region ORDER BY COUNT(*) DESC, region LIMIT 1"
        )
        region = str(rows[0]["region"])
    if store is None:
        rows = await fetch(
            "SELECT s.code FROM purchase p JOIN store s ON s.id = p.store"
            " WHERE p.purchased_on >= {} AND p.purchased_on <= {}"
            " GROUP BY s.code ORDER BY COUNT(*) DESC, s.code LIMIT 1",
            period.first,
            period.last,
        )
        if not rows:
            rows = await fetch("SELECT code FROM store ORDER BY code LIMIT 1")
        store = str(rows[0]["code"])
    return region, store


async def sizes() -> str:
    from core.db import fetch

    counts = []
    for table in ("store", "member", "purchase", "task", "store_day", "task_summary"):
        rows = await fetch(f"SELECT COUNT(*) AS n FROM {table}")
        counts.append(f"{int(rows[0]['n']):,} {table}")
    return ", ".join(counts)


def cases_for(
    period: Any,
    today: date,
    as_of: date | None,
    scopes: list[tuple[str, Any, RawScope]],
    trend: bool,
) -> list[Case]:
    """What the API reads for ``period`` in each scope (and, with ``trend``, the
    six-month trend, which ends today whatever the period), with its floor."""
    from tasks.insights import member_insights, member_trend, months_back, playbook_insights

    first, last = period.first, period.last
    months = months_back(today, TREND_MONTHS)
    ends = [min(p.last, today - timedelta(days=1)) for p in months]
    cases = []
    for name, scope, raw in scopes:
        national = scope.kind == "national"
        cases.append(
            Case(
                f"{period.name} playbook, {name}",
                national,
                partial(playbook_insights, scope, period),
                playbook_figures,
                partial(raw_playbook, raw, first, last),
            )
        )
        cases.append(
            Case(
                f"{period.name} members, {name}",
                national,
                partial(member_insights, scope, period, None),
                member_figures,
                partial(raw_members, raw, first, last, as_of, None),
            )
        )
        split = {"national": "region", "region": "store"}.get(scope.kind)
        if split:
            cases.append(
                Case(
                    f"{period.name} members, {name} by {split}",
                    national,
                    partial(member_insights, scope, period, split),
                    member_figures,
                    partial(raw_members, raw, first, last, as_of, split),
                )
            )
        if trend and scope.kind != "store":
            cases.append(
                Case(
                    f"member trend, {name}, {TREND_MONTHS} months",
                    False,
                    partial(member_trend, scope, today, TREND_MONTHS),
                    trend_figures,
                    partial(raw_trend, raw, months, ends),
                )
            )
    return cases


def compare(label: str, summary: Figures, raw: Figures, verbose: bool) -> bool:
    """Prints the two sets of figures (all of them, or only what differs)."""
    same = summary == raw
    keys = sorted(set(summary) | set(raw), key=lambda k: (k != "total", k))
    print(f"  {label}: {'equal' if same else 'MISMATCH'} ({len(keys)} lines)")
    for key in keys:
        s, r = summary.get(key), raw.get(key)
        if verbose or s != r:
            print(f"    {padded(key, 14)} summaries {s}")
            print(f"    {'':<14} raw       {r}{'' if s == r else '   <- differs'}")
    return same


async def run(args: argparse.Namespace, today: date) -> int:
    from core.db import connection_pool
    from core.periods import month_of, parse_period
    from members.insights import activity_as_of
    from members.scopes import Scope, parse_scope

    if args.period:
        periods = [parse_period(p) for p in args.period]
    else:  # the last whole month, and the current one (the API's default)
        periods = [month_of(today.replace(day=1) - timedelta(days=1)), month_of(today)]
    async with connection_pool(max_size=2):
        region, store_code = await choose(periods[0], args.region, args.store)
        store = await parse_scope(f"store:{store_code}")
        scopes = [
            ("national", Scope("national", "national"), RawScope("national")),
            (
                f"region {region}",
                Scope(f"region:{region}", "region", region=region),
                RawScope("region", region=region),
            ),
            (f"store {store_code}", store, RawScope("store", store_id=store.store_id)),
        ]
        print(f"insights on {await sizes()}")
        print(
            f"  today {today}; region {region}, store {store_code}; {args.repeat} timed calls"
            f" a read, {args.floor_repeat} a floor, one call at a time"
        )
        cases: list[Case] = []
        for n, period in enumerate(periods):
            # The raw floor counts members as of the period's last day (yesterday for
            # the current month); the summaries, as of their latest snapshot by then.
            as_of = min(period.last, today - timedelta(days=1))
            snapshot = await activity_as_of(period.last)
            print(f"  {period.name}: activity as of {as_of} (snapshot of {snapshot})")
            cases += cases_for(period, today, as_of, scopes, trend=n == 0)

        # Once: the figures of the summaries against those of the raw tables, all of
        # them for the chain and the region in the first period, else what differs.
        print("check: the summaries' figures against the raw tables'")
        equal = True
        for case in cases:
            summary = case.figures(await case.read())
            raw = await case.floor()
            verbose = (
                case.label.startswith((periods[0].name, "member trend"))
                and "store" not in case.label
                and " by " not in case.label
            )
            equal = compare(case.label, summary, raw, verbose) and equal

        print()
        print(
            f"timings; target (• a national month): p50 ≤ {TARGET_P50_MS:.0f} ms,"
            f" p99 ≤ {TARGET_P99_MS:.0f} ms"
        )
        print(
            f"  {padded('what', 44)} {'p50 ms':>8} {'p99 ms':>8} {'floor p50 ms':>13}"
            f" {'× floor':>8}  target"
        )
        timings: dict[str, Timing] = {}
        for case in cases:
            samples = await timed(case.read, args.repeat)
            floor = await timed(case.floor, args.floor_repeat)
            t = Timing(percentile(samples, 0.5), percentile(samples, 0.99), percentile(floor, 0.5))
            timings[case.label] = t
            mark = "• " if case.national_month else "  "
            print(
                f"  {padded(mark + case.label, 44)} {t.p50:8.1f} {t.p99:8.1f}"
                f" {t.floor_p50:13.1f} {t.p50 / t.floor_p50:8.3f}  {'PASS' if t.passes else 'FAIL'}",
                flush=True,
            )

    national = [timings[c.label] for c in cases if c.national_month]
    met = all(t.passes for t in national)
    everything = all(t.passes for t in timings.values())
    print(
        f"  target (national month: p50 ≤ {TARGET_P50_MS:.0f} ms, p99 ≤ {TARGET_P99_MS:.0f} ms):"
        f" {'met' if met else 'NOT met'} (slowest: p50 {max(t.p50 for t in national):.1f} ms,"
        f" p99 {max(t.p99 for t in national):.1f} ms); every row within it:"
        f" {'yes' if everything else 'no'}"
    )
    print(f"  summaries equal the raw tables: {'yes' if equal else 'NO'}")
    if not equal:
        return 2
    return 0 if met else 1


def main() -> None:
    args = parse()
    if not args.database_url or not args.database_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database-url must name the PostgreSQL data set of make_dataset.py")
    os.environ["DATABASE_URL"] = args.database_url
    from core import clock

    today = args.date or clock.today(clock.zone(TZ))
    sys.exit(asyncio.run(run(args, today)))


if __name__ == "__main__":
    main()
