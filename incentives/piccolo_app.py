import os

from piccolo.conf.apps import AppConfig

from incentives import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="incentives",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[
        tables.ScoreFact,
        tables.AdvisorScore,
        tables.StoreScore,
        tables.ScoreWeights,
        tables.BonusRates,
        tables.ClosedMonth,
        tables.StatementLine,
        tables.Contest,
        tables.ContestPair,
        tables.Target,
    ],
    migration_dependencies=["members.piccolo_app", "tasks.piccolo_app"],
    commands=[],
)
