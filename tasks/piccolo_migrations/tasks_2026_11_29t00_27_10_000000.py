from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

ID = "2026-11-29T00:27:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "task_summary kept by triggers: the playbook's figures by due period"

INDEXES = (
    "CREATE UNIQUE INDEX task_summary_key ON task_summary (store, period, kind, campaign)",
    "CREATE INDEX task_summary_period ON task_summary (period)",
    "CREATE INDEX task_stage_up_open ON task (member) WHERE kind = 'stage_up' AND kept_on IS NULL",
)
REACHED = "('reached', 'will_buy', 'purchased', 'delivery_requested')"

# A task's part in its summary rows.
FIGURES = (
    "made",
    "cancelled",
    "contacted",
    "reached",
    "done",
    "expired",
    "converted",
    "converted_fen",
    "kept",
)


def _contribution(t: str, sign: str, integer: str) -> str:
    """The columns a task row ``t`` adds (sign 1) or takes away (sign -1)."""
    return ", ".join(
        (
            f"{t}.store AS store",
            f"{t}.due_on AS day",
            f"{t}.kind AS kind",
            f"CASE WHEN {t}.kind = 'campaign' THEN CAST({t}.topic AS {integer}) ELSE 0 END"
            " AS campaign",
            f"{sign} AS made",
            f"{sign} * (CASE WHEN {t}.status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled",
            f"{sign} * (CASE WHEN {t}.contacted_at IS NOT NULL THEN 1 ELSE 0 END) AS contacted",
            f"{sign} * (CASE WHEN {t}.reached THEN 1 ELSE 0 END) AS reached",
            f"{sign} * (CASE WHEN {t}.status = 'done' THEN 1 ELSE 0 END) AS done",
            f"{sign} * (CASE WHEN {t}.status = 'expired' THEN 1 ELSE 0 END) AS expired",
            f"{sign} * (CASE WHEN {t}.converted_purchase IS NOT NULL THEN 1 ELSE 0 END)"
            " AS converted",
            f"{sign} * COALESCE({t}.converted_fen, 0) AS converted_fen",
            # Kept among the due: a cancelled stage_up is neither.
            f"{sign} * (CASE WHEN {t}.kept_on IS NOT NULL AND {t}.status <> 'cancelled'"
            " THEN 1 ELSE 0 END) AS kept",
        )
    )


COLUMNS = "store, period, kind, campaign, " + ", ".join(FIGURES)
SUMS = ", ".join(f"SUM(c.{f})" for f in FIGURES)
ADD = " ON CONFLICT (store, period, kind, campaign) DO UPDATE SET " + ", ".join(
    f"{f} = task_summary.{f} + excluded.{f}" for f in FIGURES
)
NONZERO = " OR ".join(f"SUM(c.{f}) <> 0" for f in FIGURES)

PG_KEY = ("to_char({d}, 'YYYY-MM-DD')", "to_char({d}, 'IYYY-\"W\"IW')", "to_char({d}, 'YYYY-MM')")
_THURSDAY = "date({d}, printf('%+d days', 3 - (CAST(strftime('%w', {d}) AS INTEGER) + 6) % 7))"
SQLITE_KEY = (
    "date({d})",
    "strftime('%Y', " + _THURSDAY + ") || '-W' ||"
    " printf('%02d', (CAST(strftime('%j', " + _THURSDAY + ") AS INTEGER) - 1) / 7 + 1)",
    "strftime('%Y-%m', {d})",
)


