"""When a member's supply of a category runs out: the replenish call's anchor, and
the member page's "预计用完" by category. The label's days of supply per unit, or the
member's own pace once they have bought a category three times."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, timedelta
from itertools import pairwise

from members.queries import category_history
from tasks.schemas import RunOut

CATEGORY_NAMES = {"formula": "奶粉", "probiotic": "益生菌", "cereal": "米粉", "care": "护理用品"}
# A member's own rate may not stray further than this from the product's label.
OWN_RATE_CLAMP = (0.5, 2.0)
MAX_SUPPLY_DAYS = 366


def run_out(days: dict[date, list[int]], bought_on: date) -> date | None:
    """The day a purchase of ``bought_on`` runs out: units × the member's own days per
    unit (kept within half to twice the label), else the label's; None for a
    stock-up of over a year."""
    units, label_days = days.get(bought_on, [0, 0])
    if units <= 0:
        return None
    label_per_unit = label_days / units
    per_unit = own_days_per_unit(days) or label_per_unit
    lo, hi = OWN_RATE_CLAMP
    per_unit = min(max(per_unit, label_per_unit * lo), label_per_unit * hi)
    supply_days = round(per_unit * units)
    if supply_days > MAX_SUPPLY_DAYS:
        return None
    return bought_on + timedelta(days=supply_days)


def own_days_per_unit(days: dict[date, list[int]]) -> float | None:
    """The member's own days per unit, from the gaps between their purchases of a
    category: needs three purchases; the median shrugs off one odd gap."""
    ordered = sorted(days.items())
    if len(ordered) < 3:
        return None
    rates = [
        (later - earlier).days / units
        for (earlier, (units, _)), (later, _) in pairwise(ordered)
        if units > 0
    ]
    recent = rates[-6:]
    return statistics.median(recent) if recent else None


async def member_run_outs(member_id: int) -> list[RunOut]:
    """Per category the member buys with a known supply: the latest purchase and the
    day it runs out by the same estimate the replenish call uses (None: a stock-up of
    over a year), soonest first."""
    bought: dict[str, dict[date, list[int]]] = defaultdict(dict)
    for (_, category, day), (units, label_days) in (await category_history([member_id])).items():
        bought[category][day] = [units, label_days]
    found = []
    for category, days in bought.items():
        last = max(days)
        found.append(
            RunOut(
                category=category,
                name=CATEGORY_NAMES.get(category, category),
                last_bought_on=last,
                units=days[last][0],
                runs_out_on=run_out(days, last),
            )
        )
    return sorted(found, key=lambda r: (r.runs_out_on or date.max, r.category))
