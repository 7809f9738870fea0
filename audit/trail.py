"""Writing the trail: one row per change, in the change's own transaction.

Who made a change is known at the door (a bearer token, a page's session, the
command line), not in the service that makes it: the door names them once with
``acting_as`` and every row written while serving that request carries the name.
A change made with nobody named (the daily job, a test calling a service) is
``system``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, get_args

import msgspec

from audit.tables import AuditEntry
from core import clock
from core.db import fetch, param, rows_source

SYSTEM = "system"
_actor: ContextVar[str] = ContextVar("tiantian_audit_actor", default=SYSTEM)

# What may be audited: the entity names the trail and its filter know.
Entity = Literal[
    "store",
    "advisor",
    "product",
    "login",
    "pos_key",
    "channel_key",
    "playbook",
    "campaign",
    "contest",
    "score_weights",
    "bonus_rates",
    "targets",
    "points_policy",
    "points_promotion",
    "month_close",
    "import",
]
ENTITIES: tuple[str, ...] = get_args(Entity)


def acting_as(who: str) -> None:
    """Name who is making the changes of the current request or command."""
    _actor.set(who[:100])


@contextmanager
def acting(who: str) -> Iterator[None]:
    """``acting_as`` for a block only (the command line, a test)."""
    token = _actor.set(who[:100])
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    return _actor.get()


def as_json(value: Any) -> str | None:
    """A value as the trail keeps it: JSON with sorted keys (Decimals as strings)."""
    if value is None:
        return None
    return msgspec.json.encode(value, order="sorted").decode()


async def record(entity: str, key: str, action: str, before: Any = None, after: Any = None) -> bool:
    """Append one row for a change, inside the caller's transaction (it commits or rolls
    back with the change). A write that changed nothing (``before`` equals ``after``) is
    no change and leaves no row. Returns whether a row was written."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown audit entity {entity!r}")
    old, new = as_json(before), as_json(after)
    if old == new and action in {"update", "upsert"}:
        return False
    await AuditEntry.insert(
        AuditEntry(
            at=clock.now(),
            who=_actor.get(),
            entity=entity,
            key=str(key)[:200],
            action=action,
            before=old,
            after=new,
        )
    )
    return True


async def record_many(entity: str, changes: Sequence[tuple[str, str, Any, Any]]) -> int:
    """One row per ``(key, action, before, after)`` in one statement (an import's
    chunk of stores); changes that change nothing are left out. Returns rows written."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown audit entity {entity!r}")
    rows = []
    for key, action, before, after in changes:
        old, new = as_json(before), as_json(after)
        if old != new or action not in {"update", "upsert"}:
            rows.append((str(key)[:200], action, old, new))
    if not rows:
        return 0
    source, args = rows_source(
        [("key", "text"), ("action", "text"), ("before", "text"), ("after", "text")], rows
    )
    await fetch(
        "INSERT INTO audit_entry (at, who, entity, key, action, before, after)"
        f" SELECT {param('timestamptz')}, {param('text')}, {param('text')}, key, action,"
        f" before, after FROM ({source}) AS src",
        clock.now(),
        _actor.get(),
        entity,
        *args,
    )
    return len(rows)
