"""``/auth/login`` and ``/health``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from litestar.security.jwt import JWTAuth, Token
from msgspec import Meta, Struct

from advisor_api.login_guard import PhoneLockout
from members import accounts
from members.accounts import Principal
from members.db import fetch


class LoginIn(Struct):
    phone: Annotated[str, Meta(min_length=1, max_length=32)]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class LoginOut(Struct):
    access_token: str
    token_type: str
    expires_in: int
    role: str


class HealthOut(Struct, omit_defaults=True):
    status: str
    database: str
    scheduler: str  # running | off
    # With several processes one scheduler acts (leader) and the others stand by.
    scheduler_role: str | None = None


@post(
    "/auth/login",
    status_code=200,
    tags=["Auth"],
    summary="Sign in with phone and password (rate limited per address and per phone)",
)
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginIn]) -> LoginOut:
    lockout: PhoneLockout = request.app.state.login_lockout
    async with lockout.serialised(data.phone):
        await lockout.check(data.phone)
        who = await accounts.authenticate(data.phone, data.password)
        if who is None:
            await lockout.failed(data.phone)
            raise NotAuthorizedException("wrong phone or password")
        await lockout.succeeded(data.phone)
    jwt_auth: JWTAuth[Principal, Token] = request.app.state.jwt_auth
    ttl = jwt_auth.default_token_expiration
    token = jwt_auth.create_token(
        identifier=str(who.user_id), token_expiration=ttl, token_extras={"role": who.role}
    )
    return LoginOut(
        access_token=token, token_type="Bearer", expires_in=int(ttl.total_seconds()), role=who.role
    )


@get("/health", tags=["Health"], summary="Liveness and database reachability")
async def health(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    jobs = request.app.state.get("scheduler")
    state = jobs.state if jobs is not None else "off"
    scheduler = "off" if state == "off" else "running"
    role = {"running": "leader", "standby": "standby"}.get(state)
    try:
        await fetch("SELECT 1 AS ok")
    except Exception:  # any failure to reach the database is the answer itself
        return Response(HealthOut("degraded", "unreachable", scheduler, role), status_code=503)
    return Response(HealthOut("ok", "ok", scheduler, role), status_code=200)
