from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T00:27:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "RN3's repeat flag on purchases; store_day kept by triggers; activity snapshots"

INDEXES = (
    "CREATE UNIQUE INDEX store_day_store_period ON store_day (store, period)",
    "CREATE INDEX store_day_period ON store_day (period)",
    "CREATE UNIQUE INDEX store_activity_store_day ON store_activity (store, day)",
    "CREATE INDEX store_activity_day ON store_activity (day)",
    "CREATE INDEX member_joined_on ON member (joined_on)",
    "CREATE INDEX user_account_region ON user_account (region) WHERE region IS NOT NULL",
)

# The period keys a day counts in, as the API writes them: 2026-11-20, 2026-W47, 2026-11.
PG_KEYS = (
    "LATERAL (VALUES (to_char({d}, 'YYYY-MM-DD')), (to_char({d}, 'IYYY-\"W\"IW')),"
    " (to_char({d}, 'YYYY-MM'))) AS k(period)"
)
PG_KEY = ("to_char({d}, 'YYYY-MM-DD')", "to_char({d}, 'IYYY-\"W\"IW')", "to_char({d}, 'YYYY-MM')")
_THURSDAY = "date({d}, printf('%+d days', 3 - (CAST(strftime('%w', {d}) AS INTEGER) + 6) % 7))"
SQLITE_KEY = (
    "date({d})",
    "strftime('%Y', " + _THURSDAY + ") || '-W' ||"
    " printf('%02d', (CAST(strftime('%j', " + _THURSDAY + ") AS INTEGER) - 1) / 7 + 1)",
    "strftime('%Y-%m', {d})",
)
SQLITE_KEYS = "(" + " UNION ALL ".join(f"SELECT {k} AS period" for k in SQLITE_KEY) + ") AS k"
ADD = (
    " ON CONFLICT (store, period) DO UPDATE SET"
    " receipts = store_day.receipts + excluded.receipts,"
    " revenue_fen = store_day.revenue_fen + excluded.revenue_fen,"
    " repeat_fen = store_day.repeat_fen + excluded.repeat_fen,"
    " new_members = store_day.new_members + excluded.new_members"
)


def _pg_repeat() -> str:
    return (
        "UPDATE purchase SET repeat = x.rep FROM (SELECT id, COALESCE(purchased_on"
        " - LAG(purchased_on) OVER (PARTITION BY member ORDER BY purchased_at, id) <= 90,"
        " false) AS rep FROM purchase) x WHERE purchase.id = x.id AND x.rep"
    )


def _sqlite_repeat() -> str:
    return (
        "UPDATE purchase SET repeat = x.rep FROM (SELECT id, COALESCE(julianday(purchased_on)"
        " - julianday(LAG(purchased_on) OVER (PARTITION BY member ORDER BY purchased_at, id))"
        " <= 90, 0) AS rep FROM purchase) x WHERE purchase.id = x.id AND x.rep"
    )


def _backfill(keys: tuple[str, ...]) -> list[str]:
    """The rows already there, summed once per kind of period."""
    statements = []
    for key in keys:
        day = key.format(d="p.purchased_on")
        statements.append(
            "INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen,"
            f" new_members) SELECT p.store, {day}, COUNT(*), SUM(p.total_fen),"
            " SUM(CASE WHEN p.repeat THEN p.total_fen ELSE 0 END), 0 FROM purchase p"
            f" WHERE true GROUP BY p.store, {day}" + ADD
        )
        joined = key.format(d="m.joined_on")
        statements.append(
            "INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen,"
            f" new_members) SELECT m.home_store, {joined}, 0, 0, 0, COUNT(*) FROM member m"
            f" WHERE true GROUP BY m.home_store, {joined}" + ADD
        )
    return statements


