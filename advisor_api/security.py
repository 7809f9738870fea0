"""Credentials: JWT bearer tokens for people, ``X-API-Key`` for tills, and the
role guards that keep each role to what is its own."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.openapi.spec import SecurityScheme
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from advisor_api.settings import Settings
from audit import trail
from members import accounts
from members.accounts import Principal, Role
from members.stores import StoreRef
from orders.channels import Channel, channel_for_key, channel_key_hash

POS_KEY_HEADER = "X-API-Key"
POS_SECURITY_SCHEME = "PosApiKey"
POS_SECURITY: list[dict[str, list[str]]] = [{POS_SECURITY_SCHEME: []}]
POS_SCHEME = SecurityScheme(
    type="apiKey",
    name=POS_KEY_HEADER,
    security_scheme_in="header",
    description="One key per store, made with `tiantian pos-key create --store CODE`.",
)

CHANNEL_SECURITY_SCHEME = "ChannelApiKey"
CHANNEL_SECURITY: list[dict[str, list[str]]] = [{CHANNEL_SECURITY_SCHEME: []}]
CHANNEL_SCHEME = SecurityScheme(
    type="apiKey",
    name=POS_KEY_HEADER,
    security_scheme_in="header",
    description="One key per sales channel (mini-program, app, web shop), made with "
    "`tiantian channel-key create --name NAME`. A till's POS key is not one.",
)

# Paths a bearer token is not asked for: the till has its own key.
# Pages sign in with a cookie of their own (advisor_api.web), not the Bearer header.
PUBLIC_PATHS = [
    "^/health",
    "^/metrics",  # its own token (TIANTIAN_METRICS_TOKEN)
    "^/schema",
    "^/auth/login",
    "^/pos/",
    "^/o2o/",  # a sales channel's key
    "^/web",
    "^/$",
]


class Principals:
    """Who a token's user is now, remembered for a few seconds: an advisor's phone
    polls its list, and one user look-up per poll would double the list's cost.
    A deactivated login stops working within that time."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[int, tuple[float, Principal | None]] = {}

    async def __call__(
        self, token: Token, _: ASGIConnection[Any, Any, Any, Any]
    ) -> Principal | None:
        try:
            user_id = int(token.sub)
        except ValueError:
            return None
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        who = await accounts.principal(user_id)
        if self._ttl > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[user_id] = (time.monotonic() + self._ttl, who)
        return who


class VerifiedTokens(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, remembering tokens it has verified: a token's bytes
    never change, so its signature needs checking once; its expiry is checked on
    every use. Verifying an HMAC JWT costs more than serving a cached list."""

    _verified: ClassVar[dict[str, Token]] = {}

    async def authenticate_token(
        self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = self._verified.get(encoded_token)
        if token is None or token.exp <= datetime.now(UTC):
            token = self.token_cls.decode(
                encoded_token=encoded_token,
                secret=self.token_secret,
                algorithm=self.algorithm,
                audience=self.token_audience,
                issuer=self.token_issuer,
                require_claims=self.require_claims,
                verify_exp=self.verify_expiry,
                verify_nbf=self.verify_not_before,
                strict_audience=self.strict_audience,
            )
            if len(self._verified) > 100_000:
                self._verified.clear()
            self._verified[encoded_token] = token
        user = await self.retrieve_user_handler(token, connection)
        if not user:
            raise NotAuthorizedException()
        return AuthenticationResult(user=user, auth=token)


def build_jwt_auth(settings: Settings) -> JWTAuth[Principal, Token]:
    return JWTAuth[Principal, Token](
        authentication_middleware_class=VerifiedTokens,
        retrieve_user_handler=Principals(settings.principal_cache_seconds),
        token_secret=settings.jwt_secret,
        default_token_expiration=settings.token_ttl,
        exclude=PUBLIC_PATHS,
    )


def requires_role(
    *roles: Role,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    # async, so that Litestar calls it in the loop rather than in a worker thread
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            # A browser's CORS preflight carries no credentials by design; it is
            # answered with the route's methods and opens nothing.
            return
        user = connection.scope.get("user")
        if not isinstance(user, Principal):
            raise NotAuthorizedException("sign in first")
        if user.role not in roles:
            raise PermissionDeniedException(f"this needs the {' or '.join(roles)} role")
        # Whatever this request changes goes on the audit trail under this name.
        trail.acting_as(actor_name(user))

    return guard


def actor_name(user: Principal) -> str:
    """How the audit trail names a signed-in person: role and login phone."""
    return f"{user.role}:{user.phone}"


class PosKeys:
    """Looks up a till's store by its key, remembering answers for a few seconds so
    that a busy till does not cost a key lookup per receipt batch."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, StoreRef]] = {}

    async def store_for(self, key: str) -> StoreRef:
        digest = accounts.pos_key_hash(key)
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


class ChannelKeys:
    """Sales channels by key, remembered for a few seconds like the tills' keys."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Channel]] = {}

    async def channel_for(self, key: str) -> Channel:
        digest = channel_key_hash(key)
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        channel = await channel_for_key(key)
        if channel is None:
            self._cache.pop(digest, None)
            raise NotAuthorizedException(f"unknown or revoked sales-channel {POS_KEY_HEADER}")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self._ttl, channel)
        return channel

    def forget(self, channel_id: int) -> None:
        """A revoked channel is refused at once here (other servers: within the TTL)."""
        for digest, (_, channel) in list(self._cache.items()):
            if channel.id == channel_id:
                self._cache.pop(digest, None)
