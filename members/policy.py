"""HQ's points policy (冲积波): what 100 points are worth to the store that redeems
them, how long points live, how early members are warned, and the tiers points earn.
Each change is a new row and applies to the next booking on: a lot keeps the expiry
it was booked with, a redemption the rate it was made at."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from audit import trail
from core import clock
from core.db import fetch, in_write_transaction
from core.errors import InvalidInput
from core.money import fen_to_yuan, to_fen, yuan_text
from core.periods import add_months
from members.schemas import PointsPolicyIO, TierIO


@dataclass(frozen=True, slots=True)
class PointsRule:
    """Points earned per whole yuan of points-eligible spend."""

    points_per_yuan: Decimal = Decimal(1)

    def points_for(self, eligible_fen: int) -> int:
        yuan = Decimal(eligible_fen) / 100
        return int((yuan * self.points_per_yuan).to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True, slots=True)
class Tier:
    code: str
    name: str
    min_points_in_year: int


@dataclass(frozen=True, slots=True)
class Policy:
    value_per_100_fen: int
    expiry_months: int
    expiry_warning_days: int
    tiers: tuple[Tier, ...]  # lowest threshold first

    def value_fen(self, points: int) -> int:
        """What ``points`` are worth, to the fen, half up."""
        exact = Decimal(points) * self.value_per_100_fen / 100
        return int(exact.quantize(Decimal(1), ROUND_HALF_UP))

    def expires_on(self, earned_on: date) -> date:
        """The last day points earned on ``earned_on`` can be spent: the end of the
        month ``expiry_months`` after the month they were earned in."""
        first_after = add_months(earned_on.replace(day=1), self.expiry_months + 1)
        return date.fromordinal(first_after.toordinal() - 1)

    def tier_for(self, points_in_year: int) -> Tier | None:
        reached = [t for t in self.tiers if points_in_year >= t.min_points_in_year]
        return reached[-1] if reached else None

    def rank(self, code: str | None) -> int:
        """0 for no tier, then 1, 2, … up the ladder (a tier HQ dropped counts as 0)."""
        codes = [t.code for t in self.tiers]
        return codes.index(code) + 1 if code in codes else 0

    def name_of(self, code: str | None) -> str | None:
        return next((t.name for t in self.tiers if t.code == code), None)

    def shown(self) -> PointsPolicyIO:
        return PointsPolicyIO(
            value_per_100_points=str(fen_to_yuan(self.value_per_100_fen)),
            expiry_months=self.expiry_months,
            expiry_warning_days=self.expiry_warning_days,
            tiers=[TierIO(t.code, t.name, t.min_points_in_year) for t in self.tiers],
        )


async def policy_history() -> tuple[tuple[datetime, Policy], ...]:
    """Every policy HQ has set, with the time it applied from, oldest first: an
    imported purchase earns at the policy in force on its day (the first one for
    anything older)."""
    rows = await fetch(
        "SELECT value_per_100_fen, expiry_months, expiry_warning_days, tiers, set_at"
        " FROM points_policy ORDER BY id"
    )
    return tuple((clock.as_datetime(row["set_at"]), policy_of_row(row)) for row in rows)


def policy_of_row(row: dict[str, Any]) -> Policy:
    """A policy from a row of ``members.queries.POLICY``."""
    tiers = sorted(
        (
            Tier(t["code"], t["name"], int(t["min_points_in_year"]))
            for t in json.loads(row["tiers"])
        ),
        key=lambda t: t.min_points_in_year,
    )
    return Policy(
        int(row["value_per_100_fen"]),
        int(row["expiry_months"]),
        int(row["expiry_warning_days"]),
        tuple(tiers),
    )


async def load_policy() -> Policy:
    rows = await fetch(
        "SELECT value_per_100_fen, expiry_months, expiry_warning_days, tiers"
        " FROM points_policy ORDER BY id DESC LIMIT 1"
    )
    return policy_of_row(rows[0])


def checked(data: PointsPolicyIO) -> Policy:
    """The policy HQ sent, or a field error: tiers have distinct codes and rising
    thresholds."""
    value = to_fen(Decimal(data.value_per_100_points), "value_per_100_points")
    codes = [t.code for t in data.tiers]
    if len(set(codes)) != len(codes):
        raise InvalidInput.on("tiers", "each tier code at most once")
    thresholds = [t.min_points_in_year for t in data.tiers]
    if len(set(thresholds)) != len(thresholds):
        raise InvalidInput.on("tiers", "each tier needs its own min_points_in_year")
    return Policy(
        value,
        data.expiry_months,
        data.expiry_warning_days,
        tuple(
            sorted(
                (Tier(t.code, t.name, t.min_points_in_year) for t in data.tiers),
                key=lambda t: t.min_points_in_year,
            )
        ),
    )


def _shown(policy: Policy) -> dict[str, object]:
    return {
        "value_per_100_points": yuan_text(policy.value_per_100_fen),
        "expiry_months": policy.expiry_months,
        "expiry_warning_days": policy.expiry_warning_days,
        "tiers": [[t.code, t.name, t.min_points_in_year] for t in policy.tiers],
    }


async def set_policy(policy: Policy) -> Policy:
    async def work() -> None:
        before = await load_policy()
        await trail.record("points_policy", "policy", "update", _shown(before), _shown(policy))
        await fetch(
            "INSERT INTO points_policy (value_per_100_fen, expiry_months, expiry_warning_days,"
            " tiers, set_at) VALUES ({}, {}, {}, {}, {})",
            policy.value_per_100_fen,
            policy.expiry_months,
            policy.expiry_warning_days,
            json.dumps(
                [
                    {"code": t.code, "name": t.name, "min_points_in_year": t.min_points_in_year}
                    for t in policy.tiers
                ],
                ensure_ascii=False,
            ),
            clock.now(),
        )

    await in_write_transaction(work)
    return await load_policy()
