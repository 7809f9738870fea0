import json

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T05:19:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "task indexes for the list and the daily run; the default playbook"

INDEXES = (
    "CREATE INDEX task_assignee_status_due ON task (assignee, status, due_on)",
    "CREATE INDEX task_store_status ON task (store, status)",
    "CREATE INDEX task_status_expires ON task (status, expires_on)",
    "CREATE INDEX task_member_status ON task (member, status)",
)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tasks", description=DESCRIPTION
    )

    async def create():
        from tasks.playbook import DEFAULT_RULES

        for statement in INDEXES:
            await Table.raw(statement)
        for kind, (due, expire, priority, script, params) in DEFAULT_RULES.items():
            await Table.raw(
                "INSERT INTO playbook_rule (kind, enabled, due_offset_days, expire_offset_days,"
                " priority, script, params, updated_at)"
                " VALUES ({}, true, {}, {}, {}, {}, {}, CURRENT_TIMESTAMP)"
                " ON CONFLICT (kind) DO NOTHING",
                kind, due, expire, priority, script, json.dumps(params, ensure_ascii=False),
            )

    async def drop():
        await Table.raw("DELETE FROM playbook_rule")
        for statement in INDEXES:
            await Table.raw("DROP INDEX " + statement.split(" INDEX ", 1)[1].split(" ", 1)[0])

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
