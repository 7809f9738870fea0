from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-30T01:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "score facts by advisor and by store within their weeks, for sliced rebuilds"

# A sliced rebuild sums the facts of a range of advisors (or stores) over a month's
# weeks, an index range each; the week index alone served only the old whole-month
# rebuild.
INDEXES = (
    "CREATE INDEX score_fact_advisor_week ON score_fact (advisor, counts_week)",
    "CREATE INDEX score_fact_store_week ON score_fact (store, counts_week)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="incentives", description=DESCRIPTION)

    async def create():
        for statement in INDEXES:
            await Table.raw(statement)
        await Table.raw("DROP INDEX score_fact_week")

    async def drop():
        await Table.raw("CREATE INDEX score_fact_week ON score_fact (counts_week)")
        await Table.raw("DROP INDEX score_fact_store_week")
        await Table.raw("DROP INDEX score_fact_advisor_week")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
