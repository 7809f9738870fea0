"""Ledger-wide work (a rebuild of totals, a re-weighting) in slices: each slice is a
short transaction of its own, and between slices the tills book their facts as
usual, so none waits much longer than a slice.

A rebuild's slice holds the ledger lock alone: it sees every fact committed before
it and none in flight, and from its commit on the incremental path keeps what it
wrote; so once every slice has passed, the totals are what the whole rebuild done
at once would have made. A re-weighting's slices share the lock with the tills
(``incentives.rules.rescore`` says why that is enough).

Each slice is sized from the last: as much as holds the lock about
``SLICE_SECONDS``, within half and twice the last slice's size.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from core.db import BooksBusy, hold_books, in_write_transaction

T = TypeVar("T")
SLICE_SECONDS = 0.2
PATIENCE = 0.1  # seconds a slice first waits for the lock before it steps back
MOST_PATIENCE = 0.4
STEP_BACK = 0.02  # seconds a slice waits after stepping back

# Called after each slice commits: the tests book facts there, between two slices.
Between = Callable[[], Awaitable[None]] | None


@dataclass(slots=True)
class Pace:
    size: int  # subjects, or rows, the next slice takes
    slices: int = 0
    longest: float = 0.0  # the longest a slice held the ledger alone, in seconds
    held: float = 0.0  # all slices together
    written: int = 0  # totals inserted, changed or deleted
    gave_way: int = 0  # times a slice stepped back for writers holding the lock

    def took(self, seconds: float) -> None:
        self.slices += 1
        self.longest = max(self.longest, seconds)
        self.held += seconds
        ratio = SLICE_SECONDS / max(seconds, 0.001)
        self.size = max(1, int(self.size * min(2.0, max(0.5, ratio))))

    def add(self, other: Pace) -> None:
        self.slices += other.slices
        self.longest = max(self.longest, other.longest)
        self.held += other.held
        self.written += other.written
        self.gave_way += other.gave_way


async def in_slice(
    work: Callable[[], Awaitable[T]], pace: Pace, between: Between, alone: bool = True
) -> T:
    """``work`` in a transaction of its own holding the ledger lock (alone, or shared
    with the tills); ``pace`` learns how long it held it and sizes the next slice.

    While a slice waits for the lock alone, tills that come after it queue behind it;
    so it waits only ``PATIENCE`` (longer each time, up to ``MOST_PATIENCE``) and, if
    writers still hold the lock (a long batch), steps back and lets the queue
    through before asking again. It never waits longer: under writers that never
    leave the ledger for that long the work waits, not the tills."""
    granted = 0.0

    async def one_slice(within: float | None) -> T:
        nonlocal granted
        await hold_books(alone=alone, within=within if alone else None)
        granted = time.perf_counter()
        return await work()

    patience = PATIENCE
    while True:
        try:
            result = await in_write_transaction(partial(one_slice, patience))
            break
        except BooksBusy:
            # The tills queued behind the request are let through at once; a short
            # pause and the next request queues behind whoever holds the lock now.
            pace.gave_way += 1
            await asyncio.sleep(STEP_BACK)
            patience = min(MOST_PATIENCE, patience * 1.5)
    pace.took(time.perf_counter() - granted)
    if between is not None:
        await between()
    return result
