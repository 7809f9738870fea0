"""``tiantian``: the command line of docs/contract.md."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time as time_module
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, time
from typing import Any

from core import clock
from core.db import connection_pool
from core.errors import DomainError

log = logging.getLogger("tiantian")
SCHEDULER_ENV = "TIANTIAN_SCHEDULER"  # "0": the workers of serve --no-scheduler run none


async def _with_pool(work: Callable[[], Awaitable[Any]]) -> Any:
    async with connection_pool(max_size=4):
        return await work()


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    from audit import trail

    # What a command changes goes on the audit trail as done on the server's shell.
    trail.acting_as(f"cli:{os.environ.get('USER') or 'shell'}")
    try:
        return asyncio.run(coro)
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        raise SystemExit(2) from None


async def migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="all")
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")


def cmd_serve(args: argparse.Namespace) -> None:
    """One process, or N uvicorn workers (each a process with its own pool and list
    cache; one scheduler among them acts, by the lease)."""
    import uvicorn

    from advisor_api.app import create_app
    from advisor_api.settings import Settings

    settings = Settings.from_env()
    host, port = args.host or settings.host, args.port or settings.port
    # log_config=None: uvicorn keeps the logging configured here (text or JSON).
    if args.workers <= 1:
        app = create_app(settings, scheduler=not args.no_scheduler)
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
        return
    os.environ[SCHEDULER_ENV] = "0" if args.no_scheduler else "1"
    # Every worker writes its metrics to files here; /metrics in any of them sums them.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tiantian-metrics-"))
    uvicorn.run(
        "advisor_api.app:app_from_env",
        factory=True,
        workers=args.workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


def cmd_migrate(_: argparse.Namespace) -> None:
    _run(migrate())
    print("migrations applied")


def cmd_seed_demo(_: argparse.Namespace) -> None:
    from advisor_api.demo import is_empty, seed_demo
    from advisor_api.jobs import daily_job
    from members.queries import advisor_cards, all_advisor_ids
    from notifications.services import register_device

    async def seed_and_plan() -> str:
        if not await is_empty():
            return "the database already has stores: demo chain not seeded"
        done = await seed_demo(lambda line: print(line, flush=True))
        # The calendar's follow-ups (stage-ups, quiet members) for today, so that the
        # demo advisors open to a real list.
        report = (await daily_job()).tasks
        # A phone per demo advisor, so that `tiantian push digest` has somewhere to go
        # (the log sender writes each push to the log).
        cards = await advisor_cards(await all_advisor_ids())
        for advisor_id, card in sorted(cards.items()):
            await register_device(advisor_id, f"demo-phone-{card['code']}", "android")
        return f"{done}; today's daily run made {sum(report.created.values())} follow-ups"

    print(_run(_with_pool(seed_and_plan)))


def cmd_user_create(args: argparse.Namespace) -> None:
    from members.accounts import create_user

    user_id = _run(
        _with_pool(
            lambda: create_user(
                args.role,
                args.phone,
                args.password,
                args.store or None,
                args.advisor_code,
                args.region,
            )
        )
    )
    print(f"created {args.role} login {user_id} for {args.phone}")


def _bar(total: int) -> Callable[[int], None]:
    """A progress bar on stderr: lines done of the file's lines, and the rate."""
    started = time_module.monotonic()

    def show(done: int) -> None:
        share = min(done / total, 1.0) if total else 1.0
        filled = int(share * 30)
        rate = done / max(time_module.monotonic() - started, 1e-6)
        print(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} lines"
            f" {share:6.1%} {rate:,.0f} lines/s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def cmd_import(args: argparse.Namespace) -> None:
    """An import from a CSV file, read as it goes; the summary line, then the refused
    lines. Exits 1 when any line was refused."""
    from advisor_api.settings import Settings
    from core.csvfile import read_csv_lines
    from members.imports import COLUMNS, run_import

    path = args.file
    with open(path, "rb") as raw:
        total = max(sum(1 for _ in raw) - 1, 0)
        raw.seek(max(raw.seek(0, os.SEEK_END) - 1, 0))
        complete = raw.read(1) in (b"\n", b"")
    columns = COLUMNS[args.kind]
    rule = Settings.from_env().points_rule

    # Read as it goes, on the loop's thread: a command line has nothing else to serve.
    text = open(path, encoding="utf-8-sig", newline="")

    async def work() -> Any:
        records = read_csv_lines(text, columns.required, columns.optional)
        return await run_import(
            args.kind,
            records,
            complete=complete,
            rule=rule,
            score=args.score,
            progress=_bar(total + 1),
        )

    try:
        with text:
            report = _run(_with_pool(work))
    except UnicodeDecodeError as exc:
        raise SystemExit(f"error: {path} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    print(file=sys.stderr)
    print(
        f"created {report.created}, updated {report.updated},"
        f" unchanged {report.unchanged}, rejected {len(report.rejected)}"
    )
    for r in report.rejected:
        print(f"line {r.line}: {r.field}: {r.message}")
    if report.rejected:
        raise SystemExit(1)


def cmd_pos_key_create(args: argparse.Namespace) -> None:
    from members.accounts import create_pos_key

    key = _run(_with_pool(lambda: create_pos_key(args.store)))
    print(f"POS key for store {args.store} (shown once; only its hash is kept):")
    print(key)


def cmd_channel_key_create(args: argparse.Namespace) -> None:
    from orders.channels import create_channel_key

    key = _run(_with_pool(lambda: create_channel_key(args.name)))
    print(f"sales-channel key for {args.name} (shown once; only its hash is kept):")
    print(key)


def cmd_channel_key_revoke(args: argparse.Namespace) -> None:
    from orders.channels import active_channel_named, revoke_channel_key

    async def work() -> Any:
        channel_id = args.id if args.id is not None else await active_channel_named(args.name)
        return await revoke_channel_key(channel_id)

    channel = _run(_with_pool(work))
    print(f"sales channel {channel.id} ({channel.name}): key revoked")


def cmd_o2o_reroute(_: argparse.Namespace) -> None:
    from advisor_api.settings import Settings
    from orders.services import reroute_overdue

    limits = Settings.from_env().o2o_limits
    print(f"moving O2O orders not accepted within {limits.accept_minutes} minutes …")
    report = _run(_with_pool(lambda: reroute_overdue(limits, batch=1_000_000)))
    print(
        f"timed out {report.timed_out}, unrouted offered again and taken {report.offered},"
        f" left unrouted {report.unrouted}"
    )


async def _scheduler_forever() -> None:
    from advisor_api.scheduler import Scheduler
    from advisor_api.settings import Settings
    from advisor_api.wiring import build_dispatcher

    settings = Settings.from_env()
    push = settings.push
    jobs = Scheduler(build_dispatcher(push), push.interval_seconds, settings.o2o_limits)
    await jobs.start()
    try:
        await asyncio.Event().wait()
    finally:
        await jobs.stop()


DEFAULT_DAY = "each zone's own today"


def cmd_run_daily(args: argparse.Namespace) -> None:
    from time import perf_counter

    from advisor_api.jobs import daily_job

    started = perf_counter()
    job = _run(_with_pool(lambda: daily_job(args.date)))
    report = job.tasks
    elapsed = perf_counter() - started
    kinds = sorted(set(report.created) | set(report.expired) | set(report.superseded))
    print(f"daily run for {args.date or DEFAULT_DAY}")
    print(f"{'kind':<12} {'created':>8} {'superseded':>10} {'expired':>8}")
    for kind in kinds:
        print(
            f"{kind:<12} {report.created.get(kind, 0):>8} {report.superseded.get(kind, 0):>10}"
            f" {report.expired.get(kind, 0):>8}"
        )
    print(f"store activity snapshots written: {job.snapshots}")
    print(f"elapsed {elapsed:.2f} s")


def cmd_incentives_rebuild(args: argparse.Namespace) -> None:
    from core.periods import month_of, parse_period
    from incentives.rebuild import rebuild

    try:
        month = None if args.period is None else month_of(parse_period(args.period).first).name
    except ValueError as exc:
        raise SystemExit(f"--period {exc}") from None
    report = _run(_with_pool(lambda: rebuild(month)))
    print(f"rebuilt {', '.join(report.months) or 'nothing: no open month has facts'}")
    print(f"totals put right: advisor {report.advisor_rows}, store {report.store_rows}")
    print(
        f"{report.slicing.slices} slices, the longest alone on the ledger"
        f" {report.slicing.longest:.2f} s; elapsed {report.seconds:.2f} s"
    )


def cmd_push_digest(args: argparse.Namespace) -> None:
    from notifications.services import queue_digests

    day = args.date or clock.today(clock.zone(clock.DEFAULT_TIMEZONE))
    made = _run(_with_pool(lambda: queue_digests(day, args.at)))
    print(f"morning digests for {day} at {args.at:%H:%M} store time: {made} queued")


def cmd_push_flush(_: argparse.Namespace) -> None:
    from advisor_api.settings import PushSettings
    from advisor_api.wiring import build_dispatcher

    dispatcher = build_dispatcher(PushSettings.from_env())
    report = _run(_with_pool(dispatcher.flush))
    print(
        f"pushes: {report.claimed} claimed in {report.rounds} rounds, {report.sent} delivered,"
        f" {report.retried} to retry, {report.failed} failed, {report.dropped} devices removed,"
        f" {report.folded} folded ({report.seconds:.2f} s)"
    )


def cmd_scheduler(_: argparse.Namespace) -> None:
    _run(_with_pool(_scheduler_forever))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tiantian", description="天天行动力 service")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (with the scheduler unless told not to)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-scheduler", action="store_true")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1")),
        help="API processes (default 1, or WEB_CONCURRENCY)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="kept for old scripts: the access log is on unless TIANTIAN_ACCESS_LOG=0",
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply Piccolo migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("seed-demo", help="build the demo chain if the database is empty").set_defaults(
        func=cmd_seed_demo
    )
    sub.add_parser("scheduler", help="run the scheduler alone").set_defaults(func=cmd_scheduler)
    daily = sub.add_parser("run-daily", help="the daily job: make tasks, expire lapsed ones")
    daily.add_argument("--date", type=date.fromisoformat, help="store-local date (default today)")
    daily.set_defaults(func=cmd_run_daily)

    incentives = sub.add_parser("incentives", help="the score ledger").add_subparsers(
        dest="action", required=True
    )
    rebuild = incentives.add_parser(
        "rebuild", help="recompute league-table totals of open months from the score ledger"
    )
    rebuild.add_argument(
        "--period", help="the month of this period, e.g. 2026-11 (default: every open month)"
    )
    rebuild.set_defaults(func=cmd_incentives_rebuild)

    push = sub.add_parser("push", help="pushes to advisors' phones").add_subparsers(
        dest="action", required=True
    )
    digest = push.add_parser("digest", help="queue the morning digests for a store-local date")
    digest.add_argument("--date", type=date.fromisoformat, help="default: today")
    digest.add_argument(
        "--at", type=time.fromisoformat, default=time(8, 30), help="store time (default 08:30)"
    )
    digest.set_defaults(func=cmd_push_digest)
    push.add_parser("flush", help="send what is due in the outbox now").set_defaults(
        func=cmd_push_flush
    )

    user = sub.add_parser("user", help="logins").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a login")
    create.add_argument("--role", required=True, choices=["advisor", "owner", "region", "hq"])
    create.add_argument("--phone", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--store", action="append", help="an owner's store (repeatable)")
    create.add_argument("--advisor-code")
    create.add_argument("--region", help="a regional marketer's region (营销通), e.g. 华南")
    create.set_defaults(func=cmd_user_create)

    pos_key = sub.add_parser("pos-key", help="POS keys").add_subparsers(
        dest="action", required=True
    )
    key_create = pos_key.add_parser("create", help="make a key for a store's till")
    key_create.add_argument("--store", required=True)
    key_create.set_defaults(func=cmd_pos_key_create)
    _o2o_commands(sub)
    _import_parser(sub)
    return p


def _o2o_commands(sub: Any) -> None:
    channel_key = sub.add_parser("channel-key", help="O2O sales channels' keys").add_subparsers(
        dest="action", required=True
    )
    channel_create = channel_key.add_parser("create", help="make a key for a sales channel")
    channel_create.add_argument("--name", required=True, help="e.g. 小程序")
    channel_create.set_defaults(func=cmd_channel_key_create)
    channel_revoke = channel_key.add_parser("revoke", help="revoke a sales channel's key")
    which = channel_revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, help="the channel's id (HQ console, 渠道密钥)")
    which.add_argument("--name", help="the one active channel of this name")
    channel_revoke.set_defaults(func=cmd_channel_key_revoke)

    o2o = sub.add_parser("o2o", help="O2O orders").add_subparsers(dest="action", required=True)
    o2o.add_parser(
        "reroute", help="move every order past its accept time limit to its next store now"
    ).set_defaults(func=cmd_o2o_reroute)


def _import_parser(sub: Any) -> None:
    imports = sub.add_parser(
        "import", help="import stores, advisors, products, members or purchases from CSV"
    )
    imports.add_argument("kind", choices=["stores", "advisors", "products", "members", "purchases"])
    imports.add_argument("file", help="UTF-8 CSV (BOM allowed) with a header row")
    imports.add_argument(
        "--score", action="store_true", help="purchases and members: book score facts too"
    )
    imports.set_defaults(func=cmd_import)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from advisor_api.observe import configure_logging
    from advisor_api.settings import Settings, UnsafeSettings
    from advisor_api.wiring import wire_domains

    try:
        settings = Settings.from_env()
    except (UnsafeSettings, ValueError) as exc:
        raise SystemExit(f"refusing to start: {exc}") from None
    configure_logging(settings.log_format)
    wire_domains(settings.conversion_days)
    args.func(args)


if __name__ == "__main__":
    main()
