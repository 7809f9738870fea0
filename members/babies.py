"""Babies: age in whole months and the formula stage that age calls for. The one
place the stage boundaries live; the playbook's stage_up rule reads them here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from core.errors import InvalidInput
from core.periods import add_months
from members.schemas import BabyIn, BabyOut

# Formula stages by the baby's age in whole months: [0, 6) → 1, [6, 12) → 2,
# [12, 36) → 3, 36 and over → 4.
STAGE_BOUNDARIES_MONTHS = (6, 12, 36)
# A baby is a child under this many years; an expected date at most this far ahead.
MAX_CHILD_AGE_YEARS = 14
MAX_DUE_AHEAD = timedelta(days=300)


def age_in_months(birth: date, on: date) -> int:
    months = (on.year - birth.year) * 12 + (on.month - birth.month)
    if on.day < birth.day:
        months -= 1
    return months


def stage_for_age(months: int) -> int:
    return 1 + sum(1 for boundary in STAGE_BOUNDARIES_MONTHS if months >= boundary)


def stage_before(boundary_months: int) -> int:
    """The stage a baby leaves on turning ``boundary_months`` old (6 → 1, 12 → 2, 36 → 3)."""
    return stage_for_age(boundary_months - 1)


def next_stage_on(birth: date, today: date) -> date | None:
    """The day a baby born on ``birth`` starts the stage after the one their age calls
    for on ``today``: the day they turn 6, 12 or 36 months (for a baby born on the
    31st, the end of a shorter month, as the stage_up call counts it); None on the
    last stage."""
    months = max(age_in_months(birth, today), 0)
    later = [b for b in STAGE_BOUNDARIES_MONTHS if b > months]
    return add_months(birth, later[0]) if later else None


def baby_out(
    baby_id: int, name: str, birth_date: date | None, due_date: date | None, today: date
) -> BabyOut:
    """A baby as the phone and the till show it: age in whole months and the formula
    stage that age calls for (none before birth)."""
    months = age_in_months(birth_date, today) if birth_date else None
    return BabyOut(
        baby_id=baby_id,
        name=name,
        birth_date=birth_date,
        due_date=due_date,
        age_months=months,
        stage=stage_for_age(months) if months is not None and months >= 0 else None,
        next_stage_on=next_stage_on(birth_date, today) if birth_date else None,
    )


def check_babies(babies: Sequence[BabyIn], today: date, field: str = "babies") -> None:
    """A birth date in the past and within a child's years, or an expected date near."""
    for i, baby in enumerate(babies):
        where = f"{field}[{i}]"
        if baby.birth_date is None and baby.due_date is None:
            raise InvalidInput.on(where, "give birth_date, or due_date before birth")
        if baby.birth_date is not None and baby.birth_date > today:
            raise InvalidInput.on(f"{where}.birth_date", "is in the future")
        if baby.birth_date is not None and today.year - baby.birth_date.year > MAX_CHILD_AGE_YEARS:
            raise InvalidInput.on(
                f"{where}.birth_date", f"is more than {MAX_CHILD_AGE_YEARS} years ago"
            )
        if baby.due_date is not None and not (
            today - MAX_DUE_AHEAD <= baby.due_date <= today + MAX_DUE_AHEAD
        ):
            raise InvalidInput.on(f"{where}.due_date", "is not within 300 days of today")
