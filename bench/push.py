"""Push benchmark: 50,000 morning digests through firebase-admin to a stand-in FCM.

    .venv/bin/python bench/push.py [--database-url postgresql://…/tiantian_push_bench]
        [--advisors 50000] [--dispatchers 2] [--bare 20000] [--keep]

Makes a fresh PostgreSQL database (dropped and made again if it exists; dropped at
the end unless ``--keep``) with 50,000 advisors in 2,500 stores, one phone and an
open task each, decides their digests (``queue_digests``: one INSERT … SELECT), starts
the stand-in FCM server of the tests (HTTP/2 over cleartext) in a process of its own,
and measures, in this order:

(a) the stand-in's ceiling: a raw HTTP/2 client (frames written by hand, a few
    microseconds a request) sends it FCM requests on one connection, 200 streams at
    once, so the stand-in is the one working;
(b) the bare client: httpx with HTTP/2 (one connection, 100 streams) sends the same
    FCM v1 requests the SDK sends (same URL, headers and JSON bodies, for the first
    ``--bare`` digests), and nothing else: no SDK, no database;
(c) the product: ``--dispatchers`` ``tiantian push flush`` processes with
    ``PUSH_BACKEND=fcm`` and ``FCM_ENDPOINT`` at the stand-in: claims of 500 (``FOR
    UPDATE SKIP LOCKED``), ``messaging.send_each_async`` over one HTTP/2 connection
    per process, every device's answer recorded.

Targets: (c) ≥ 2,000 messages/s, and ≥ 60% of (b). Checks (exit 1 when one fails):
the stand-in accepted every message of (a) and (b); in (c) it accepted each digest's
token exactly once with no other request, and every digest is recorded sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import time
from datetime import date
from datetime import time as clock_time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The checkout's own code, whichever checkout this is (a worktree has no .venv).
TIANTIAN = [sys.executable, "-m", "advisor_api.cli"]
sys.path.insert(0, str(REPO))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tiantian_push_bench"
DAY = date(2026, 11, 20)

SEED = """
INSERT INTO store (id, code, name, region, timezone, created_at, updated_at)
SELECT s, 'P' || lpad(s::text, 5, '0'), '门店' || s, '华东', 'Asia/Shanghai', now(), now()
FROM generate_series(1, $1::int) s;
INSERT INTO advisor (id, code, store, name, phone, active, created_at, updated_at)
SELECT a, 'B' || lpad(a::text, 6, '0'), (a - 1) % $1::int + 1, '顾问' || a,
       '136' || lpad(a::text, 8, '0'), true, now(), now()
FROM generate_series(1, $2::int) a;
INSERT INTO member (id, phone, name, home_store, owning_advisor, recruited_by, joined_at,
                    joined_on, do_not_contact, points_balance, created_at)
SELECT a, '135' || lpad(a::text, 8, '0'), '会员', (a - 1) % $1::int + 1, a, a, now(),
       current_date, false, 0, now()
FROM generate_series(1, $2::int) a;
INSERT INTO task (kind, member, store, assignee, topic, reason, script, anchor_on, due_on,
                  expires_on, priority, status, cause, dedupe_key, created_at, updated_at)
SELECT 'followup_3d', a, (a - 1) % $1::int + 1, a, '', '回访', '', $3::date, $3::date,
       $3::date + 3, 3, 'open', '', 'bench:' || a, now(), now()
