"""The push port: send a batch, get one result per message. FCM is the only thing
that leaves the machine, and this is the only module that talks to it.

- ``FcmSender``: firebase-admin's ``messaging.send_each_async``, one request a
  message, as streams of one HTTP/2 connection. With ``FCM_ENDPOINT`` set it sends
  to a stand-in server instead of Google's, with a static token for a credential:
  the SDK still builds, sends and parses every request and error, so tests and
  staging run the real client path.
- ``LogSender``: writes each message to the log and reports it sent (``make run``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

log = logging.getLogger("tiantian.push")

Outcome = Literal["sent", "unregistered", "rejected", "retry"]
# Messages in flight at once: streams on the one HTTP/2 connection. send_each_async
# starts every message of a call at once; httpx opens at most 100 streams on a
# connection and parks the rest, which costs CPU (500 at once: +25% a message) and
# buys nothing. Fewer than 100 costs no less CPU, and against Google, a round trip
# away, the messages a second are the streams in flight over the round trip.
IN_FLIGHT = 100


@dataclass(frozen=True, slots=True)
class OutgoingPush:
    delivery_id: int
    token: str
    platform: str
    title: str
    body: str
    data: dict[str, str]
    collapse_key: str  # a duplicate replaces the earlier one on the phone
    urgent: bool


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    message_name: str | None = None
    reason: str | None = None
    retry_after: float | None = None  # seconds, when the server asked for a pause
    quota: bool = False


class PushSender(Protocol):
    async def send(self, pushes: list[OutgoingPush]) -> list[SendResult]: ...


def collapse_id(dedupe_key: str) -> str:
    """APNs takes at most 64 bytes: a long key is shortened to its hash."""
    if len(dedupe_key.encode()) <= 64:
        return dedupe_key
    return hashlib.sha256(dedupe_key.encode()).hexdigest()[:64]


@dataclass
class LogSender:
    _names: Any = field(default_factory=lambda: itertools.count(1))

    async def send(self, pushes: list[OutgoingPush]) -> list[SendResult]:
        results = []
        for push in pushes:
            log.info(
                "push to %s…%s [%s] %s: %s %s",
                push.token[:6],
                push.token[-4:],
                push.platform,
                push.title,
                push.body,
                push.data,
            )
            results.append(SendResult("sent", message_name=f"log/{next(self._names)}"))
        return results


def _static_token() -> Any:
    """A google-auth credential for a stand-in FCM server: always valid, and a no-op
    refresh (a 401 makes the SDK refresh and resend; a refresh that raised would fail
    the whole batch instead of the one message)."""
    import google.auth.credentials

    class StaticToken(google.auth.credentials.Credentials):
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.token = "stand-in-token"  # noqa: S105 - not a secret: the stand-in ignores it

        def refresh(self, request: Any) -> None:
            return None

    return StaticToken()


class FcmSender:
    def __init__(
        self,
        project_id: str | None,
        credentials_path: str | None = None,
        endpoint: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        import firebase_admin
        import httpx
        from firebase_admin import _http_client, credentials, messaging
        from firebase_admin._retry import HttpxRetry

        options: dict[str, Any] = {"httpTimeout": timeout}
        if project_id:
            options["projectId"] = project_id
        if endpoint:
            if not project_id:
                options["projectId"] = "tiantian-stand-in"
            credential: Any = _static_token()
        elif credentials_path:
            credential = credentials.Certificate(credentials_path)
        else:
            credential = credentials.ApplicationDefault()
        name = f"tiantian-{id(self)}"
        self.app = firebase_admin.initialize_app(credential, options, name=name)
        service = messaging._get_messaging_service(self.app)
        if endpoint:
            # firebase-admin has no setting for the FCM URL: its messaging service
            # keeps it here, and everything else about the request stays the SDK's.
            service._fcm_url = (
                f"{endpoint.rstrip('/')}/v1/projects/{options['projectId']}/messages:send"
            )
        # The outbox owns retries (with backoff past the send): the SDK's own client
        # would retry a 503 four times inside one send, holding the batch up to ~7 s.
        client = _http_client.HttpxAsyncClient(
            credential=service._credential,
            timeout=timeout,
            retry_config=HttpxRetry(max_retries=0, status_forcelist=[]),
        )
        if endpoint and endpoint.startswith("http://"):
            # The SDK asks for HTTP/2, which httpx only negotiates over TLS: a
            # cleartext stand-in would get HTTP/1.1, a connection per request in
            # flight. Prior knowledge gives it what Google gets: one connection,
            # many streams.
            client._mounts["http://"]._wrapped_transport = httpx.AsyncHTTPTransport(
                http1=False, http2=True, retries=0
            )
        service._async_client = client
        self._messaging = messaging

    async def send(self, pushes: list[OutgoingPush]) -> list[SendResult]:
        from firebase_admin import exceptions

        messaging = self._messaging
        results: list[SendResult] = []
        for start in range(0, len(pushes), IN_FLIGHT):
            chunk = pushes[start : start + IN_FLIGHT]
            answers: dict[int, SendResult] = {}
            messages, sent = [], []
            for i, push in enumerate(chunk):
                try:  # a message the SDK refuses to build fails alone
                    messages.append(self._message(push))
                    sent.append(i)
                except ValueError as exc:
                    answers[i] = SendResult("rejected", reason=f"invalid message: {exc}"[:300])
            if messages:
                try:
                    batch = await messaging.send_each_async(messages, app=self.app)
                except exceptions.FirebaseError as exc:
                    batch = None
                    for i in sent:
                        answers[i] = SendResult("retry", reason=_reason(exc))
                except ValueError as exc:
                    batch = None
                    for i in sent:
                        answers[i] = SendResult("rejected", reason=f"invalid message: {exc}"[:300])
                if batch is not None:
                    for i, answer in zip(sent, batch.responses, strict=True):
                        answers[i] = _result(answer, messaging, exceptions)
            results += [answers[i] for i in range(len(chunk))]
        return results

    def _message(self, push: OutgoingPush) -> Any:
        m = self._messaging
        # Phones register FCM registration tokens (the v1 API's ``token``); the SDK now
        # nudges towards Firebase installation ids (``fid``), a different kind of target.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._build(m, push)

    @staticmethod
    def _build(m: Any, push: OutgoingPush) -> Any:
        return m.Message(
            token=push.token,
            notification=m.Notification(title=push.title, body=push.body),
            data=push.data,
            android=m.AndroidConfig(
                collapse_key=push.collapse_key[:64],
                priority="high" if push.urgent else "normal",
            ),
            apns=m.APNSConfig(
                headers={
                    "apns-collapse-id": collapse_id(push.collapse_key),
                    "apns-priority": "10" if push.urgent else "5",
                }
            ),
        )

    async def close(self) -> None:
        import firebase_admin

        service = self._messaging._get_messaging_service(self.app)
        await service._async_client.aclose()
        # The SDK's own close runs asyncio.run(), which cannot run inside a loop.
        service.close = lambda: None
        firebase_admin.delete_app(self.app)


def _reason(exc: Exception) -> str:
    code = getattr(exc, "code", None) or type(exc).__name__
    return f"{code}: {exc}"[:300]


def _result(answer: Any, messaging: Any, exceptions: Any) -> SendResult:
    if answer.success:
        return SendResult("sent", message_name=answer.message_id)
    exc = answer.exception
    reason = _reason(exc)
    if isinstance(exc, messaging.UnregisteredError):
        return SendResult("unregistered", reason=reason)
    if isinstance(
        exc,
        (
            messaging.SenderIdMismatchError,
            messaging.ThirdPartyAuthError,
            exceptions.InvalidArgumentError,
        ),
    ):
        return SendResult("rejected", reason=reason)
    retry_after = None
    response = getattr(exc, "http_response", None)
    if response is not None:
        header = response.headers.get("Retry-After")
        if header and header.isdigit():
            retry_after = float(header)
    return SendResult(
        "retry",
        reason=reason,
        retry_after=retry_after,
        quota=isinstance(exc, messaging.QuotaExceededError),
    )
