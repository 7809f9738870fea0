"""Reporting periods as the API writes them: ``2026-11`` (a month), ``2026-W47``
(an ISO week), ``2026-11-23`` (a day). Each is a store-local date range."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from core import clock
from core.errors import InvalidInput

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_WEEK = re.compile(r"^([0-9]{4})-W([0-9]{2})$")

# Periods as the API writes them, as the schema states them: a month (2026-11), an
# ISO week (2026-W47) or a day (2026-11-23). A shape the schema admits may still be
# no period (2026-02-30, 2026-W53 of a 52-week year): that is a 422 naming the field.
PERIOD_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2]|W(0[1-9]|[1-4][0-9]|5[0-3])"
    r"|(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))$"
)
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    first: date
    last: date  # inclusive

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


FIRST_YEAR, LAST_YEAR = 2000, 2199  # the program's years: beyond them is a typo


def parse_period(text: str) -> Period:
    """Raises ValueError for anything else, or for a year outside 2000 to 2199."""
    period = _parse(text)
    if not (FIRST_YEAR <= period.first.year and period.last.year <= LAST_YEAR):
        raise ValueError(f"is not within the years {FIRST_YEAR} to {LAST_YEAR}")
    return period


def period_or_error(text: str | None, tz: tzinfo, field: str = "period") -> Period:
    """The period a caller asked for, or by default the current month in ``tz``; a
    malformed one is a field error naming ``field``."""
    if text is None:
        return month_of(clock.today(tz))
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InvalidInput.on(field, str(exc)) from None


def month_or_error(text: str, field: str = "period") -> str:
    """A month as the API writes it (``2026-11``), or a field error."""
    try:
        period = parse_period(text)
    except ValueError as exc:
        raise InvalidInput.on(field, str(exc)) from None
    if period.name != month_key(period.first) or period.days < 28:
        raise InvalidInput.on(field, "give a month, like 2026-11")
    return period.name


def _parse(text: str) -> Period:
    month = _MONTH.fullmatch(text)
    if month:
        year, number = int(month[1]), int(month[2])
        if not 1 <= number <= 12:
            raise ValueError("month must be 01 to 12")
        return Period(
            text, date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
        )
    week = _WEEK.fullmatch(text)
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


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def month_of(day: date) -> Period:
    return parse_period(f"{day.year:04d}-{day.month:02d}")


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def keys_of(day: date) -> tuple[str, str, str]:
    """The day, ISO week and month a day counts in, as the API writes them."""
    return day.isoformat(), week_key(day), month_key(day)


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def previous(period: Period) -> Period:
    """The period of the same kind just before: the day, ISO week or month before."""
    before = period.first - timedelta(days=1)
    # The period before the program's first is a period too (nothing counts in it).
    if _MONTH.fullmatch(period.name):
        return _parse(month_key(before))
    if _WEEK.fullmatch(period.name):
        return _parse(week_key(before))
    return _parse(before.isoformat())


def cover(first: date, last: date) -> list[str]:
    """``first``..``last`` as whole months where one starts and fits, else whole ISO
    weeks, else days: a contest's window read off a few period totals instead of
    every day's."""
    keys: list[str] = []
    day = first
    while day <= last:
        month = month_of(day)
        if day == month.first and month.last <= last:
            keys.append(month.name)
            day = month.last + timedelta(days=1)
        elif day.isoweekday() == 1 and day + timedelta(days=6) <= last:
            keys.append(week_key(day))
            day += timedelta(days=7)
        else:
            keys.append(day.isoformat())
            day += timedelta(days=1)
    return keys
