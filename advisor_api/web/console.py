"""HQ's console for the registry and who may sign in: stores, advisors (with what a
move or deactivation hands over, and to whom), products, logins, the tills' keys and
the sales channels' keys.
Each form goes through the same service as its API twin, so each change lands on
the audit trail under the signed-in person's name."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from advisor_api.web.common import page_user
from core import clock
from core.errors import DomainError, InvalidInput, NotFound
from members import accounts, contact, logins, registry
from members.accounts import ROLES
from members.queries import advisor_ids_by_code
from members.schemas import AdvisorIn, ProductIn, StoreIn
from orders import channels
from tasks.campaigns import open_task_count

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Text = Annotated[str | None, QueryParameter(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]
Note = Annotated[str | None, QueryParameter(max_length=300)]
PREFIX = r"^ttpos_[A-Za-z0-9_-]{6}$"


def back(page: str, error: DomainError | None = None, **query: str) -> Redirect:
    """To the page again, saying what went wrong or what was done."""
    if error is not None:
        query["error"] = error.detail
    return Redirect(path=f"/web/hq/{page}", query_params=query, status_code=303)


def console(page: str, who: Any, **context: Any) -> Template:
    return Template("hq_console.html", context={"page": page, "who": who, **context})


def _number(form: dict[str, str], name: str) -> float | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput.on(name, "must be a number") from None


def _whole(form: dict[str, str], name: str) -> int | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput.on(name, "must be a whole number")
    return int(value)


class ConsolePages(Controller):
    path = "/hq"
    include_in_schema = False

    @get("/stores")
    async def stores(
        self, request: Request[Any, Any, Any], q: Text = None, edit: Text = None,
        error: Note = None, done: Note = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        found = await registry.list_stores(None, 200, 0, q)
        chosen = None
        if edit:
            try:
                chosen = await registry.get_store(edit)
            except NotFound:
                chosen = None
        return console(
            "stores", who, stores=found, q=q or "", chosen=chosen, error=error, done=done,
            timezones=sorted({s.timezone for s in found} | {clock.DEFAULT_TIMEZONE}),
        )  # fmt: skip

    @post("/stores", status_code=303)
    async def save_store(self, request: Request[Any, Any, Any], data: Form) -> Redirect:
        await page_user(request, "hq")
        code = data.get("code", "").strip()
        try:
            store = StoreIn(
                name=data.get("name", "").strip(),
                region=data.get("region", "").strip(),
                timezone=data.get("timezone", "").strip() or clock.DEFAULT_TIMEZONE,
                latitude=_number(data, "latitude"),
                longitude=_number(data, "longitude"),
                # The form always shows the switch: unticked is "not taking orders".
                o2o=data.get("o2o") == "on",
            )
            if not code or not store.name or not store.region:
                raise InvalidInput.on("code", "门店编号、名称和区域必填")
            await registry.put_store(code, store)
        except DomainError as exc:
            return back("stores", exc, edit=code)
        return back("stores", done=f"已保存门店 {code}", q=code)

    @get("/advisors")
    async def advisors(
        self, request: Request[Any, Any, Any], store: Text = None, edit: Text = None,
        error: Note = None, done: Note = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        chosen, preview = None, None
        if edit:
            try:
                chosen = await registry.get_advisor(edit)
                advisor_id = (await advisor_ids_by_code([edit]))[edit][0]
                members, takers = await contact.handover_preview(advisor_id)
                tasks = await open_task_count(advisor_id)
                preview = {"members": members, "tasks": tasks, "takers": takers}
            except NotFound:
                chosen = None
        return console(
            "advisors", who, advisors=await registry.list_advisors(store or None, 200, 0),
            store=store or "", chosen=chosen, preview=preview, error=error, done=done,
        )  # fmt: skip

    @post("/advisors", status_code=303)
    async def save_advisor(self, request: Request[Any, Any, Any], data: Form) -> Redirect:
        await page_user(request, "hq")
        code = data.get("code", "").strip()
        try:
            if not code:
                raise InvalidInput.on("code", "顾问编号必填")
            await registry.put_advisor(
                code,
                AdvisorIn(
                    name=data.get("name", "").strip(),
                    phone=data.get("phone", "").strip(),
                    store_code=data.get("store_code", "").strip(),
                    active=data.get("active") == "on",
                ),
            )
        except DomainError as exc:
            return back("advisors", exc, edit=code)
        return back("advisors", done=f"已保存顾问 {code}", edit=code)

    @get("/products")
    async def products(
        self, request: Request[Any, Any, Any], edit: Text = None, error: Note = None,
        done: Note = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        chosen = None
        if edit:
            try:
                chosen = await registry.get_product(edit)
            except NotFound:
                chosen = None
        return console(
            "products", who, products=await registry.list_products(None, 500, 0),
            chosen=chosen, error=error, done=done,
        )  # fmt: skip

    @post("/products", status_code=303)
    async def save_product(self, request: Request[Any, Any, Any], data: Form) -> Redirect:
        await page_user(request, "hq")
        sku = data.get("sku", "").strip()
        try:
            if not sku:
                raise InvalidInput.on("sku", "SKU 必填")
            await registry.put_product(
                sku,
                ProductIn(
                    name=data.get("name", "").strip(),
                    category=data.get("category", "").strip(),
                    stage=_whole(data, "stage"),
                    days_of_supply=_whole(data, "days_of_supply"),
                    points_eligible=data.get("points_eligible") == "on",
                ),
            )
        except DomainError as exc:
            return back("products", exc, edit=sku)
        return back("products", done=f"已保存商品 {sku}")

    @get("/logins")
    async def logins_page(
        self, request: Request[Any, Any, Any], q: Text = None, error: Note = None,
        done: Note = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        return console(
            "logins", who, logins=await logins.list_logins(q), q=q or "", roles=ROLES,
            error=error, done=done,
        )  # fmt: skip

    @post("/logins", status_code=303)
    async def create_login(self, request: Request[Any, Any, Any], data: Form) -> Redirect:
        await page_user(request, "hq")
        phone = data.get("phone", "").strip()
        try:
            await accounts.create_user(
                data.get("role", ""),
                phone,
                data.get("password", ""),
                [c.strip() for c in data.get("stores", "").split(",") if c.strip()] or None,
                data.get("advisor_code", "").strip() or None,
                data.get("region", "").strip() or None,
            )
        except DomainError as exc:
            return back("logins", exc)
        return back("logins", done=f"已创建账号 {phone}", q=phone)

    @post("/logins/{phone:str}/password", status_code=303)
    async def reset_password(
        self, request: Request[Any, Any, Any], phone: Annotated[str, PathParameter(max_length=32)],
        data: Form,
    ) -> Redirect:  # fmt: skip
        await page_user(request, "hq")
        try:
            await logins.reset_password(phone, data.get("password", ""))
        except DomainError as exc:
            return back("logins", exc, q=phone)
        return back("logins", done=f"已重置 {phone} 的密码", q=phone)

    @post("/logins/{phone:str}/active", status_code=303)
    async def set_active(
        self, request: Request[Any, Any, Any], phone: Annotated[str, PathParameter(max_length=32)],
        data: Form,
    ) -> Redirect:  # fmt: skip
        await page_user(request, "hq")
        active = data.get("active") == "1"
        try:
            await logins.set_active(phone, active)
        except DomainError as exc:
            return back("logins", exc, q=phone)
        return back("logins", done=f"已{'启用' if active else '停用'} {phone}", q=phone)

    @get("/keys")
    async def keys(
        self, request: Request[Any, Any, Any], store: Text = None, error: Note = None,
        done: Note = None,
    ) -> Template:  # fmt: skip
        who = await page_user(request, "hq")
        return await _keys_page(who, store or "", error=error, done=done)

    @post("/keys")
    async def issue_key(self, request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
        """The new key is shown on this answer alone: only its hash is kept."""
        who = await page_user(request, "hq")
        code = data.get("store", "").strip()
        try:
            key = await accounts.create_pos_key(code)
        except DomainError as exc:
            return back("keys", exc)
        return await _keys_page(who, code, new_key=key)

    @post("/keys/{prefix:str}/revoke", status_code=303)
    async def revoke_key(
        self, request: Request[Any, Any, Any],
        prefix: Annotated[str, PathParameter(pattern=PREFIX)],
    ) -> Redirect:  # fmt: skip
        await page_user(request, "hq")
        try:
            await logins.revoke_pos_key(prefix)
        except DomainError as exc:
            return back("keys", exc)
        return back("keys", done=f"已吊销 {prefix}…")

    @post("/channel-keys")
    async def issue_channel_key(
        self, request: Request[Any, Any, Any], data: Form
    ) -> Template | Redirect:  # fmt: skip
        """A sales channel's new key, shown on this answer alone, as a till's is."""
        who = await page_user(request, "hq")
        try:
            key = await channels.create_channel_key(data.get("name", ""))
        except DomainError as exc:
            return back("keys", exc)
        return await _keys_page(who, "", new_channel_key=key)

    @post("/channel-keys/{channel_id:int}/revoke", status_code=303)
    async def revoke_channel_key(
        self, request: Request[Any, Any, Any],
        channel_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1)],
    ) -> Redirect:  # fmt: skip
        await page_user(request, "hq")
        try:
            channel = await channels.revoke_channel_key(channel_id)
        except DomainError as exc:
            return back("keys", exc)
        request.app.state.channel_keys.forget(channel_id)
        return back("keys", done=f"已吊销渠道 {channel.name} 的密钥")


async def _keys_page(who: Any, store: str, **context: Any) -> Template:
    """The tills' keys (of one store, if asked) and the sales channels' keys."""
    values = {"error": None, "done": None, "new_key": None, "new_channel_key": None, **context}
    return console(
        "keys", who, keys=await logins.list_pos_keys(store or None), store=store,
        channels=await channels.list_channel_keys(), **values,
    )  # fmt: skip
