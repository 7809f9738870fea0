from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T07:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "score keys and ranking indexes; default weights and bonus rates"

INDEXES = (
    "CREATE UNIQUE INDEX advisor_score_key ON advisor_score (period, advisor)",
    "CREATE UNIQUE INDEX store_score_key ON store_score (period, store)",
    # League tables: the top N of a period straight off the index, and "how many
    # scored more than me" as an index range.
    "CREATE INDEX advisor_score_rank ON advisor_score (period, score DESC, advisor)",
    "CREATE INDEX store_score_rank ON store_score (period, score DESC, store)",
    "CREATE INDEX advisor_score_advisor ON advisor_score (advisor, period)",
    "CREATE INDEX score_fact_booked ON score_fact (booked_month, advisor)",
    "CREATE INDEX score_fact_advisor ON score_fact (advisor, booked_month)",
    "CREATE INDEX score_fact_month ON score_fact (counts_month)",
    "CREATE INDEX score_fact_week ON score_fact (counts_week)",
    "CREATE INDEX score_fact_task ON score_fact (task) WHERE task IS NOT NULL",
    "CREATE UNIQUE INDEX contest_pair_key ON contest_pair (contest, position)",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="incentives", description=DESCRIPTION
    )

    async def create():
        for statement in INDEXES:
            await Table.raw(statement)
        # 50 a new member, 0.1 a point, 1 a task done, 5 a conversion (hundredths).
        await Table.raw(
            "INSERT INTO score_weights (new_member, points, task_done, task_converted,"
            " updated_at) VALUES (5000, 10, 100, 500, CURRENT_TIMESTAMP)"
        )
        # 20 yuan a new member, 10 yuan per 1,000 points, no completion gate.
        await Table.raw(
            "INSERT INTO bonus_rates (effective_from, per_new_member_fen, per_1000_points_fen,"
            " completion_gate_bp, updated_at) VALUES ('2000-01', 2000, 1000, NULL,"
            " CURRENT_TIMESTAMP)"
        )

    async def drop():
        await Table.raw("DELETE FROM bonus_rates")
        await Table.raw("DELETE FROM score_weights")
        for statement in INDEXES:
            await Table.raw("DROP INDEX " + statement.split(" INDEX ", 1)[1].split(" ", 1)[0])

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
