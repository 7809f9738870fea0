"""Member tiers: earned by the points a member earns in a calendar year (returns take
theirs back) and kept through the year after. A member's tier and the year that
earned it are kept on the member, refreshed in the transaction of each earning or
return; one that rises is announced, so the owning advisor gets a 恭喜升级 call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from core.db import fetch, in_list, rows_source
from members.events import TierReached
from members.policy import Policy

EARNED_KINDS = "('earn', 'reverse')"


def effective_tier(tier: str | None, tier_year: int | None, today: date) -> str | None:
    """The tier a member holds today: kept through the year after the one that
    earned it."""
    if tier is None or tier_year is None or tier_year < today.year - 1:
        return None
    return tier


async def refresh_tiers(
    member_ids: Sequence[int], today: date, policy: Policy
) -> list[TierReached]:
    """Each member's tier from this year's and last year's points; returns the rises."""
    if not member_ids or not policy.tiers:
        return []
    cond, args = in_list(sorted(set(member_ids)), "bigint")
    this_year, last_year = date(today.year, 1, 1), date(today.year - 1, 1, 1)
    rows = await fetch(
        "SELECT m.id, m.tier, m.tier_year, m.owning_advisor, m.home_store,"
        " COALESCE(SUM(CASE WHEN l.occurred_on >= {} THEN l.points ELSE 0 END), 0) AS this_year,"
        " COALESCE(SUM(CASE WHEN l.occurred_on < {} THEN l.points ELSE 0 END), 0) AS last_year"
        f" FROM member m LEFT JOIN points_ledger l ON l.member = m.id AND l.kind IN {EARNED_KINDS}"
        f" AND l.occurred_on >= {{}} WHERE m.id {cond}"
        " GROUP BY m.id, m.tier, m.tier_year, m.owning_advisor, m.home_store",
        this_year,
        this_year,
        last_year,
        *args,
    )
    changed: list[tuple[int, str | None, int | None]] = []
    risen: list[TierReached] = []
    for r in rows:
        now_held = effective_tier(r["tier"], r["tier_year"], today)
        best = max(
            (
                (policy.tier_for(int(r["this_year"])), today.year),
                (policy.tier_for(int(r["last_year"])), today.year - 1),
            ),
            key=lambda pair: (policy.rank(pair[0].code if pair[0] else None), pair[1]),
        )
        code = best[0].code if best[0] else None
        year = best[1] if best[0] else None
        if (code, year) != (r["tier"], r["tier_year"]):
            changed.append((int(r["id"]), code, year))
        if policy.rank(code) > policy.rank(now_held):
            risen.append(
                TierReached(
                    member_id=int(r["id"]),
                    store_id=int(r["home_store"]),
                    owning_advisor=r["owning_advisor"],
                    tier=code or "",
                    tier_name=policy.name_of(code) or "",
                    year=year or today.year,
                    reached_on=today,
                )
            )
    if changed:
        source, source_args = rows_source(
            [("id", "bigint"), ("tier", "text"), ("tier_year", "int")], changed
        )
        await fetch(
            "UPDATE member SET tier = x.tier, tier_year = x.tier_year"
            f" FROM ({source}) AS x WHERE member.id = x.id",
            *source_args,
        )
    return risen
