from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T01:40:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "task_summary: a period's figures read off the index alone (PostgreSQL)"

# A national month is ~200,000 task_summary rows (store x kind x campaign), scattered
# over the heap among the day and week rows: through the plain (period) index that
# is a page or more per store. Keyed by (period, kind, campaign) with the figures
# included, the playbook's month and the stage-ups of a few months are index-only
# scans of contiguous pages. SQLite (the demo's scale) keeps the plain index.
CREATE = (
    "CREATE INDEX task_summary_period_figures ON task_summary (period, kind, campaign)"
    " INCLUDE (store, made, cancelled, contacted, reached, done, expired, converted,"
    " converted_fen, kept)",
    "DROP INDEX task_summary_period",
)
UNDO = (
    "CREATE INDEX task_summary_period ON task_summary (period)",
    "DROP INDEX task_summary_period_figures",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tasks", description=DESCRIPTION)

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
