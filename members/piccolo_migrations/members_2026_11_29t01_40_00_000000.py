from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T01:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "store_day: a period's figures read off the index alone (PostgreSQL)"

# A national month is 25,000 store_day rows, one per store, scattered over the heap
# among the stores' day and week rows: read through the plain (period) index that is
# a page per row. With the figures in the index, the month is an index-only scan of
# a few hundred contiguous pages. SQLite (the demo's scale) keeps the plain index.
CREATE = (
    "CREATE INDEX store_day_period_figures ON store_day (period)"
    " INCLUDE (store, receipts, revenue_fen, repeat_fen, new_members)",
    "DROP INDEX store_day_period",
)
UNDO = (
    "CREATE INDEX store_day_period ON store_day (period)",
    "DROP INDEX store_day_period_figures",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="members", description=DESCRIPTION)

    async def create():
        if isinstance(Table._meta.db, PostgresEngine):
            for statement in CREATE:
                await Table.raw(statement)

    async def undo():
        if isinstance(Table._meta.db, PostgresEngine):
            for statement in UNDO:
                await Table.raw(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(undo)
    return manager
