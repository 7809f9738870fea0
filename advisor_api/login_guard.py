"""Sign-in throttling: per address by Litestar's rate limiter (mounted on the login
route), and per phone here — after too many wrong passwords a phone is locked out
for a while, whichever address the guesses come from."""

from __future__ import annotations

import asyncio
import json
import math
import time
from datetime import timedelta

from litestar.exceptions import TooManyRequestsException
from litestar.security.jwt import JWTAuth, Token
from litestar.stores.base import Store

from members import accounts
from members.accounts import Principal
from members.phones import InvalidPhone, normalise_phone


class PhoneLockout:
    def __init__(self, store: Store, max_failures: int, window_seconds: int) -> None:
        self._store = store
        self._max = max_failures
        self._window = window_seconds
        self._locks: dict[str, asyncio.Lock] = {}

    def serialised(self, phone: str) -> asyncio.Lock:
        """One sign-in at a time per phone in this process, so that parallel guesses
        are counted before the next is tried rather than all racing past the check."""
        key = self._key(phone)
        if len(self._locks) > 10_000:
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        return self._locks.setdefault(key, asyncio.Lock())

    @staticmethod
    def _key(phone: str) -> str:
        try:
            return normalise_phone(phone)
        except InvalidPhone:
            return phone.strip()[:32]

    async def _failures(self, key: str) -> list[float]:
        raw = await self._store.get(key)
        now = time.time()
        return [t for t in json.loads(raw or b"[]") if t > now - self._window]

    async def check(self, phone: str) -> None:
        """Refuse with 429 and Retry-After while the phone is locked out."""
        failures = await self._failures(self._key(phone))
        if len(failures) >= self._max:
            retry = math.ceil(failures[-self._max] + self._window - time.time())
            raise TooManyRequestsException(
                f"too many wrong passwords for this phone; try again in {retry} s",
                headers={"Retry-After": str(max(retry, 1))},
            )

    async def failed(self, phone: str) -> None:
        key = self._key(phone)
        failures = await self._failures(key)
        failures.append(time.time())
        await self._store.set(key, json.dumps(failures[-self._max :]), expires_in=self._window)

    async def succeeded(self, phone: str) -> None:
        await self._store.delete(self._key(phone))


async def sign_in(lockout: PhoneLockout, phone: str, password: str) -> Principal | None:
    """Phone and password as the API and the sign-in page take them: one attempt at a
    time per phone, counted toward its lockout. None: wrong phone or password; a
    locked-out phone raises 429."""
    async with lockout.serialised(phone):
        await lockout.check(phone)
        who = await accounts.authenticate(phone, password)
        if who is None:
            await lockout.failed(phone)
        else:
            await lockout.succeeded(phone)
    return who


def issue_token(jwt_auth: JWTAuth[Principal, Token], who: Principal) -> tuple[str, timedelta]:
    """A bearer token for a signed-in person, and how long it lasts."""
    ttl = jwt_auth.default_token_expiration
    token = jwt_auth.create_token(
        identifier=str(who.user_id), token_expiration=ttl, token_extras={"role": who.role}
    )
    return token, ttl