FROM generate_series(1, $2::int) a;
INSERT INTO device (advisor, token, platform, created_at, updated_at)
SELECT a, 'bench-token-' || a, 'android', now(), now() FROM generate_series(1, $2::int) a
WHERE $1::int > 0;
"""


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--advisors", type=int, default=50_000)
    p.add_argument("--stores", type=int, default=2_500)
    p.add_argument("--dispatchers", type=int, default=2, help="`tiantian push flush` processes")
    p.add_argument("--bare", type=int, default=20_000, help="messages the bare client sends")
    p.add_argument("--ceiling", type=int, default=20_000, help="requests of the raw client")
    p.add_argument("--keep", action="store_true", help="keep the database at the end")
    return p.parse_args()


async def fresh_database(url: str) -> None:
    import asyncpg

    admin_url, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{admin_url}/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def seed(url: str, stores: int, advisors: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        values = (stores, advisors, DAY)
        for statement in SEED.strip().split(";\n"):
            used = max(n for n in (1, 2, 3) if f"${n}" in statement)
            await conn.execute(statement, *values[:used])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def standin_stats(port: int, reset: bool = False) -> dict[str, int]:
    import httpx

    async with httpx.AsyncClient() as client:  # HTTP/1.1: the stand-in speaks both
        r = await client.get(f"http://127.0.0.1:{port}/stand-in/{'reset' if reset else 'stats'}")
        stats: dict[str, int] = r.json()
        return stats


# --- (a) the stand-in's ceiling: HTTP/2 frames written by hand ----------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream) + payload


async def raw_h2(port: int, path: str, body: bytes, n: int, streams: int = 200) -> float:
    """Seconds to get ``n`` answers to one POST, ``streams`` at once on one connection.
    The header block is encoded once (no HPACK indexing, so every stream can reuse
    its bytes) and answers are only counted, never decoded: the client costs a few
    microseconds a request, and the stand-in is what is measured."""
    import hpack

    encoder = hpack.Encoder()
    encoder.header_table_size = 0
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", f"127.0.0.1:{port}"),
        (":path", path),
        ("content-type", "application/json"),
        ("authorization", "Bearer stand-in-token"),
        ("content-length", str(len(body))),
    ]
    blocks = [encoder.encode(headers), encoder.encode(headers)]  # the first resizes the table
    sent = done = 0

    def requests(k: int) -> bytes:
        nonlocal sent
        out = []
        for _ in range(k):
            stream = 2 * sent + 1
            out += [frame(HEADERS, END_HEADERS, stream, blocks[min(sent, 1)])]
            out += [frame(DATA, END_STREAM, stream, body)]
            sent += 1
        return b"".join(out)

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    window = struct.pack(">HIHI", 2, 0, 4, 1 << 30)  # no server push; a wide window
    writer.write(
        PREFACE + frame(SETTINGS, 0, 0, window) + frame(8, 0, 0, struct.pack(">I", 1 << 30))
    )
    started = time.perf_counter()
    writer.write(requests(min(streams, n)))
    buffer = b""
    while done < n:
        chunk = await reader.read(1 << 16)
        if not chunk:
            raise RuntimeError("the stand-in closed the connection")
        buffer += chunk
        at, finished, out = 0, 0, []
        while len(buffer) - at >= 9:
            length, kind, flags = (
                int.from_bytes(buffer[at : at + 3]),
                buffer[at + 3],
                buffer[at + 4],
            )
            if len(buffer) - at < 9 + length:
                break
            if kind in (DATA, HEADERS) and flags & END_STREAM:
                finished += 1
            elif kind in (SETTINGS, PING) and not flags & ACK:
                out.append(
                    frame(kind, ACK, 0, buffer[at + 9 : at + 9 + length] if kind == PING else b"")
                )
            elif kind in (RST_STREAM, GOAWAY):
                raise RuntimeError(f"the stand-in sent frame type {kind}")
            at += 9 + length
        buffer = buffer[at:]
        done += finished
        writer.write(b"".join([*out, requests(min(finished, n - sent))]))
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


# --- (b) the bare client: httpx over HTTP/2, the SDK's requests, nothing else -----------


async def sdk_requests(port: int, n: int) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """The URL, headers and JSON bodies firebase-admin sends for the first ``n``
    digests, built by the SDK itself (the product's FcmSender)."""
    from firebase_admin import _http_client

    from core.db import fetch
    from notifications.dispatch import _outgoing
    from notifications.senders import FcmSender

    rows = await fetch(
        "SELECT o.id, dev.token, dev.platform, o.kind, o.dedupe_key, o.title, o.body, o.data"
        " FROM push_outbox o JOIN device dev ON dev.advisor = o.advisor ORDER BY o.id LIMIT {}",
        n,
    )
    sender = FcmSender(None, endpoint=f"http://127.0.0.1:{port}")
    try:
        service = sender._messaging._get_messaging_service(sender.app)
        bodies = [service._message_data(sender._message(_outgoing(r)), False) for r in rows]
        headers = {
            **service._fcm_headers,
            **_http_client.METRICS_HEADERS,
            "authorization": "Bearer stand-in-token",
        }
        return service._fcm_url, headers, bodies
    finally:
        await sender.close()


async def bare_httpx(
    url: str, headers: dict[str, str], bodies: list[Any], streams: int = 100
) -> float:
    import httpx

    transport = httpx.AsyncHTTPTransport(http1=False, http2=True)  # one connection
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        todo = iter(bodies)

        async def worker() -> None:
            for body in todo:
                r = await client.post(url, json=body, headers=headers)
                r.raise_for_status()
                r.json()["name"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(streams)))
        return time.perf_counter() - started


