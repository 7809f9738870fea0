"""Settings from the environment (docs/contract.md names them)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from members.policy import PointsRule
from orders.services import Limits

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET_FILE = REPO_ROOT / "var" / "jwt-secret"


class UnsafeSettings(ValueError):
    """A production deployment asked to start with a setting that is for development."""


def _check_production() -> None:
    """``TIANTIAN_ENV=production`` refuses what is only safe on a developer's machine:
    a signing secret made up and kept in a file, or a frozen domain clock."""
    if os.environ.get("TIANTIAN_ENV", "development") != "production":
        return
    if not os.environ.get("TIANTIAN_JWT_SECRET"):
        raise UnsafeSettings("TIANTIAN_ENV=production needs TIANTIAN_JWT_SECRET set")
    if os.environ.get("TIANTIAN_NOW"):
        raise UnsafeSettings("TIANTIAN_NOW freezes the clock: never set it in production")


def _jwt_secret() -> str:
    """``TIANTIAN_JWT_SECRET`` in production; on a developer's machine a random one kept
    in ``var/`` so tokens survive a restart of ``make run``."""
    configured = os.environ.get("TIANTIAN_JWT_SECRET")
    if configured:
        return configured
    if SECRET_FILE.exists():
        return SECRET_FILE.read_text().strip()
    SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    SECRET_FILE.touch(mode=0o600)
    SECRET_FILE.write_text(secret)
    return secret


def _decimal(name: str, default: str) -> Decimal:
    raw = os.environ.get(name, default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {raw!r}")
    return value


def _positive_int(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number from 1, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class PushSettings:
    backend: str = "log"  # log | fcm
    credentials_path: str | None = None
    project_id: str | None = None
    endpoint: str | None = None  # a stand-in FCM server (tests, staging)
    timeout_seconds: float = 10.0
    per_hour: int = 6  # non-digest pushes an advisor gets an hour; the rest fold
    lease_seconds: float = 600.0
    interval_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> PushSettings:
        backend = os.environ.get("PUSH_BACKEND", "log")
        if backend not in ("log", "fcm"):
            raise ValueError(f"PUSH_BACKEND must be fcm or log, got {backend!r}")
        return cls(
            backend=backend,
            credentials_path=os.environ.get("FIREBASE_CREDENTIALS") or None,
            project_id=os.environ.get("FCM_PROJECT_ID") or None,
            endpoint=os.environ.get("FCM_ENDPOINT") or None,
            timeout_seconds=float(os.environ.get("TIANTIAN_FCM_TIMEOUT_SECONDS", "10")),
            per_hour=int(os.environ.get("TIANTIAN_PUSHES_PER_HOUR", "6")),
            lease_seconds=float(os.environ.get("TIANTIAN_PUSH_LEASE_SECONDS", "600")),
            interval_seconds=float(os.environ.get("TIANTIAN_PUSH_INTERVAL_SECONDS", "5")),
        )


@dataclass(frozen=True)
class Settings:
    jwt_secret: str
    token_ttl: timedelta
    points_per_yuan: Decimal
    host: str
    port: int
    pos_key_cache_seconds: float
    principal_cache_seconds: float = 10.0
    today_cache_seconds: float = 30.0
    table_cache_seconds: float = 300.0
    table_fresh_seconds: float = 3.0
    login_per_minute_per_address: int = 30
    login_failures_per_phone: int = 5
    login_lockout_seconds: int = 900
    conversion_days: int = 7
    push: PushSettings = field(default_factory=lambda: PushSettings())
    # Behind a TLS-terminating proxy the app sees http: mark the pages' cookies Secure.
    secure_cookies: bool = False
    metrics_token: str | None = None
    log_format: str = "text"  # text | json
    access_log: bool = True
    # Origins a browser app may call the API from (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # O2O orders: how far from the address a store may be to take an order, and how
    # long a store has to accept one before it moves to the next.
    o2o_radius_km: float = 10.0
    o2o_accept_minutes: int = 30

    @classmethod
    def from_env(cls) -> Settings:
        _check_production()
        log_format = os.environ.get("LOG_FORMAT", "text")
        if log_format not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be text or json, got {log_format!r}")
        origins = os.environ.get("TIANTIAN_CORS_ORIGINS", "")
        return cls(
            jwt_secret=_jwt_secret(),
            token_ttl=timedelta(hours=int(os.environ.get("TIANTIAN_TOKEN_HOURS", "12"))),
            points_per_yuan=_decimal("TIANTIAN_POINTS_PER_YUAN", "1"),
            host=os.environ.get("HOST", "127.0.0.1"),
            port=int(os.environ.get("PORT", "8000")),
            pos_key_cache_seconds=float(os.environ.get("TIANTIAN_POS_KEY_CACHE_SECONDS", "30")),
            principal_cache_seconds=float(os.environ.get("TIANTIAN_LOGIN_CACHE_SECONDS", "10")),
            today_cache_seconds=float(os.environ.get("TIANTIAN_LIST_CACHE_SECONDS", "30")),
            table_cache_seconds=float(os.environ.get("TIANTIAN_TABLE_CACHE_SECONDS", "300")),
            table_fresh_seconds=float(os.environ.get("TIANTIAN_TABLE_FRESH_SECONDS", "3")),
            login_per_minute_per_address=int(os.environ.get("TIANTIAN_LOGINS_PER_MINUTE", "30")),
            login_failures_per_phone=int(os.environ.get("TIANTIAN_LOGIN_FAILURES", "5")),
            login_lockout_seconds=int(os.environ.get("TIANTIAN_LOGIN_LOCKOUT_SECONDS", "900")),
            conversion_days=int(os.environ.get("TIANTIAN_CONVERSION_DAYS", "7")),
            push=PushSettings.from_env(),
            secure_cookies=os.environ.get("TIANTIAN_SECURE_COOKIES", "") in ("1", "true", "yes"),
            metrics_token=os.environ.get("TIANTIAN_METRICS_TOKEN") or None,
            log_format=log_format,
            access_log=os.environ.get("TIANTIAN_ACCESS_LOG", "1") not in ("0", "false", "no"),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            o2o_radius_km=float(_decimal("TIANTIAN_O2O_RADIUS_KM", "10")),
            o2o_accept_minutes=_positive_int("TIANTIAN_O2O_ACCEPT_MINUTES", "30"),
        )

    @property
    def o2o_limits(self) -> Limits:
        return Limits(self.o2o_radius_km, self.o2o_accept_minutes)

    @property
    def points_rule(self) -> PointsRule:
        return PointsRule(points_per_yuan=self.points_per_yuan)


def settings_of(request: Any) -> Settings:
    """The settings the app was made with (a request's ``app.state``)."""
    settings: Settings = request.app.state.settings
    return settings
