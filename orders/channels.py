"""Sales channels' keys: made by ``tiantian channel-key create``, kept as a SHA-256.
A POS key is not a channel key (its prefix and its table differ), nor the reverse."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from core.db import in_write_transaction
from core.errors import InvalidInput
from orders.tables import ChannelKey

CHANNEL_KEY_PREFIX = "ttch_"


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str


def channel_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_channel_key(name: str, key: str | None = None) -> str:
    """A new channel and its key. Only the hash is kept: the key is shown once.
    ``key``: a known one (the demo chain's), else a random one."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput.on("name", "from 1 to 64 characters")
    key = key or CHANNEL_KEY_PREFIX + secrets.token_urlsafe(32)
    if not key.startswith(CHANNEL_KEY_PREFIX):
        raise InvalidInput.on("key", f"a channel key starts with {CHANNEL_KEY_PREFIX}")

    async def work() -> None:
        await ChannelKey.insert(
            ChannelKey(name=name, key_hash=channel_key_hash(key), prefix=key[:12], active=True)
        )

    await in_write_transaction(work)
    return key


async def channel_for_key(key: str) -> Channel | None:
    if not key.startswith(CHANNEL_KEY_PREFIX):
        return None
    row = (
        await ChannelKey.select(ChannelKey.id, ChannelKey.name)
        .where((ChannelKey.key_hash == channel_key_hash(key)) & (ChannelKey.active == True))  # noqa: E712
        .first()
    )
    return Channel(id=row["id"], name=row["name"]) if row else None
