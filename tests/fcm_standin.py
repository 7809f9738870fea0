"""A stand-in for Firebase Cloud Messaging's HTTP v1 API, on 127.0.0.1.

It speaks ``POST /v1/projects/{project}/messages:send`` as FCM does: a message name
for a message it accepts, FCM's error bodies (``google.firebase.fcm.v1.FcmError``)
for the rest. Each device token can be given a script of answers, used one per
request and then ``ok``: ``unregistered`` (404), ``quota`` (429 with
``Retry-After``), ``unavailable`` (503), ``internal`` (500), ``invalid`` (400),
``sender_mismatch`` (403) or ``hang`` (never answers). firebase-admin talks to it
through ``FCM_ENDPOINT`` as it talks to Google: HTTP/2, one connection, many streams
(cleartext, the client knowing beforehand; Google's is over TLS). It answers
HTTP/1.1 too, for curl and for its own statistics.

Run alone (for bench/push.py): ``python tests/fcm_standin.py --port 8765``; it then
keeps only how often each token was accepted, shown at ``/stand-in/stats`` (and
forgotten by ``/stand-in/reset``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import threading
from collections import Counter, defaultdict
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_CONFIG = h2.config.H2Configuration(
    client_side=False, header_encoding=None, validate_inbound_headers=False
)
MAX_STREAMS = 1000
WINDOW = 1 << 24  # flow control never holds a stream back here

ERRORS = {
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "quota": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
    "unavailable": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    "internal": (500, "INTERNAL", "INTERNAL", "Internal error."),
    "invalid": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid registration token."),
    "sender_mismatch": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch."),
}
REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class StandInFcm:
    def __init__(self, keep_messages: bool = True) -> None:
        # Every message answered with a name (in a bench run, only how often each
        # token was: 50,000 messages kept whole would be most of its memory).
        self.accepted: list[dict[str, Any]] = []
        self.keep_messages = keep_messages
        self.accepted_tokens: Counter[str] = Counter()
        self.requests = 0
        # Per HTTP/2 connection so far: the most requests it had open at once.
        self.h2_streams: dict[int, int] = {}
        self._connections = itertools.count(1)
        self.scripts: dict[str, list[str]] = defaultdict(list)
        self.auth_headers: set[str] = set()
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    # --- control, from tests ---------------------------------------------------

    def script(self, token: str, *answers: str) -> None:
        with self._lock:
            self.scripts[token].extend(answers)

    def delivered_to(self, token: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.accepted if _token(m) == token]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_in_thread(self) -> StandInFcm:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="fcm-stand-in", daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    # --- the protocol ------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(len(PREFACE))
            if first == PREFACE:
                await self._serve_h2(reader, writer)
            else:
                await self._serve_http1(reader, writer, first)
        except (asyncio.IncompleteReadError, ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()

    async def _serve_http1(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, buffered: bytes
    ) -> None:
        while True:
            while b"\r\n\r\n" not in buffered:
                buffered += await _more(reader)
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            length = int(headers.get("content-length", "0"))
            while len(buffered) < length:
                buffered += await _more(reader)
            body, buffered = buffered[:length], buffered[length:]
            status, answer, extra = self._answer(lines[0], headers, body)
            if status == 0:  # hang: keep the connection, never answer
                await asyncio.sleep(3600)
                return
            payload = json.dumps(answer).encode()
            extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n"
                f"Content-Length: {len(payload)}\r\n{extra_lines}\r\n".encode()
                + payload
            )
            await writer.drain()

    async def _serve_h2(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/2 over cleartext, the client knowing beforehand (as firebase-admin's
        httpx client does, given ``http1=False``): many streams on one connection, each
        answered as soon as its request has ended, in whatever order they end."""
        conn = h2.connection.H2Connection(H2_CONFIG)
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
            },
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(WINDOW)
        with self._lock:
            this = next(self._connections)
            self.h2_streams[this] = 0
        requests: dict[int, tuple[dict[str, str], bytearray]] = {}
        data = PREFACE
        while data:
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {k.decode(): v.decode() for k, v in event.headers or ()}
                    requests[event.stream_id] = (headers, bytearray())
                    if len(requests) > self.h2_streams.get(this, 0):
                        self.h2_streams[this] = len(requests)
                elif isinstance(event, h2.events.DataReceived):
                    requests[event.stream_id][1].extend(event.data or b"")
                    conn.acknowledge_received_data(
                        event.flow_controlled_length or 0, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    self._answer_stream(conn, event.stream_id, *requests.pop(event.stream_id))
                elif isinstance(event, h2.events.StreamReset):
                    requests.pop(event.stream_id, None)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    writer.write(conn.data_to_send())
                    return
            writer.write(conn.data_to_send())
            await writer.drain()
            data = await reader.read(65536)

    def _answer_stream(
        self, conn: h2.connection.H2Connection, stream_id: int, headers: dict[str, str], body: bytes
    ) -> None:
        request_line = f"{headers.get(':method')} {headers.get(':path')} HTTP/2"
        status, answer, extra = self._answer(request_line, headers, body)
        if status == 0:  # hang: this stream is never answered, the others are
            return
        payload = json.dumps(answer).encode()
        conn.send_headers(
            stream_id,
            [
                (":status", str(status)),
                ("content-type", "application/json; charset=UTF-8"),
                ("content-length", str(len(payload))),
                *((k.lower(), v) for k, v in extra.items()),
            ],
        )
        conn.send_data(stream_id, payload, end_stream=True)

    def _answer(
        self, request_line: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        method, _, rest = request_line.partition(" ")
        path = rest.rsplit(" ", 1)[0]
        if path in ("/stand-in/stats", "/stand-in/reset"):
            return 200, self._control(path), {}
        if method != "POST" or not path.endswith("/messages:send"):
            return 404, _error(404, "NOT_FOUND", None, "no such method"), {}
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            return 400, _error(400, "INVALID_ARGUMENT", None, "invalid JSON payload"), {}
        token = _token(message)
        with self._lock:
            self.requests += 1
            self.auth_headers.add(headers.get("authorization", ""))
            script = self.scripts.get(token)
            what = script.pop(0) if script else "ok"
            if what == "ok":
                if self.keep_messages:
                    self.accepted.append(message)
                self.accepted_tokens[token] += 1
                name = f"{path.split('/messages')[0][4:]}/messages/{next(self._names)}"
                return 200, {"name": name}, {}
        if what == "hang":
            return 0, {}, {}
        status, code, fcm_code, text = ERRORS[what]
        extra = {"Retry-After": "60"} if what == "quota" else {}
        return status, _error(status, code, fcm_code, text), extra

    def _control(self, path: str) -> dict[str, int]:
        """For a bench driving the stand-in in its own process: what it has accepted
        (``/stand-in/stats``), or the same and then forget it (``/stand-in/reset``)."""
        with self._lock:
            stats = {
                "requests": self.requests,
                "accepted": sum(self.accepted_tokens.values()),
                "tokens": len(self.accepted_tokens),
                "h2_connections": len(self.h2_streams),
                "streams_at_once": max(self.h2_streams.values(), default=0),
            }
            if path.endswith("/reset"):
                self.accepted.clear()
                self.accepted_tokens.clear()
                self.h2_streams.clear()
                self.requests = 0
        return stats


async def _more(reader: asyncio.StreamReader) -> bytes:
    chunk = await reader.read(65536)
    if not chunk:
        raise ConnectionResetError("the client closed the connection")
    return chunk


def _token(message: dict[str, Any]) -> str:
    return str(message.get("token") or message.get("fid") or "")


def _error(status: int, code: str, fcm_code: str | None, text: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": text, "status": code}
    if fcm_code is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return {"error": error}


def main() -> None:
    p = argparse.ArgumentParser(description="A stand-in FCM v1 server")
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args()
    fcm = StandInFcm(keep_messages=False)

    async def serve() -> None:
        await fcm.start(args.port)
        print(f"stand-in FCM on {fcm.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
