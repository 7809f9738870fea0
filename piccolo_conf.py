"""Piccolo configuration: the engine comes from ``DATABASE_URL``.

unset                       -> embedded SQLite at ``var/tiantian.sqlite3``
``sqlite:///path/file``     -> that SQLite file
``postgresql://…``          -> PostgreSQL (a pool is opened in the app's lifespan)
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

DEFAULT_SQLITE_PATH = Path(__file__).resolve().parent / "var" / "tiantian.sqlite3"
SQLITE_BUSY_TIMEOUT_SECONDS = 30


def _prepare_sqlite(path: Path) -> None:
    # WAL lets readers run beside the one writer; the setting lives in the file,
    # so doing it once at start-up is enough for every later connection.
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def engine_from_url(url: str | None) -> Engine:  # type: ignore[type-arg]
    if not url:
        path = DEFAULT_SQLITE_PATH
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
    elif url.startswith(("postgresql://", "postgres://")):
        return PostgresEngine(config={"dsn": url})
    else:
        raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgresql://, got {url!r}")
    _prepare_sqlite(path)
    return SQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)


DB = engine_from_url(os.environ.get("DATABASE_URL"))

APP_REGISTRY = AppRegistry(
    apps=[
        "audit.piccolo_app",
        "members.piccolo_app",
        "orders.piccolo_app",
        "tasks.piccolo_app",
        "incentives.piccolo_app",
        "notifications.piccolo_app",
    ]
)
