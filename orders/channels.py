"""Sales channels' keys: made by ``tiantian channel-key create`` or HQ's console, kept
as a SHA-256, revoked the same two ways. A POS key is not a channel key (its prefix
and its table differ), nor the reverse. Each key made or revoked is one row on the
audit trail, written in the change's own transaction, as the tills' keys are."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from audit import trail
from core.db import fetch, in_write_transaction
from core.errors import Conflict, InvalidInput, NotFound
from orders.tables import ChannelKey

CHANNEL_KEY_PREFIX = "ttch_"
MAX_LISTED = 200


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str


def channel_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _state(row: dict[str, Any], active: bool) -> dict[str, Any]:
    # The trail keeps the prefix only: enough to tell keys apart, useless to a thief.
    return {"id": row["id"], "name": row["name"], "prefix": row["prefix"], "active": active}


async def create_channel_key(name: str, key: str | None = None) -> str:
    """A new channel and its key. Only the hash is kept: the key is shown once.
    ``key``: a known one (the demo chain's), else a random one."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput.on("name", "from 1 to 64 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput.on("name", "has control characters")
    key = key or CHANNEL_KEY_PREFIX + secrets.token_urlsafe(32)
    if not key.startswith(CHANNEL_KEY_PREFIX):
        raise InvalidInput.on("key", f"a channel key starts with {CHANNEL_KEY_PREFIX}")

    async def work() -> None:
        (made,) = await ChannelKey.insert(
            ChannelKey(name=name, key_hash=channel_key_hash(key), prefix=key[:12], active=True)
        )
        row = {"id": made["id"], "name": name, "prefix": key[:12]}
        await trail.record("channel_key", key[:12], "create", None, _state(row, True))

    await in_write_transaction(work)
    return key


async def list_channel_keys(limit: int = MAX_LISTED) -> list[dict[str, Any]]:
    """The channels, newest first, by their key's prefix (the key is never kept)."""
    return await fetch(
        "SELECT id, name, prefix, created_at, active FROM channel_key ORDER BY id DESC LIMIT {}",
        min(limit, MAX_LISTED),
    )


async def revoke_channel_key(channel_id: int) -> Channel:
    """Revoke a channel's key: the channel is refused from then on (within the key
    cache's few seconds; at once on the server that revoked it). Its orders stay.
    Revoking a revoked key changes nothing and writes no row."""

    async def work() -> Channel:
        row = await (
            ChannelKey.select(ChannelKey.id, ChannelKey.name, ChannelKey.prefix, ChannelKey.active)
            .where(ChannelKey.id == channel_id)
            .first()
        )
        if row is None:
            raise NotFound(f"no sales channel {channel_id}")
        if row["active"]:
            await ChannelKey.update({ChannelKey.active: False}).where(ChannelKey.id == channel_id)
            await trail.record(
                "channel_key", row["prefix"], "revoke", _state(row, True), _state(row, False)
            )
        return Channel(id=row["id"], name=row["name"])

    return await in_write_transaction(work)


async def active_channel_named(name: str) -> int:
    """The one channel of this name whose key still works (the command line names
    channels; two of one name are told apart by id)."""
    rows = await (
        ChannelKey.select(ChannelKey.id)
        .where((ChannelKey.name == name.strip()) & (ChannelKey.active == True))  # noqa: E712
        .order_by(ChannelKey.id)
    )
    if not rows:
        raise NotFound(f"no active sales channel named {name}")
    if len(rows) > 1:
        ids = ", ".join(str(r["id"]) for r in rows)
        raise Conflict(f"{len(rows)} active sales channels are named {name} (ids {ids}): use --id")
    return int(rows[0]["id"])


async def channel_for_key(key: str) -> Channel | None:
    if not key.startswith(CHANNEL_KEY_PREFIX):
        return None
    row = (
        await ChannelKey.select(ChannelKey.id, ChannelKey.name)
        .where((ChannelKey.key_hash == channel_key_hash(key)) & (ChannelKey.active == True))  # noqa: E712
        .first()
    )
    return Channel(id=row["id"], name=row["name"]) if row else None
