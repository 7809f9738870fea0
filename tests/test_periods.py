"""Periods as the API writes them, and a contest window cut into whole periods."""

from __future__ import annotations

from datetime import date

from core.periods import cover, next_month, parse_period, previous, week_key


def test_previous_period_of_the_same_length() -> None:
    assert previous(parse_period("2026-03")).name == "2026-02"
    assert previous(parse_period("2026-01")).name == "2025-12"
    assert previous(parse_period("2026-W01")).name == "2025-W52"
    assert previous(parse_period("2027-W01")).name == "2026-W53"  # 2026 has 53 ISO weeks
    assert previous(parse_period("2026-03-01")).name == "2026-02-28"
    assert next_month("2026-12") == "2027-01"
    assert week_key(date(2027, 1, 1)) == "2026-W53"


def test_a_window_is_covered_by_whole_periods() -> None:
    assert cover(date(2026, 11, 1), date(2026, 11, 30)) == ["2026-11"]
    # Thu 5 Nov to Fri 4 Dec: days to the first Monday, whole weeks, then days.
    assert cover(date(2026, 11, 5), date(2026, 12, 4)) == [
        "2026-11-05",
        "2026-11-06",
        "2026-11-07",
        "2026-11-08",
        "2026-W46",
        "2026-W47",
        "2026-W48",
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
    ]
    # Weeks where a month would not fit; every day covered exactly once.
    keys = cover(date(2026, 10, 26), date(2026, 12, 6))
    assert keys == ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]
    assert cover(date(2026, 10, 31), date(2026, 12, 1)) == [
        "2026-10-31",
        "2026-11",
        "2026-12-01",
    ]
    days = 0
    for key in keys:
        days += parse_period(key).days
    assert days == (date(2026, 12, 6) - date(2026, 10, 26)).days + 1
