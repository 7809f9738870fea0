"""``/hq/v1/audit``: who changed what the program is steered and paid by, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from advisor_api.controllers.points import csv_or_json
from advisor_api.params import MAX_ID
from advisor_api.security import requires_role
from audit import queries
from audit.schemas import AuditOut
from audit.trail import Entity
from core import clock
from core.errors import InvalidInput
from members.accounts import Principal

# A date, or a date and time, with or without an offset (ISO 8601 as Python reads it).
SINCE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)


def _instant(text: str | None) -> datetime | None:
    """The ``since`` asked for, strictly as a time (a bare number is no time)."""
    if text is None:
        return None
    try:
        return clock.as_instant(datetime.fromisoformat(text), clock.zone(clock.DEFAULT_TIMEZONE))
    except ValueError:
        raise InvalidInput.on("since", "is not a time like 2026-11-01T00:00:00+08:00") from None


class HqAuditController(Controller):
    path = "/hq/v1"
    tags = ["HQ"]
    guards = [requires_role("hq")]

    @get(
        "/audit",
        summary="The audit trail, oldest first: JSON, or CSV with Accept: text/csv",
        opt={"problems": (400, 422), "csv": True},
    )
    async def audit(
        self,
        request: Request[Principal, Any, Any],
        entity: Annotated[Entity | None, QueryParameter()] = None,
        since: Annotated[
            str | None,
            QueryParameter(
                pattern=SINCE,
                max_length=40,
                description="ISO 8601, e.g. 2026-11-01T00:00:00+08:00 (no offset: Asia/Shanghai)",
            ),
        ] = None,
        after_id: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=queries.MAX_PAGE)] = queries.MAX_PAGE,
    ) -> Response[AuditOut]:
        found = await queries.entries(entity, _instant(since), after_id=after_id, limit=limit)
        return csv_or_json(request, found, queries.entries_csv(found), "audit")
