"""Who may use the service: people (advisors, owners, HQ) with phone + password,
and tills with a POS key bound to one store."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from audit import trail
from core.db import fetch, in_write_transaction
from core.errors import Conflict, InvalidInput, NotFound
from members.phones import phone_or_error
from members.stores import StoreRef
from members.tables import Advisor, PosKey, Store, UserAccount, UserStore

Role = Literal["advisor", "owner", "hq", "region"]
ROLES: tuple[Role, ...] = ("advisor", "owner", "hq", "region")

# scrypt at n=2**14, r=8: ~16 MiB and tens of milliseconds a guess (OWASP's floor).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD_LENGTH = 8
POS_KEY_PREFIX = "ttpos_"


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in person and what they may see."""

    user_id: int
    role: Role
    phone: str
    advisor_id: int | None
    store_ids: frozenset[int]
    timezone: str | None = None  # an advisor's store's
    region: str | None = None  # a regional marketer's (营销通)

    @property
    def visible_stores(self) -> frozenset[int] | None:
        """The stores whose pages and figures this person may see; None: every store."""
        return None if self.role == "hq" else self.store_ids


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# A real hash to compare against when the phone is unknown, so that a wrong phone
# and a wrong password take the same time.
_DECOY_HASH = hash_password(secrets.token_urlsafe(16))


async def _links(
    role: str, store_codes: list[str] | None, advisor_code: str | None, region: str | None
) -> tuple[int | None, list[int]]:
    """What a login is bound to: an advisor's advisor, an owner's stores, a regional
    marketer's region (which must have stores)."""
    if role == "advisor":
        if not advisor_code:
            raise InvalidInput.on("advisor_code", "an advisor login names its advisor")
        advisor = await Advisor.select(Advisor.id).where(Advisor.code == advisor_code).first()
        if advisor is None:
            raise InvalidInput.on("advisor_code", f"no advisor {advisor_code}")
        return int(advisor["id"]), []
    if role == "owner":
        if not store_codes:
            raise InvalidInput.on("store", "an owner login names at least one store")
        rows = await Store.select(Store.id, Store.code).where(Store.code.is_in(store_codes))
        missing = set(store_codes) - {r["code"] for r in rows}
        if missing:
            raise InvalidInput.on("store", f"no store {', '.join(sorted(missing))}")
        return None, [r["id"] for r in rows]
    if role == "region":
        if not region:
            raise InvalidInput.on("region", "a regional login names its region")
        if not await Store.exists().where(Store.region == region):
            raise InvalidInput.on("region", f"no store in region {region}")
    return None, []


async def create_user(
    role: str,
    phone: str,
    password: str,
    store_codes: list[str] | None = None,
    advisor_code: str | None = None,
    region: str | None = None,
) -> int:
    if role not in ROLES:
        raise InvalidInput.on("role", f"must be one of {', '.join(ROLES)}")
    normalised = phone_or_error(phone, "phone")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.on("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    advisor_id, store_ids = await _links(role, store_codes, advisor_code, region)
    password_hash = await asyncio.to_thread(hash_password, password)

    async def work() -> int:
        if await UserAccount.exists().where(UserAccount.phone == normalised):
            raise Conflict(f"a login with phone {normalised} already exists")
        if advisor_id is not None and await UserAccount.exists().where(
            UserAccount.advisor == advisor_id
        ):
            raise Conflict(f"advisor {advisor_code} already has a login")
        rows = await UserAccount.insert(
            UserAccount(
                phone=normalised,
                password_hash=password_hash,
                role=role,
                advisor=advisor_id,
                region=region if role == "region" else None,
            )
        ).returning(UserAccount.id)
        user_id = int(rows[0]["id"])
        if store_ids:
            await UserStore.insert(*[UserStore(user=user_id, store=s) for s in store_ids])
        await trail.record(
            "login",
            normalised,
            "create",
            None,
            {
                "role": role,
                "stores": sorted(store_codes or []) if role == "owner" else [],
                "advisor_code": advisor_code if role == "advisor" else None,
                "region": region if role == "region" else None,
                "active": True,
            },
        )
        return user_id

    return await in_write_transaction(work)


async def authenticate(phone: str, password: str) -> Principal | None:
    try:
        normalised = phone_or_error(phone, "phone")
    except InvalidInput:
        normalised = None
    row = None
    if normalised is not None:
        row = (
            await UserAccount.select(UserAccount.id, UserAccount.password_hash, UserAccount.active)
            .where(UserAccount.phone == normalised)
            .first()
        )
    stored = row["password_hash"] if row else _DECOY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    if not ok or row is None or not row["active"]:
        return None
    return await principal(int(row["id"]))


async def principal(user_id: int) -> Principal | None:
    """The person behind a token, as they are now (a deactivated advisor loses access)."""
    rows = await fetch(
        "SELECT u.id, u.role, u.phone, u.active, u.advisor, u.region, a.store AS advisor_store,"
        " a.active AS advisor_active, s.timezone FROM user_account u"
        " LEFT JOIN advisor a ON a.id = u.advisor LEFT JOIN store s ON s.id = a.store"
        " WHERE u.id = {}",
        user_id,
    )
    row = rows[0] if rows else None
    if row is None or not row["active"]:
        return None
    if row["role"] == "advisor":
        if not row["advisor_active"]:
            return None
        store_ids = frozenset({row["advisor_store"]})
    elif row["role"] == "owner":
        links = await UserStore.select(UserStore.store).where(UserStore.user == user_id)
        store_ids = frozenset(link["store"] for link in links)
    elif row["role"] == "region":
        stores = await Store.select(Store.id).where(Store.region == row["region"])
        store_ids = frozenset(store["id"] for store in stores)
    else:
        store_ids = frozenset()
    return Principal(
        user_id=row["id"],
        role=row["role"],
        phone=row["phone"],
        advisor_id=row["advisor"],
        store_ids=store_ids,
        timezone=row["timezone"],
        region=row["region"],
    )


def pos_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_pos_key(store_code: str) -> str:
    """A new key for a store's till. Only its hash is kept: it is shown once."""
    store = await Store.select(Store.id).where(Store.code == store_code).first()
    if store is None:
        raise NotFound(f"no store {store_code}")
    key = POS_KEY_PREFIX + secrets.token_urlsafe(32)

    async def work() -> None:
        await PosKey.insert(PosKey(store=store["id"], key_hash=pos_key_hash(key), prefix=key[:12]))
        # The trail keeps the prefix only: enough to tell keys apart, useless to a thief.
        await trail.record(
            "pos_key", key[:12], "create", None, {"store_code": store_code, "revoked": False}
        )

    await in_write_transaction(work)
    return key


async def store_for_pos_key(key: str) -> StoreRef | None:
    rows = await PosKey.select(
        PosKey.store.id.as_alias("id"),
        PosKey.store.code.as_alias("code"),
        PosKey.store.timezone.as_alias("timezone"),
    ).where((PosKey.key_hash == pos_key_hash(key)) & PosKey.revoked_at.is_null())
    if not rows:
        return None
    return StoreRef(id=rows[0]["id"], code=rows[0]["code"], timezone=rows[0]["timezone"])
