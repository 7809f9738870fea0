"""Credentials: JWT bearer tokens for people, ``X-API-Key`` for tills, and the
role guards that keep each role to what is its own."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityScheme
from litestar.security.jwt import JWTAuth, Token

from advisor_api.settings import Settings
from members import accounts
from members.accounts import Principal, Role
from members.services import StoreRef

POS_KEY_HEADER = "X-API-Key"
POS_SECURITY_SCHEME = "PosApiKey"
POS_SECURITY: list[dict[str, list[str]]] = [{POS_SECURITY_SCHEME: []}]
POS_SCHEME = SecurityScheme(
    type="apiKey",
    name=POS_KEY_HEADER,
    security_scheme_in="header",
    description="One key per store, made with `tiantian pos-key create --store CODE`.",
)

# Paths a bearer token is not asked for: the till has its own key.
PUBLIC_PATHS = ["^/health", "^/schema", "^/auth/login", "^/pos/"]


async def _principal_from_token(
    token: Token, _: ASGIConnection[Any, Any, Any, Any]
) -> Principal | None:
    try:
        user_id = int(token.sub)
    except ValueError:
        return None
    return await accounts.principal(user_id)


def build_jwt_auth(settings: Settings) -> JWTAuth[Principal, Token]:
    return JWTAuth[Principal, Token](
        retrieve_user_handler=_principal_from_token,
        token_secret=settings.jwt_secret,
        default_token_expiration=settings.token_ttl,
        exclude=PUBLIC_PATHS,
    )


def requires_role(
    *roles: Role,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.user
        if not isinstance(user, Principal):
            raise NotAuthorizedException("sign in first")
        if user.role not in roles:
            raise PermissionDeniedException(f"this needs the {' or '.join(roles)} role")

    return guard


class PosKeys:
    """Looks up a till's store by its key, remembering answers for a few seconds so
    that a busy till does not cost a key lookup per receipt batch."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, StoreRef]] = {}

    async def store_for(self, key: str) -> StoreRef:
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        store = await accounts.store_for_pos_key(key)
        if store is None:
            self._cache.pop(digest, None)
            raise NotAuthorizedException(f"unknown or revoked {POS_KEY_HEADER}")
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self._ttl, store)
        return store
