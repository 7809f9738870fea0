import os

from piccolo.conf.apps import AppConfig

from tasks import tables

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="tasks",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[
        tables.PlaybookRule,
        tables.Campaign,
        tables.Task,
        tables.TaskEvent,
        tables.Outcome,
        tables.TaskSummary,
    ],
    migration_dependencies=["members.piccolo_app"],
    commands=[],
)