# --- (c) the product ---------------------------------------------------------------------


FLUSH_SECONDS = re.compile(r"\(([\d.]+) s\)$")


async def dispatchers(port: int, n: int) -> tuple[float, float, list[str]]:
    """Seconds from launch, seconds of flushing, and each dispatcher's report."""
    env = {**os.environ, "PUSH_BACKEND": "fcm", "FCM_ENDPOINT": f"http://127.0.0.1:{port}"}
    started = time.perf_counter()
    # As a deployment runs them: `tiantian push flush` processes sharing the outbox
    # (claims skip each other's rows), one HTTP/2 connection each.
    workers = [
        await asyncio.create_subprocess_exec(
            *TIANTIAN,
            "push",
            "flush",
            env=env,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(n)
    ]

    async def finish(worker: asyncio.subprocess.Process) -> tuple[float, str]:
        out = (await worker.communicate())[0].decode().strip()
        return time.perf_counter(), out

    ended = await asyncio.gather(*(finish(w) for w in workers))
    # The flushing itself: from the first dispatcher's first claim (its end less the
    # seconds its report gives) to the last one's end. The rest is Python starting a
    # process, which a deployment's scheduler, running all day, does once.
    starts = [end - float(m[1]) for end, out in ended if (m := FLUSH_SECONDS.search(out))]
    last = max(end for end, _ in ended)
    flushing = last - min(starts) if len(starts) == n else float("nan")
    return last - started, flushing, [out for _, out in ended]


class Phase:
    """Over one measured stretch: wall time, the stand-in's CPU, and the client's (this
    process's and its children's: the bare client, or the dispatchers)."""

    def __init__(self, standin_pid: int) -> None:
        self.pid = standin_pid

    def __enter__(self) -> Phase:
        self.started = time.perf_counter()
        self.standin_cpu, self.client_cpu = cpu_seconds(self.pid), self._client_cpu()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.standin_cpu = cpu_seconds(self.pid) - self.standin_cpu
        self.client_cpu = self._client_cpu() - self.client_cpu

    @staticmethod
    def _client_cpu() -> float:
        used = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(u.ru_utime + u.ru_stime for u in used)

    def cost(self, n: int) -> str:
        return (
            f"CPU a message: client {self.client_cpu / n * 1e6:,.0f} µs,"
            f" stand-in {self.standin_cpu / n * 1e6:,.0f} µs"
            f" (busy {self.standin_cpu / self.seconds:.0%} of a core)"
        )


async def count(sql: str) -> int:
    from core.db import fetch

    return int((await fetch(sql))[0]["n"])


def check(failures: list[str], ok: bool, what: str) -> None:
    print(f"  check: {what}: {'ok' if ok else 'FAILED'}")
    if not ok:
        failures.append(what)


async def ceiling_phase(
    port: int, pid: int, path: str, body: bytes, n: int, failures: list[str]
) -> tuple[float, float]:
    """(a): requests a second measured, and on a core of the stand-in's own."""
    with Phase(pid) as ceiling:
        await raw_h2(port, path, body, n)
    stats = await standin_stats(port, reset=True)
    check(failures, stats["accepted"] == n, "(a) every raw request accepted")
    own_core = n / ceiling.standin_cpu
    print(
        f"(a) stand-in ceiling: raw HTTP/2 client, 1 connection, 200 streams:"
        f" {n:,} requests in {ceiling.seconds:.1f} s: {n / ceiling.seconds:,.0f} requests/s;"
        f" {ceiling.cost(n)}; {own_core:,.0f} requests/s on a core of its own"
    )
    return n / ceiling.seconds, own_core


async def bare_phase(
    port: int, pid: int, url: str, headers: dict[str, str], bodies: list[Any], failures: list[str]
) -> tuple[float, float]:
    """(b): messages a second, and the client's CPU a message."""
    with Phase(pid) as bare:
        await bare_httpx(url, headers, bodies)
    stats = await standin_stats(port, reset=True)
    check(
        failures,
        stats["accepted"] == stats["tokens"] == len(bodies) and stats["h2_connections"] == 1,
        "(b) every message accepted once, on one HTTP/2 connection",
    )
    print(
        f"(b) bare httpx HTTP/2 client, 1 connection, 100 streams, the SDK's requests:"
        f" {len(bodies):,} messages in {bare.seconds:.1f} s:"
        f" {len(bodies) / bare.seconds:,.0f} messages/s; {bare.cost(len(bodies))}"
    )
    return len(bodies) / bare.seconds, bare.client_cpu / len(bodies)


async def product_phase(
    port: int, pid: int, n: int, queued: int, failures: list[str]
) -> tuple[float, float]:
    """(c): messages a second, and the dispatchers' CPU a message."""
    from core.db import connection_pool

    with Phase(pid) as product:
        launched, flushing, outputs = await dispatchers(port, n)
    stats = await standin_stats(port)
    for i, out in enumerate(outputs, start=1):
        print(f"  dispatcher {i}: {out.splitlines()[-1] if out else '(no output)'}")
    async with connection_pool():
        sent = await count("SELECT COUNT(*) AS n FROM push_delivery WHERE status = 'sent'")
        left = await count("SELECT COUNT(*) AS n FROM push_outbox WHERE status <> 'sent'")
    print(
        f"(c) product: {sent:,} delivered and recorded by {n} dispatcher process(es) in"
        f" {flushing:.1f} s of flushing (the first claim to the last record):"
        f" {sent / flushing:,.0f} messages/s; {launched:.1f} s from their launch, start-up"
        f" included: {sent / launched:,.0f} messages/s ({stats['h2_connections']} HTTP/2"
        f" connection(s), up to {stats['streams_at_once']} streams at once on one);"
        f" {product.cost(sent)} (the client's: the dispatchers, start-up included;"
        " PostgreSQL's not counted)"
    )
    check(failures, sent == queued and left == 0, "(c) every digest recorded sent")
    check(failures, not math.isnan(flushing), "(c) each dispatcher reported its flush")
    check(
        failures,
        stats["requests"] == stats["accepted"] == stats["tokens"] == queued,
        "(c) the stand-in got each digest exactly once",
    )
    return sent / flushing, product.client_cpu / max(sent, 1)


async def run(args: argparse.Namespace) -> list[str]:
    from core.db import connection_pool, in_write_transaction
    from notifications.services import queue_digests

    failures: list[str] = []
    port = free_port()
    standin = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "tests" / "fcm_standin.py"),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert standin.stdout is not None
    await standin.stdout.readline()  # "stand-in FCM on …": it is listening
    try:
        async with connection_pool():
            started = time.perf_counter()
            queued = await in_write_transaction(
                lambda: queue_digests(DAY, clock_time(8, 30), ["Asia/Shanghai"])
            )
            print(
                f"decided {queued:,} digests in {time.perf_counter() - started:.2f} s"
                " (one INSERT … SELECT)"
            )
            url, headers, bodies = await sdk_requests(port, args.bare)
        path = url.split(f"127.0.0.1:{port}", 1)[1]
        one = json.dumps(bodies[0], ensure_ascii=False, separators=(",", ":")).encode()
        pid = standin.pid
        measured, own_core = await ceiling_phase(port, pid, path, one, args.ceiling, failures)
        bare, bare_cpu = await bare_phase(port, pid, url, headers, bodies, failures)
        rate, cpu = await product_phase(port, pid, args.dispatchers, queued, failures)
        # On a shared machine, n processes get more of the cores than one: the CPU a
        # message is the like-for-like comparison of the two clients.
        print(
            f"(c)/(b): {rate / bare:.0%} in messages a second ({args.dispatchers} process(es)"
            f" against 1); {bare_cpu / cpu:.0%} in CPU a message ((b)'s over (c)'s)"
        )
        print(
            f"the stand-in's ceiling, measured / on a core of its own, over (c):"
            f" {measured / rate:.1f}× / {own_core / rate:.1f}×"
        )
        print(f"  target ≥ 2,000 messages/s: {'met' if rate >= 2000 else 'NOT met'}")
        print(f"  target ≥ 60% of bare HTTP/2: {'met' if rate >= 0.6 * bare else 'NOT met'}")
    finally:
        standin.terminate()
        await standin.wait()
    return failures


async def drop_database(url: str) -> None:
    import asyncpg

    admin_url, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{admin_url}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    args = parse()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("TIANTIAN_NOW", f"{DAY}T09:00:00+08:00")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    asyncio.run(fresh_database(args.database_url))
    try:
        subprocess.run(
            [*TIANTIAN, "migrate"],
            env={**os.environ},
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        asyncio.run(seed(args.database_url, args.stores, args.advisors))
        print(
            f"{args.advisors:,} advisors in {args.stores:,} stores, a phone and an open task each"
        )
        failures = asyncio.run(run(args))
    finally:
        if not args.keep:
            asyncio.run(drop_database(args.database_url))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if failures:
        print(f"FAILED: {'; '.join(failures)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
