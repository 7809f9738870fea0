from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T06:05:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "an outcome once per advisor and phone-made id; the callback rule"

CALLBACK_SCRIPT = "您好,上次您说今天方便再联系,我是{store}的育儿顾问{advisor}。"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        await Table.raw(
            "CREATE UNIQUE INDEX outcome_advisor_client_id ON outcome (advisor, client_outcome_id)"
        )
        await Table.raw(
            "INSERT INTO playbook_rule (kind, enabled, due_offset_days, expire_offset_days,"
            " priority, script, params, updated_at)"
            " VALUES ('callback', true, 0, 3, 2, {}, {}, CURRENT_TIMESTAMP)"
            " ON CONFLICT (kind) DO NOTHING",
            CALLBACK_SCRIPT,
            "{}",
        )
        await Table.raw(
            "CREATE UNIQUE INDEX task_converted_purchase ON task (converted_purchase)"
        )

    async def drop():
        await Table.raw("DROP INDEX outcome_advisor_client_id")
        await Table.raw("DROP INDEX task_converted_purchase")
        await Table.raw("DELETE FROM playbook_rule WHERE kind = 'callback'")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
