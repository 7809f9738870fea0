"""RN3's repeat flag as receipts go in: a receipt is a repeat when it comes within
90 days of the member's previous purchase. A batch's receipts newer than the member's
latest purchase (kept on the member row) are flagged here, without reading the
member's purchases again; only a receipt sent late needs ``mark_repeats``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from core import clock
from members.figures import REPEAT_WINDOW_DAYS
from members.receipts import Receipt


def repeat_flags(
    receipts: Iterable[Receipt],
    members: Iterable[dict[str, Any]],
    member_of: Callable[[Receipt], int],
) -> tuple[dict[tuple[int, str], bool], list[int]]:
    """RN3's flag of each receipt newer than its member's latest purchase, worked out
    here from that purchase's day (kept on the member) and the batch itself, so the
    receipts go in flagged; and the members with a receipt sent late, whose
    purchases ``mark_repeats`` reads again in order."""
    by_member: dict[int, list[Receipt]] = defaultdict(list)
    for r in receipts:
        by_member[member_of(r)].append(r)
    flags: dict[tuple[int, str], bool] = {}
    late: list[int] = []
    for member in members:
        mid = int(member["id"])
        mine = sorted(by_member.get(mid, []), key=lambda r: r.purchased_at)
        if not mine:
            continue
        last_at = member["last_purchased_at"]
        last_on = member["last_purchase_on"]
        if last_at is not None and _aware(clock.as_datetime(last_at)) >= mine[0].purchased_at:
            late.append(mid)
            continue
        before = None if last_on is None else clock.as_date(last_on)
        for r in mine:
            flags[r.key] = (
                before is not None and (r.purchased_on - before).days <= REPEAT_WINDOW_DAYS
            )
            before = r.purchased_on
    return flags, sorted(late)


def _aware(instant: datetime) -> datetime:
    """SQLite hands back what was written: an instant without its zone is UTC."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
