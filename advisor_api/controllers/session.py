"""``/auth/login`` and ``/health``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from msgspec import Meta, Struct

from advisor_api.login_guard import issue_token, sign_in
from core.db import database_answers


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
    opt={"problems": (401, 429)},
)
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginIn]) -> LoginOut:
    who = await sign_in(request.app.state.login_lockout, data.phone, data.password)
    if who is None:
        raise NotAuthorizedException("wrong phone or password")
    token, ttl = issue_token(request.app.state.jwt_auth, who)
    return LoginOut(
        access_token=token, token_type="Bearer", expires_in=int(ttl.total_seconds()), role=who.role
    )


@get(
    "/health",
    tags=["Health"],
    summary="Liveness and database reachability",
    responses={503: ResponseSpec(HealthOut, description="The database does not answer")},
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    jobs = request.app.state.get("scheduler")
    state = jobs.state if jobs is not None else "off"
    scheduler = "off" if state == "off" else "running"
    role = {"running": "leader", "standby": "standby"}.get(state)
    if not await database_answers():
        return Response(HealthOut("degraded", "unreachable", scheduler, role), status_code=503)
    return Response(HealthOut("ok", "ok", scheduler, role), status_code=200)
