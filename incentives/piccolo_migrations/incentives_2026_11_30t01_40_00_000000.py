from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-30T01:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "PostgreSQL: notify which periods' totals changed, for the kept league tables"

# One notification per statement, naming the periods whose totals it changed (or '*'
# when a rebuild or new weights touch too many to name), so API processes drop the
# rankings of exactly those periods.
CREATE = (
    """
    CREATE FUNCTION tiantian_notify_score_change() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE periods text;
    BEGIN
        SELECT string_agg(DISTINCT period, ',') INTO periods FROM changed_rows;
        IF periods IS NOT NULL THEN
            IF length(periods) > 7000 THEN
                periods := '*';
            END IF;
            PERFORM pg_notify('tiantian_score_changes', periods);
        END IF;
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_{verb}_notify AFTER {verb.upper()} ON {table}"
        f" REFERENCING {'OLD' if verb == 'delete' else 'NEW'} TABLE AS changed_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION tiantian_notify_score_change()"
        for table in ("advisor_score", "store_score")
        for verb in ("insert", "update", "delete")
    ),
)
UNDO = (
    *(
        f"DROP TRIGGER {table}_{verb}_notify ON {table}"
        for table in ("advisor_score", "store_score")
        for verb in ("insert", "update", "delete")
    ),
    "DROP FUNCTION tiantian_notify_score_change()",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="incentives", description=DESCRIPTION)

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
