"""The notifications domain's read side: how far behind the push outbox is."""

from __future__ import annotations

from datetime import datetime

from core import clock
from core.db import fetch


async def outbox_backlog() -> tuple[int, float]:
    """Pushes due now and not yet sent, and how long the oldest of them has waited
    (seconds; 0 with none due): what an operator alerts on when dispatch stalls."""
    now = clock.now()
    rows = await fetch(
        "SELECT COUNT(*) AS n, MIN(next_attempt_at) AS oldest FROM push_outbox"
        " WHERE status = 'pending' AND next_attempt_at <= {}",
        now,
    )
    n, oldest = int(rows[0]["n"]), rows[0]["oldest"]
    if not n or oldest is None:
        return 0, 0.0
    waited: datetime = clock.as_datetime(oldest)
    return n, max(0.0, (now - waited).total_seconds())