def _pg_function(name: str, sources: str) -> str:
    keys = ", ".join(f"({k.format(d='c.day')})" for k in PG_KEY)
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO task_summary ({COLUMNS})
        SELECT c.store, k.period, c.kind, c.campaign, {SUMS}
        FROM ({sources}) c CROSS JOIN LATERAL (VALUES {keys}) AS k(period)
        GROUP BY c.store, k.period, c.kind, c.campaign HAVING {NONZERO}
        ORDER BY c.store, k.period, c.kind, c.campaign{ADD};
        RETURN NULL;
    END $$
    """


PG_NEW = f"SELECT {_contribution('n', '1', 'integer')} FROM new_rows n"
PG_OLD = f"SELECT {_contribution('o', '-1', 'integer')} FROM old_rows o"
# Statement triggers with transition tables: one upsert per writing statement, rows in
# key order so that two writers meeting on the same summary rows queue, not deadlock.
POSTGRES = (
    _pg_function("tiantian_task_summary_insert", PG_NEW),
    _pg_function("tiantian_task_summary_update", f"{PG_NEW} UNION ALL {PG_OLD}"),
    _pg_function("tiantian_task_summary_delete", PG_OLD),
    "CREATE TRIGGER task_summary_insert AFTER INSERT ON task REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION tiantian_task_summary_insert()",
    "CREATE TRIGGER task_summary_update AFTER UPDATE ON task REFERENCING NEW TABLE AS new_rows"
    " OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tiantian_task_summary_update()",
    "CREATE TRIGGER task_summary_delete AFTER DELETE ON task REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION tiantian_task_summary_delete()",
)


def _sqlite_upsert(row: str, sign: str) -> str:
    keys = " UNION ALL ".join(f"SELECT {k.format(d=row + '.due_on')} AS period" for k in SQLITE_KEY)
    return (
        f"INSERT INTO task_summary ({COLUMNS}) SELECT c.store, k.period, c.kind, c.campaign,"
        f" {', '.join('c.' + f for f in FIGURES)} FROM (SELECT {_contribution(row, sign, 'INTEGER')})"
        f" c, ({keys}) AS k WHERE true{ADD};"
    )


WATCHED = "status, contacted_at, reached, converted_purchase, converted_fen, kept_on, due_on"
# SQLite: row triggers; an update takes the old row's part away and adds the new one's.
SQLITE = (
    "CREATE TRIGGER task_summary_insert AFTER INSERT ON task BEGIN "
    + _sqlite_upsert("NEW", "1")
    + " END",
    f"CREATE TRIGGER task_summary_update AFTER UPDATE OF {WATCHED}, store, kind, topic ON task"
    " BEGIN " + _sqlite_upsert("OLD", "-1") + " " + _sqlite_upsert("NEW", "1") + " END",
    "CREATE TRIGGER task_summary_delete AFTER DELETE ON task BEGIN "
    + _sqlite_upsert("OLD", "-1")
    + " END",
)


def _backfill(postgres: bool) -> list[str]:
    """The figures of the tasks already there: contacts and reaches from their
    outcomes, kept stage-ups from purchases, then their summary rows."""
    integer = "integer" if postgres else "INTEGER"
    in_30 = "t.anchor_on + 30" if postgres else "date(t.anchor_on, '+30 days')"
    statements = [
        "UPDATE task SET contacted_at = (SELECT MIN(o.recorded_at) FROM outcome o"
        " WHERE o.task = task.id) WHERE EXISTS (SELECT 1 FROM outcome o WHERE o.task = task.id)",
        f"UPDATE task SET reached = true WHERE EXISTS (SELECT 1 FROM outcome o"
        f" WHERE o.task = task.id AND o.result IN {REACHED})",
        # A stage_up is kept when the member bought the stage it is for within 30 days
        # of the boundary (the baby turning 6, 12 or 36 months).
        "UPDATE task SET kept_on = k.day FROM (SELECT t.id, MIN(p.purchased_on) AS day"
        " FROM task t JOIN purchase p ON p.member = t.member"
        " JOIN purchase_line l ON l.purchase = p.id JOIN product pr ON pr.id = l.product"
        " WHERE t.kind = 'stage_up' AND pr.category = 'formula' AND pr.stage >="
        " CASE t.topic WHEN '6' THEN 2 WHEN '12' THEN 3 WHEN '36' THEN 4 END"
        f" AND p.purchased_on >= t.anchor_on AND p.purchased_on <= {in_30} GROUP BY t.id) k"
        " WHERE task.id = k.id",
    ]
    for key in PG_KEY if postgres else SQLITE_KEY:
        period = key.format(d="c.day")
        statements.append(
            f"INSERT INTO task_summary ({COLUMNS}) SELECT c.store, {period}, c.kind,"
            f" c.campaign, {SUMS} FROM (SELECT {_contribution('t', '1', integer)} FROM task t)"
            f" c WHERE true GROUP BY c.store, {period}, c.kind, c.campaign{ADD}"
        )
    return statements


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tasks", description=DESCRIPTION)

    async def create():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        for statement in INDEXES:
            await Table.raw(statement)
        for statement in _backfill(postgres):
            await Table.raw(statement)
        for statement in POSTGRES if postgres else SQLITE:
            await Table.raw(statement)

    async def drop():
        postgres = isinstance(Table._meta.db, PostgresEngine)
        for what in ("insert", "update", "delete"):
            if postgres:
                await Table.raw(f"DROP TRIGGER task_summary_{what} ON task")
                await Table.raw(f"DROP FUNCTION tiantian_task_summary_{what}()")
            else:
                await Table.raw(f"DROP TRIGGER task_summary_{what}")
        for index in (i.split(" INDEX ", 1)[1].split(" ", 1)[0] for i in INDEXES):
            await Table.raw(f"DROP INDEX {index}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