# PostgreSQL: one statement per writing statement, from its transition tables; rows
# go in key order so two writers meeting on the same days queue rather than deadlock.
POSTGRES = (
    """
    CREATE FUNCTION tiantian_store_day_purchases() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen, new_members)
        SELECT c.store, k.period, SUM(c.n), SUM(c.revenue), SUM(c.repeat), 0 FROM (
            SELECT store, purchased_on AS day, 1 AS n, total_fen AS revenue,
                CASE WHEN repeat THEN total_fen ELSE 0 END AS repeat FROM new_rows
            UNION ALL
            SELECT store, purchased_on, -1, -total_fen,
                -(CASE WHEN repeat THEN total_fen ELSE 0 END) FROM old_rows
        ) c CROSS JOIN """
    + PG_KEYS.format(d="c.day")
    + """
        GROUP BY c.store, k.period
        HAVING SUM(c.n) <> 0 OR SUM(c.revenue) <> 0 OR SUM(c.repeat) <> 0
        ORDER BY c.store, k.period"""
    + ADD
    + """;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION tiantian_store_day_members() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen, new_members)
        SELECT n.home_store, k.period, 0, 0, 0, COUNT(*) FROM new_rows n CROSS JOIN """
    + PG_KEYS.format(d="n.joined_on")
    + """
        GROUP BY n.home_store, k.period ORDER BY n.home_store, k.period"""
    + ADD
    + """;
        RETURN NULL;
    END $$
    """,
    # The old rows' table is empty on insert: one function serves both.
    "CREATE TRIGGER store_day_purchase_insert AFTER INSERT ON purchase REFERENCING NEW TABLE"
    " AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiantian_store_day_purchases_insert()",
    "CREATE TRIGGER store_day_purchase_update AFTER UPDATE ON purchase REFERENCING NEW TABLE"
    " AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION tiantian_store_day_purchases()",
    "CREATE TRIGGER store_day_member_insert AFTER INSERT ON member REFERENCING NEW TABLE"
    " AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiantian_store_day_members()",
)
# The insert trigger has no old rows to read: its own copy of the function without them.
POSTGRES = (
    POSTGRES[0],
    POSTGRES[0]
    .replace("tiantian_store_day_purchases()", "tiantian_store_day_purchases_insert()")
    .replace(
        """            UNION ALL
            SELECT store, purchased_on, -1, -total_fen,
                -(CASE WHEN repeat THEN total_fen ELSE 0 END) FROM old_rows
""",
        "",
    ),
    *POSTGRES[1:],
)

SQLITE_ROW = (
    "INSERT INTO store_day (store, period, receipts, revenue_fen, repeat_fen, new_members)"
    " SELECT {store}, k.period, {n}, {revenue}, {repeat}, {members} FROM "
    + SQLITE_KEYS
    + " WHERE true"
    + ADD
)
SQLITE = (
    "CREATE TRIGGER store_day_purchase_insert AFTER INSERT ON purchase BEGIN "
    + SQLITE_ROW.format(
        store="NEW.store",
        n=1,
        revenue="NEW.total_fen",
        repeat="CASE WHEN NEW.repeat THEN NEW.total_fen ELSE 0 END",
        members=0,
        d="NEW.purchased_on",
    )
    + "; END",
    "CREATE TRIGGER store_day_purchase_repeat AFTER UPDATE OF repeat ON purchase"
    " WHEN NEW.repeat IS NOT OLD.repeat BEGIN "
    + SQLITE_ROW.format(
        store="NEW.store",
        n=0,
        revenue=0,
        repeat="CASE WHEN NEW.repeat THEN NEW.total_fen ELSE -NEW.total_fen END",
        members=0,
        d="NEW.purchased_on",
    )
    + "; END",
    "CREATE TRIGGER store_day_member_insert AFTER INSERT ON member BEGIN "
    + SQLITE_ROW.format(
        store="NEW.home_store", n=0, revenue=0, repeat=0, members=1, d="NEW.joined_on"
    )
    + "; END",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

    async def create():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        for statement in INDEXES:
            await Table.raw(statement)
        await Table.raw(_pg_repeat() if postgres else _sqlite_repeat())
        for statement in _backfill(PG_KEY if postgres else SQLITE_KEY):
            await Table.raw(statement)
        for statement in POSTGRES if postgres else SQLITE:
            await Table.raw(statement)

    async def drop():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        if postgres:
            statements = (
                "DROP TRIGGER store_day_purchase_insert ON purchase",
                "DROP TRIGGER store_day_purchase_update ON purchase",
                "DROP TRIGGER store_day_member_insert ON member",
                "DROP FUNCTION tiantian_store_day_purchases()",
                "DROP FUNCTION tiantian_store_day_purchases_insert()",
                "DROP FUNCTION tiantian_store_day_members()",
            )
        else:
            statements = (
                "DROP TRIGGER store_day_purchase_insert",
                "DROP TRIGGER store_day_purchase_repeat",
                "DROP TRIGGER store_day_member_insert",
            )
        for statement in statements:
            await Table.raw(statement)
        for index in (i.split(" INDEX ", 1)[1].split(" ", 1)[0] for i in INDEXES):
            await Table.raw(f"DROP INDEX {index}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
