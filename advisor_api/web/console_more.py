"""HQ's console, continued: campaigns (a segment with the members it reaches, counted
before it is created), imports (upload, the result, the refused lines as CSV) and
the audit trail."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from advisor_api.settings import settings_of
from advisor_api.web.common import page_user
from advisor_api.web.console import Form, Note, Text, back, console
from audit import queries as trail
from audit.trail import ENTITIES
from core import clock
from core.errors import DomainError, InvalidInput
from members.imports import COLUMNS, import_upload
from tasks.campaigns import create_campaign, recent_campaigns, segment_size

Day = Annotated[date | None, QueryParameter()]


def segment_of(form: dict[str, str]) -> dict[str, Any]:
    """A campaign's segment from the page's fields (each may be left empty)."""
    segment: dict[str, Any] = {}
    if region := form.get("region", "").strip():
        segment["region"] = region
    if stores := [c.strip() for c in form.get("store_codes", "").split(",") if c.strip()]:
        segment["store_codes"] = stores
    ages = (form.get("age_from", "").strip(), form.get("age_to", "").strip())
    if any(ages):
        if not all(a.isdigit() for a in ages):
            raise InvalidInput.on("segment.baby_age_months", "宝宝月龄填两个整数")
        segment["baby_age_months"] = [int(ages[0]), int(ages[1])]
    if category := form.get("category", "").strip():
        segment["last_purchase_category"] = category
    return segment


@dataclass
class UploadForm:
    kind: str
    file: UploadFile


class ConsoleMorePages(Controller):
    path = "/hq"
    include_in_schema = False

    @get("/campaigns")
    async def campaigns(
        self, request: Request[Any, Any, Any], error: Note = None, done: Note = None,
        region: Text = None, store_codes: Text = None, age_from: Text = None,
        age_to: Text = None, category: Text = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        asked = {
            "region": region or "", "store_codes": store_codes or "", "age_from": age_from or "",
            "age_to": age_to or "", "category": category or "",
        }  # fmt: skip
        today = clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
        reach = None
        if any(asked.values()) or request.query_params.get("count"):
            try:
                reach = await segment_size(segment_of(asked), today)
            except DomainError as exc:
                error = exc.detail
        return console(
            "campaigns", who, campaigns=await recent_campaigns(), asked=asked, reach=reach,
            today=today, error=error, done=done,
        )  # fmt: skip

    @post("/campaigns", status_code=303)
    async def create(self, request: Request[Any, Any, Any], data: Form) -> Redirect:
        await page_user(request, "hq")
        try:
            name = data.get("name", "").strip()
            script = data.get("script", "").strip()
            if not name or not script:
                raise InvalidInput.on("name", "活动名称和话术必填")
            try:
                starts = date.fromisoformat(data.get("starts_on", ""))
                ends = date.fromisoformat(data.get("ends_on", ""))
            except ValueError:
                raise InvalidInput.on("starts_on", "日期格式 YYYY-MM-DD") from None
            campaign_id, made = await create_campaign(name, starts, ends, segment_of(data), script)
        except DomainError as exc:
            return back("campaigns", exc)
        return back("campaigns", done=f"已创建活动 #{campaign_id},今天生成 {made} 条任务")

    @get("/imports")
    async def imports(self, request: Request[Any, Any, Any]) -> Template:
        who = await page_user(request, "hq")
        return console("imports", who, columns=COLUMNS, report=None, kind=None, error=None)

    @post("/imports")
    async def upload(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Template:
        who = await page_user(request, "hq")
        report, error = None, None
        if data.kind not in COLUMNS:
            error = f"未知的导入类型 {data.kind}"
        else:
            body = await data.file.read()
            try:
                report = await import_upload(
                    data.kind,  # type: ignore[arg-type]  # checked against COLUMNS above
                    body,
                    settings_of(request).points_rule,
                )
            except DomainError as exc:
                error = exc.detail
        return console(
            "imports", who, columns=COLUMNS, report=report, kind=data.kind, error=error,
            rejected_csv=_rejected_csv(report) if report else "",
        )  # fmt: skip

    @post("/imports/rejected.csv")
    async def rejected_csv(self, request: Request[Any, Any, Any], data: Form) -> Response[bytes]:
        """The refused lines of the import just shown, handed back as a file."""
        await page_user(request, "hq")
        return Response(
            ("\ufeff" + data.get("csv", "")).encode(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="rejected.csv"'},
        )

    @get("/audit")
    async def audit(
        self, request: Request[Any, Any, Any], entity: Text = None, since: Day = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        found = await trail.entries(entity or None, _since(since), limit=500, newest_first=True)
        return console(
            "audit", who, entries=found.entries, entity=entity or "",
            since=since or "", entities=ENTITIES, zone=clock.zone(clock.DEFAULT_TIMEZONE),
        )  # fmt: skip

    @get("/audit.csv")
    async def audit_csv(
        self, request: Request[Any, Any, Any], entity: Text = None, since: Day = None,
    ) -> Response[bytes]:  # fmt: skip
        await page_user(request, "hq")
        found = await trail.entries(entity or None, _since(since))
        return Response(
            trail.entries_csv(found),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )


def _since(day: date | None) -> datetime | None:
    if day is None:
        return None
    return clock.day_bounds(day, clock.zone(clock.DEFAULT_TIMEZONE))[0]


def _rejected_csv(report: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("行", "字段", "原因"))
    for r in report.rejected:
        writer.writerow((r.line, r.field, r.message))
    return out.getvalue()
