"""HQ keeps the logins and the tills' keys: list them, reset a password, deactivate a
login, revoke a key. Each change goes on the audit trail in its own transaction (a
password never does: only that it was reset)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from audit import trail
from core import clock
from core.db import fetch, in_write_transaction
from core.errors import InvalidInput, NotFound
from members.accounts import MIN_PASSWORD_LENGTH, hash_password
from members.phones import phone_or_error
from members.tables import PosKey, UserAccount

MAX_PAGE = 500


async def list_logins(search: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Logins with what they are bound to, newest first; ``search`` matches a phone's
    digits, a role, an advisor's or a store's code."""
    like = f"%{search.strip()}%" if search else "%"
    return await fetch(
        "SELECT u.phone, u.role, u.active, u.region, u.created_at, a.code AS advisor_code,"
        " (SELECT MIN(s.code) FROM user_store us JOIN store s ON s.id = us.store"
        '  WHERE us."user" = u.id) AS store_code'
        " FROM user_account u LEFT JOIN advisor a ON a.id = u.advisor"
        " WHERE u.phone LIKE {} OR u.role LIKE {} OR COALESCE(a.code, '') LIKE {}"
        " ORDER BY u.id DESC LIMIT {}",
        like,
        like,
        like,
        min(limit, MAX_PAGE),
    )


async def _login(phone: str) -> dict[str, Any]:
    normalised = phone_or_error(phone, "phone")
    row = (
        await UserAccount.select(UserAccount.id, UserAccount.phone, UserAccount.active)
        .where(UserAccount.phone == normalised)
        .first()
    )
    if row is None:
        raise NotFound(f"no login {normalised}")
    return row


async def reset_password(phone: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.on("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    row = await _login(phone)
    password_hash = await asyncio.to_thread(hash_password, password)

    async def work() -> None:
        await UserAccount.update({UserAccount.password_hash: password_hash}).where(
            UserAccount.id == row["id"]
        )
        await trail.record("login", row["phone"], "reset_password")

    await in_write_transaction(work)


async def set_active(phone: str, active: bool) -> bool:
    """Deactivate (or reactivate) a login; it stops working at its next request.
    Returns whether anything changed."""
    row = await _login(phone)

    async def work() -> bool:
        await UserAccount.update({UserAccount.active: active}).where(UserAccount.id == row["id"])
        return await trail.record(
            "login", row["phone"], "update", {"active": bool(row["active"])}, {"active": active}
        )

    return await in_write_transaction(work)


async def list_pos_keys(store_code: str | None, limit: int = 200) -> list[dict[str, Any]]:
    """The tills' keys by their prefix (the key itself is never kept)."""
    where, args = ("WHERE s.code = {}", [store_code]) if store_code else ("", [])
    return await fetch(
        "SELECT k.prefix, s.code AS store_code, s.name AS store_name, k.created_at,"
        f" k.revoked_at FROM pos_key k JOIN store s ON s.id = k.store {where}"
        " ORDER BY k.id DESC LIMIT {}",
        *args,
        min(limit, MAX_PAGE),
    )


async def revoke_pos_key(prefix: str) -> datetime:
    """Revoke a key by its prefix; a till using it is refused from then on (within the
    key cache's few seconds). Revoking a revoked key changes nothing."""
    now = clock.now()

    async def work() -> datetime:
        rows = await PosKey.select(PosKey.id, PosKey.revoked_at, PosKey.store.code).where(
            PosKey.prefix == prefix
        )
        if len(rows) != 1:
            raise NotFound(f"no key {prefix}")
        row = rows[0]
        if row["revoked_at"] is not None:
            return clock.as_datetime(row["revoked_at"])
        await PosKey.update({PosKey.revoked_at: now}).where(PosKey.id == row["id"])
        await trail.record(
            "pos_key",
            prefix,
            "revoke",
            {"store_code": row["store.code"], "revoked": False},
            {"store_code": row["store.code"], "revoked": True},
        )
        return now

    return await in_write_transaction(work)
