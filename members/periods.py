"""Reporting periods as the API writes them: ``2026-11`` (a month), ``2026-W47``
(an ISO week), ``2026-11-23`` (a day). Each is a store-local date range."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    first: date
    last: date  # inclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def parse_period(text: str) -> Period:
    """Raises ValueError for anything else."""
    month = _MONTH.match(text)
    if month:
        year, number = int(month[1]), int(month[2])
        if not 1 <= number <= 12:
            raise ValueError("month must be 01 to 12")
        return Period(
            text, date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
        )
    week = _WEEK.match(text)
    if week:
        try:
            first = date.fromisocalendar(int(week[1]), int(week[2]), 1)
            return Period(text, first, first + timedelta(days=6))
        except OverflowError:
            raise ValueError("is out of range") from None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "give a month (2026-11), an ISO week (2026-W47) or a day (2026-11-23)"
        ) from None
    return Period(text, day, day)


def month_of(day: date) -> Period:
    return parse_period(f"{day.year:04d}-{day.month:02d}")
