"""``/hq/v1/audit``: who changed what the program is steered and paid by, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from advisor_api.controllers.points import csv_or_json
from advisor_api.params import MAX_ID
from advisor_api.security import requires_role
from audit import queries
from audit.schemas import AuditOut
from members.accounts import Principal

Entity = Literal[
    "store",
    "advisor",
    "product",
    "login",
    "pos_key",
    "channel_key",
    "playbook",
    "campaign",
    "contest",
    "score_weights",
    "bonus_rates",
    "targets",
    "points_policy",
    "points_promotion",
    "month_close",
    "import",
]


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
            datetime | None, QueryParameter(description="ISO 8601 with offset")
        ] = None,
        after_id: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=queries.MAX_PAGE)] = queries.MAX_PAGE,
    ) -> Response[AuditOut]:
        found = await queries.entries(entity, since, after_id=after_id, limit=limit)
        return csv_or_json(request, found, queries.entries_csv(found), "audit")
