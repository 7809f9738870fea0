from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T00:57:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "points as money: the default policy, lots from the ledger so far, tiers"

INDEXES = (
    "CREATE UNIQUE INDEX purchase_return_store_return ON purchase_return (store, return_id)",
    "CREATE UNIQUE INDEX points_lot_key ON points_lot (member, month, expires_on)",
    # The daily job's expiry pass and the warning tasks read only lots with points left.
    "CREATE INDEX points_lot_open ON points_lot (expires_on) WHERE earned > used + expired",
    "CREATE UNIQUE INDEX settlement_line_key ON settlement_line (month, store)",
    "CREATE INDEX points_ledger_booked ON points_ledger (booked_month, store)",
    "CREATE INDEX return_line_product ON return_line (product)",
    "CREATE UNIQUE INDEX points_ledger_return ON points_ledger (purchase_return)",
)
DEFAULT_TIERS = (
    '[{"code": "vip", "name": "VIP", "min_points_in_year": 1500},'
    ' {"code": "gold", "name": "金卡", "min_points_in_year": 8000}]'
)
EXPIRY_MONTHS = 24


def _backfill(postgres: bool) -> list[str]:
    """Every balance so far becomes lots: each month's earnings one lot expiring at the
    end of the month 24 months on, the points spent taken from the oldest first."""
    if postgres:
        month = "to_char(occurred_on, 'YYYY-MM')"
        expires = (
            f"(to_date(month || '-01', 'YYYY-MM-DD') + interval '{EXPIRY_MONTHS + 1} months'"
            " - interval '1 day')::date"
        )
        least, greatest = "LEAST", "GREATEST"
    else:
        month = "strftime('%Y-%m', occurred_on)"
        expires = f"date(month || '-01', '+{EXPIRY_MONTHS + 1} months', '-1 day')"
        least, greatest = "MIN", "MAX"
    return [
        f"UPDATE points_ledger SET booked_month = {month}",
        "INSERT INTO points_lot (member, month, expires_on, earned, used, expired)"
        f" SELECT member, month, {expires}, earned, 0, 0 FROM (SELECT member, {month} AS month,"
        " SUM(points) AS earned FROM points_ledger WHERE kind = 'earn'"
        f" GROUP BY member, {month}) AS e WHERE earned > 0",
        # Spent: the points the ledger took away (redemptions), oldest lots first.
        "UPDATE points_lot SET used = x.take FROM (SELECT l.id,"
        f" {least}(l.earned, {greatest}(0, s.spent - (SUM(l.earned) OVER (PARTITION BY"
        " l.member ORDER BY l.expires_on, l.id) - l.earned))) AS take FROM points_lot l JOIN"
        " (SELECT member, -SUM(points) AS spent FROM points_ledger WHERE kind = 'redeem'"
        " GROUP BY member) s ON s.member = l.member) AS x"
        " WHERE points_lot.id = x.id AND x.take > 0",
    ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

    async def create():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        for statement in INDEXES:
            await Table.raw(statement)
        await Table.raw(
            "INSERT INTO points_policy (value_per_100_fen, expiry_months, expiry_warning_days,"
            " tiers, set_at) VALUES (700, {}, 30, {}, CURRENT_TIMESTAMP)",
            EXPIRY_MONTHS,
            DEFAULT_TIERS,
        )
        for statement in _backfill(postgres):
            await Table.raw(statement)

    async def drop():
        await Table.raw("DELETE FROM points_lot")
        await Table.raw("DELETE FROM points_policy")
        for index in (i.split(" INDEX ", 1)[1].split(" ", 1)[0] for i in INDEXES):
            await Table.raw(f"DROP INDEX {index}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
