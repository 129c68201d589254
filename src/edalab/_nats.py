"""The one module that talks to nats-py beyond its public client API.

Everything else in edalab uses nats-py as its documentation shows it (``nats.connect``,
``Client``, ``Msg``, ``JetStreamContext`` and ``KeyValue`` methods, the ``nats.js.api``
dataclasses, the exception classes). What goes further lives here, behind a small
interface:

- **contexts**: :class:`Connection` (a ``Client`` whose ``jetstream()`` returns a
  :class:`JetStream`) and :class:`JetStream` (a ``JetStreamContext`` that keeps its
  connection and API prefix public, so the bulk paths need no private attribute);
  :func:`jetstream` wraps any nats-py connection; :func:`connection_of`;
- **JetStream's wire protocol, written by hand for speed**: the pull request on
  ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` (:func:`request_next`) and the
  status messages that come back (:func:`status_of`: heartbeat, 404/408, "409 Consumer
  Deleted"); the ``+TERM <reason>`` body (:func:`term`); the ``PubAck`` and the ADR-50
  fast-ingest replies (:func:`pub_reply`, :func:`ingest_reply`); the API subjects a
  least-privilege user needs (:func:`consumer_api_subjects`); :class:`Inbox` (replies
  gathered by one subscription's callback);
- **priority groups (ADR-42, nats-server 2.11+), which nats-py 2.16 has no API for**: the
  pull request's ``group``/``id``/``min_pending``/``min_ack_pending`` fields
  (:class:`PriorityPull`, passed to :func:`request_next`), the ``Nats-Pin-Id`` header
  (:func:`pin_id_of`), a consumer created and read as raw JSON (:func:`create_consumer`,
  :func:`consumer_info`: nats-py's ``ConsumerConfig`` drops ``priority_groups``,
  ``priority_policy`` and ``priority_timeout``) and the UNPIN request (:func:`unpin`);
- **snapshots**: nats-py has no API for them; :func:`stream_snapshot` and
  :func:`stream_restore` drive ``$JS.API.STREAM.SNAPSHOT.<stream>`` and
  ``$JS.API.STREAM.RESTORE.<stream>`` (chunks, flow-control acks, the end marker);
- **errors**: the JetStream error codes edalab decides by (:class:`ErrCode`, checked
  against nats-server's ``server/errors.json``), :func:`err_code_of`,
  :func:`publish_error` and :func:`retryable`; every translation raises edalab's error
  ``from`` nats-py's, so a traceback keeps ``err_code`` and ``description``.

**nats.py's next line.** nats.py's repository now also publishes ``nats-core`` (the
client) and ``nats-jetstream`` (beta, 0.x, module ``nats.jetstream``: ADR-37's
simplified JetStream API, streams and consumers as objects, pull consumers only).
edalab targets the ``nats-py`` 2.x line (what ``pip install nats-py`` gives and the
course's notebooks show); moving to ``nats-jetstream`` would change this module only:

- the subclasses go: ``nats-jetstream`` builds its context from a ``nats-core`` client
  that it keeps, so :func:`connection_of` returns that client;
- :func:`request_next` and :func:`status_of` could give way to the new consumer's
  ``fetch``/``messages`` (pull only, as edalab already is), provided they report a
  deleted consumer as an error rather than the end of the messages;
- :func:`pub_reply` and :func:`ingest_reply` would read the new package's ack types
  (fast ingest has no nats-py API yet, so its replies stay parsed here);
- :func:`publish_error` and :func:`retryable` would map the new exception classes.

The rest of the library (and every notebook) would not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.client import RawCredentials
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX, PubAck
from nats.js.client import JetStreamContext

from ._errors import NoStreamError, NotAnEdalabJetStream, PublishError

__all__ = [
    "ApiError",
    "Connection",
    "ErrCode",
    "Inbox",
    "IngestReply",
    "JetStream",
    "PriorityPull",
    "Status",
    "api_prefix",
    "connection_of",
    "consumer_api_subjects",
    "consumer_info",
    "create_consumer",
    "err_code_of",
    "ingest_reply",
    "ingest_reply_subject",
    "is_jetstream_delivery",
    "jetstream",
    "pin_id_of",
    "pub_reply",
    "publish_error",
    "request_next",
    "retryable",
    "shared_consumer_subjects",
    "status_of",
    "stream_deleted",
    "stream_restore",
    "stream_snapshot",
    "term",
    "term_delivered",
    "unpin",
]


class JetStream(JetStreamContext):
    """A ``JetStreamContext`` that keeps its ``connection`` and ``api_prefix`` public."""

    def __init__(self, conn: NATS, **opts: Any) -> None:
        # Every option goes to nats-py unchanged (prefix, domain, timeout,
        # publish_async_max_pending ...), so this follows nats-py's own signature.
        super().__init__(conn, **opts)
        #: The NATS connection this context publishes on.
        self.connection = conn
        domain = opts.get("domain")
        #: The JetStream API subject prefix (``$JS.API``, or ``$JS.<domain>.API``).
        self.api_prefix: str = (
            opts.get("prefix", DEFAULT_PREFIX) if domain is None else f"$JS.{domain}.API"
        )


class Connection(NATS):
    """A nats-py client whose ``jetstream()`` returns a :class:`JetStream`."""

    def jetstream(self, **opts: Any) -> JetStream:
        """A :class:`JetStream` on this connection (same options as nats-py's)."""
        return JetStream(self, **opts)


def jetstream(nc: NATS, **opts: Any) -> JetStream:
    """A :class:`JetStream` on any nats-py connection (``prefix``, ``domain``, ``timeout`` ...)."""
    return JetStream(nc, **opts)


def api_prefix(js: JetStreamContext) -> str:
    """The JetStream API prefix of ``js`` (``$JS.API`` for a plain nats-py context)."""
    return js.api_prefix if isinstance(js, JetStream) else DEFAULT_PREFIX


def connection_of(js: JetStreamContext) -> NATS:
    """The connection of ``js``; a typed error when ``js`` did not come from edalab.

    >>> connection_of(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    edalab.NotAnEdalabJetStream: this needs an edalab JetStream ...
    """
    if isinstance(js, JetStream):
        return js.connection
    raise NotAnEdalabJetStream(
        "this needs an edalab JetStream (it publishes on the connection itself): connect "
        "with edalab.connect() and use nc.jetstream(), or wrap a nats-py connection with "
        "edalab.jetstream(nc)"
    )


class Inbox:
    """Replies to one subscription, gathered by its callback (public nats-py API, no task each).

    nats-py's ``sub.messages`` makes a task per message and ``sub.next_msg`` a timer per
    call; a callback that appends to a deque costs neither. :meth:`wait` sleeps only
    when the deque is empty, under one deadline.

        inbox = await Inbox().open(nc, nc.new_inbox() + ".*")
        await nc.publish("order.placed", b"{}", reply=...)
        await inbox.wait(2.0) and inbox.msgs.popleft()
    """

    def __init__(self) -> None:
        #: Messages received and not yet taken, oldest first.
        self.msgs: deque[Msg] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._sub: Subscription | None = None
        #: The subject it listens on (set by :meth:`open`).
        self.subject = ""

    async def open(self, nc: NATS, subject: str) -> Inbox:
        """Subscribe to ``subject`` (usually an inbox wildcard) and gather what comes."""
        self.subject = subject
        self._sub = await nc.subscribe(subject, cb=self._gather)
        return self

    async def _gather(self, msg: Msg) -> None:
        self.msgs.append(msg)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a message; ``True`` when one is there."""
        if self.msgs:
            return True
        self._wake = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._wake
        except TimeoutError:
            pass
        finally:
            self._wake = None
        return bool(self.msgs)

    async def close(self) -> None:
        """Unsubscribe (what was gathered stays in :attr:`msgs`)."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None


# --- errors -------------------------------------------------------------------------------


class ErrCode(IntEnum):
    """JetStream API error codes edalab decides by (nats-server's ``server/errors.json``)."""

    CONSUMER_NOT_FOUND = 10014  # JSConsumerNotFoundErr, 404
    SEQUENCE_NOT_FOUND = 10043  # JSSequenceNotFoundErrF, 400: "sequence {seq} not found"
    STREAM_CREATE = 10049  # JSStreamCreateErrF, 500: "{err}" (e.g. "error creating store")
    MSG_DELETE_FAILED = 10057  # JSStreamMsgDeleteFailedF, 500: "{err}" (e.g. "no message found")
    STREAM_NOT_FOUND = 10059  # JSStreamNotFoundErr, 404
    STREAM_RESTORE = 10062  # JSStreamRestoreErrF, 500: "restore failed: {err}"
    STREAM_SUBJECT_OVERLAP = 10065  # JSStreamSubjectOverlapErr, 400
    WRONG_LAST_SEQUENCE = 10071  # JSStreamWrongLastSequenceErrF, 400: "wrong last sequence: {seq}"
    STREAM_NAME_EXIST_RESTORE = 10130  # JSStreamNameExistRestoreFailedErr, 400
    WRONG_LAST_SEQUENCE_CONSTANT = 10164  # JSStreamWrongLastSequenceConstantErr, 400
    BATCH_PUBLISH_DISABLED = 10205  # JSBatchPublishDisabledErr, 400
    BATCH_PUBLISH_UNKNOWN_ID = 10208  # JSBatchPublishUnknownBatchIDErr, 400


def err_code_of(err: BaseException | None) -> int | None:
    """The JetStream ``err_code`` of ``err`` or of the nats-py error it was raised from.

    >>> err_code_of(nats.js.errors.APIError(code=400, err_code=10071, description="x"))
    10071
    >>> err_code_of(ValueError("no code"))
    """
    while err is not None:
        if isinstance(err, nats.js.errors.APIError):
            return err.err_code
        err = err.__cause__
    return None


def publish_error(err: BaseException, subject: str, event_id: str) -> Exception:
    """edalab's error for a failed publish (raise it ``from err``)."""
    if isinstance(err, nats.js.errors.NoStreamResponseError):
        return NoStreamError(subject)
    if isinstance(err, nats.js.errors.APIError):
        return PublishError(subject, f"server said: {err.description}", event_id=event_id)
    if isinstance(err, (nats.errors.TimeoutError, TimeoutError)):
        return PublishError(subject, "no PubAck before the timeout", event_id=event_id)
    return PublishError(subject, f"{type(err).__name__}: {err}", event_id=event_id)


def retryable(err: BaseException) -> bool:
    """Errors a retry with the same Nats-Msg-Id can fix: the server is away or not ready."""
    if isinstance(err, nats.js.errors.ServiceUnavailableError):
        return True
    if isinstance(err, nats.js.errors.APIError):
        return False
    return isinstance(
        err,
        (
            nats.errors.TimeoutError,
            TimeoutError,
            nats.js.errors.NoStreamResponseError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.StaleConnectionError,
            nats.errors.OutboundBufferLimitError,
        ),
    )


# --- the wire protocol ----------------------------------------------------------------------

_ACK_PREFIX = "$JS.ACK."
_NO_RESPONDERS = "503"


def consumer_api_subjects(stream: str, consumer: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """What a client publishes to when it pulls from and acks one consumer.

    >>> consumer_api_subjects("SHOP", "audit")  # doctest: +NORMALIZE_WHITESPACE
    ['$JS.API.CONSUMER.MSG.NEXT.SHOP.audit', '$JS.API.CONSUMER.INFO.SHOP.audit',
     '$JS.ACK.SHOP.audit.>']
    """
    return [
        f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"{prefix}.CONSUMER.INFO.{stream}.{consumer}",
        f"{_ACK_PREFIX}{stream}.{consumer}.>",
    ]


def shared_consumer_subjects(
    stream: str, consumer: str, prefix: str
) -> list[tuple[str, str | None]]:
    """What an account exports so another can read a stream's info and one consumer.

    Pairs of (the subject in the owner's account, its name in the importer's, under
    the importer's API ``prefix``; ``None`` where it keeps its name, as acks do).

    >>> shared_consumer_subjects("S", "c", "$JS.X.API")  # doctest: +NORMALIZE_WHITESPACE
    [('$JS.API.STREAM.INFO.S', '$JS.X.API.STREAM.INFO.S'),
     ('$JS.API.CONSUMER.MSG.NEXT.S.c', '$JS.X.API.CONSUMER.MSG.NEXT.S.c'), ('$JS.ACK.S.c.>', None)]
    """
    fetch, _info, acks = consumer_api_subjects(stream, consumer)
    info = f"{DEFAULT_PREFIX}.STREAM.INFO.{stream}"
    local = len(DEFAULT_PREFIX)
    return [(info, prefix + info[local:]), (fetch, prefix + fetch[local:]), (acks, None)]


def is_jetstream_delivery(msg: Msg) -> bool:
    """``msg`` came from a JetStream consumer (its reply is an ack subject)."""
    return bool(msg.reply) and msg.reply.startswith(_ACK_PREFIX)


@dataclass(frozen=True, slots=True)
class PriorityPull:
    """The ADR-42 fields of a pull request to a consumer with a priority group (2.11+).

    ``group`` is required by such a consumer (else "400 Bad Request - Priority Group
    missing"); ``id`` is the pin a ``pinned_client`` consumer gave this client (its
    ``Nats-Pin-Id`` header); ``min_pending``/``min_ack_pending`` hold an ``overflow``
    consumer's request back until the backlog / the unacknowledged count reaches them.

    >>> PriorityPull("jobs", min_pending=50).fields()
    {'group': 'jobs', 'min_pending': 50}
    """

    group: str
    id: str | None = None
    min_pending: int | None = None
    min_ack_pending: int | None = None

    def fields(self) -> dict[str, Any]:
        """The request's JSON fields (those set)."""
        out: dict[str, Any] = {"group": self.group}
        for key in ("id", "min_pending", "min_ack_pending"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


async def request_next(
    nc: NATS,
    js: JetStreamContext,
    stream: str,
    consumer: str,
    reply: str,
    batch: int,
    expires: int,
    priority: PriorityPull | None = None,
) -> None:
    """Ask the pull consumer for up to ``batch`` messages, delivered to ``reply``.

    ``expires`` is in nanoseconds: by then the server answers with what it has, at worst
    a status (408) that counts the messages it did not deliver. ``priority`` adds the
    priority-group fields (:class:`PriorityPull`).
    """
    subject = f"{api_prefix(js)}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
    request: dict[str, Any] = {"batch": batch, "expires": expires}
    if priority is not None:
        request |= priority.fields()
    await nc.publish(subject, json.dumps(request).encode(), reply=reply)


#: The header a ``pinned_client`` consumer puts on every message it delivers (ADR-42).
PIN_ID = "Nats-Pin-Id"


def pin_id_of(msg: Msg) -> str | None:
    """The pin id ``msg`` carries (a ``pinned_client`` consumer's delivery), else ``None``."""
    return msg.headers.get(PIN_ID) if msg.headers else None


async def _api(js: JetStreamContext, subject: str, body: dict[str, Any], timeout: float) -> Any:
    """One JetStream API request; its JSON answer, or nats-py's ``APIError`` raised."""
    nc = connection_of(js)
    reply = await nc.request(
        f"{api_prefix(js)}.{subject}", json.dumps(body).encode(), timeout=timeout
    )
    resp = json.loads(reply.data)
    if "error" in resp:
        raise ApiError.of(resp["error"]).exception()
    return resp


async def create_consumer(
    js: JetStreamContext, stream: str, config: dict[str, Any], timeout: float = 5.0
) -> dict[str, Any]:
    """Create (or update) a durable consumer from raw JSON config; the server's info, as JSON.

    For fields nats-py's ``ConsumerConfig`` does not know (``priority_groups``,
    ``priority_policy``, ``priority_timeout`` in nanoseconds).
    """
    name = config["durable_name"]
    body = {"stream_name": stream, "config": config}
    info: dict[str, Any] = await _api(js, f"CONSUMER.CREATE.{stream}.{name}", body, timeout)
    return info


async def consumer_info(
    js: JetStreamContext, stream: str, consumer: str, timeout: float = 5.0
) -> dict[str, Any]:
    """A consumer's info as the server sends it (with ``priority_groups`` state)."""
    info: dict[str, Any] = await _api(js, f"CONSUMER.INFO.{stream}.{consumer}", {}, timeout)
    return info


async def unpin(
    js: JetStreamContext, stream: str, consumer: str, group: str, timeout: float = 5.0
) -> None:
    """Clear a ``pinned_client`` consumer's pin for ``group`` (``$JS.API.CONSUMER.UNPIN``)."""
    await _api(js, f"CONSUMER.UNPIN.{stream}.{consumer}", {"group": group}, timeout)


@dataclass(frozen=True, slots=True)
class Status:
    """A status message in place of a pulled message (it carries no stream data)."""

    code: str
    description: str
    #: How many of the messages asked for the server will not deliver (408/409), if said.
    pending: int | None

    @property
    def heartbeat(self) -> bool:
        """An idle heartbeat (100): nothing to count."""
        return self.code == "100"

    @property
    def pin_lost(self) -> bool:
        """423: the pull carried a pin id that is not (or no longer) the consumer's pin.

        "Nats-Pin-Id mismatch" when another client holds the pin, "Nats-Wrong-Pin-Id"
        when the server picks a new one; either way the client pulls on without an id.
        """
        return self.code == "423"

    @property
    def consumer_deleted(self) -> bool:
        """The consumer is gone: nats-server sends "409 Consumer Deleted" (consumer.go).

        A status has no ``err_code``, and 409 also means "Exceeded MaxWaiting" or
        "Leadership Change", so the description tells them apart.
        """
        return self.code == "409" and self.description.lower() == "consumer deleted"


def status_of(msg: Msg) -> Status | None:
    """The status ``msg`` carries, or ``None`` for a message with stream data."""
    headers = msg.headers
    if headers is None or "Status" not in headers:
        return None
    pending = headers.get("Nats-Pending-Messages")
    return Status(
        headers["Status"], headers.get("Description", ""), int(pending) if pending else None
    )


async def term(nc: NATS, msg: Msg, reason: str) -> None:
    """Terminate a JetStream message, telling the server why (``+TERM <reason>``).

    nats-py's ``msg.term()`` sends no reason; the server (2.10.4+) accepts one after
    ``+TERM`` and puts it in the ``MSG_TERMINATED`` advisory, where a dead-letter
    collector can read it. ``nc`` is the connection the message came on.
    """
    if not msg.reply:
        raise nats.errors.Error("not a JetStream message: it has no reply subject")
    clean = " ".join(reason.split())[:512]  # one line: the advisory quotes it as is
    await nc.publish(msg.reply, b"+TERM " + clean.encode())


async def term_delivered(msg: Msg, reason: str) -> None:
    """Terminate ``msg`` with ``reason``, on the connection it came on (``msg.respond``).

    For a framework that holds only the message (FastStream's ``NatsMessage`` wraps it).
    The ``+TERM`` goes out on the message's own connection, so it reaches the server before
    anything the framework sends on that message afterwards. The caller must then keep the
    framework from terminating it again (a second ``+TERM`` makes the server send a second
    ``MSG_TERMINATED`` advisory, without the reason); an ``+ACK`` of a message no longer
    pending changes nothing on an explicit-ack consumer.
    """
    if not msg.reply:
        raise nats.errors.Error("not a JetStream message: it has no reply subject")
    clean = " ".join(reason.split())[:512]  # one line: the advisory quotes it as is
    await msg.respond(b"+TERM " + clean.encode())


async def stream_deleted(nc: NATS, stream: str, prefix: str = DEFAULT_PREFIX) -> list[int]:
    """The sequence numbers of the messages deleted from inside ``stream`` (interior gaps).

    nats-py's ``stream_info`` does not ask for them: this is the same ``STREAM.INFO``
    request with ``deleted_details`` set (nats-server's ``JSApiStreamInfoRequest``).
    Messages removed from the front (limits, purge, acks on a work queue) are not listed:
    they are below ``state.first_seq``.
    """
    request = json.dumps({"deleted_details": True}).encode()
    reply = await nc.request(f"{prefix}.STREAM.INFO.{stream}", request, timeout=2.0)
    resp = json.loads(reply.data)
    if "error" in resp:
        raise ApiError.of(resp["error"]).exception()
    return [int(seq) for seq in resp.get("state", {}).get("deleted") or []]


@dataclass(frozen=True, slots=True)
class ApiError:
    """A JetStream API error in a reply: the HTTP-like ``code``, ``err_code``, ``description``."""

    code: int | None
    err_code: int | None
    description: str

    @classmethod
    def of(cls, error: Any) -> ApiError:
        if not isinstance(error, dict):
            return cls(None, None, str(error))
        return cls(error.get("code"), error.get("err_code"), str(error.get("description", error)))

    def exception(self) -> nats.js.errors.APIError:
        """The nats-py exception nats-py would raise for it (to raise edalab's ``from``)."""
        return nats.js.errors.APIError(
            code=self.code, err_code=self.err_code, description=self.description
        )


def _pub_ack(resp: dict[str, Any]) -> PubAck:
    # The constructor, not PubAck.from_response: that one walks dataclass fields per call.
    return PubAck(
        stream=resp["stream"],
        seq=resp["seq"],
        domain=resp.get("domain"),
        duplicate=resp.get("duplicate"),
        batch_id=resp.get("batch"),
        batch_size=resp.get("count"),
        val=resp.get("val"),
    )


def pub_reply(msg: Msg) -> PubAck | ApiError | None:
    """A publish's reply: its ``PubAck``, the server's error, or ``None`` (no responders: 503)."""
    if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
        return None
    resp = json.loads(msg.data)
    if "error" in resp:
        return ApiError.of(resp["error"])
    return _pub_ack(resp)


@dataclass(frozen=True, slots=True)
class IngestReply:
    """One reply to an ADR-50 fast-ingest batch.

    ``kind``: ``"flow"`` (every message up to ``seq`` is stored; send ``msgs`` per ack),
    ``"gap"`` (messages went missing), ``"err"`` (message ``seq`` was refused),
    ``"error"`` (the server refused the message this reply answers, ``seq`` of its batch),
    ``"commit"`` (the batch's ``PubAck``), ``"no_stream"`` (503).
    """

    kind: str
    seq: int = 0
    msgs: int = 0
    error: ApiError | None = None
    ack: PubAck | None = None


def ingest_reply(msg: Msg) -> IngestReply:
    """Read one fast-ingest reply (see :class:`IngestReply`)."""
    if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
        return IngestReply("no_stream")
    resp = json.loads(msg.data)
    kind = resp.get("type")
    if kind == "ack":
        return IngestReply("flow", seq=int(resp["seq"]), msgs=max(1, int(resp["msgs"])))
    if kind == "gap":
        return IngestReply("gap")
    if kind == "err":
        return IngestReply("err", seq=int(resp["seq"]), error=ApiError.of(resp.get("error") or {}))
    if "error" in resp:
        # The answer comes on the refused message's own reply subject: <...>.<seq>.<op>.$FI
        seq = int(msg.subject.rsplit(".", 3)[1])
        return IngestReply("error", seq=seq, error=ApiError.of(resp["error"]))
    return IngestReply("commit", ack=_pub_ack(resp))


def ingest_reply_subject(prefix: str, flow: int, seq: int, op: int) -> str:
    """The reply subject of message ``seq`` of a fast-ingest batch (op 0 start, 1 add, 2 commit)."""
    return f"{prefix}.{flow}.fail.{seq}.{op}.$FI"


# --- snapshots (nats-server's server/jetstream_api.go: jsStreamSnapshotRequest, streamSnapshot,
# jsStreamRestoreRequest, processStreamRestore) ------------------------------------------------


def _answer(msg: Msg) -> dict[str, Any]:
    """A JetStream API reply as a dict; its ``error`` raised as nats-py's ``APIError``."""
    if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
        raise nats.errors.NoRespondersError
    answer: dict[str, Any] = json.loads(msg.data)
    if "error" in answer:
        raise ApiError.of(answer["error"]).exception()
    return answer


async def stream_snapshot(
    js: JetStreamContext,
    stream: str,
    write: Callable[[bytes], object],
    *,
    chunk_size: int = 128 * 1024,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Take a snapshot of ``stream``, handing its bytes to ``write`` chunk by chunk.

    Returns the server's first answer: the stream's ``config`` and ``state`` at the
    snapshot (a restore sends them back). The protocol: the request names a deliver
    subject; the server streams chunks there, each but the last with a reply subject
    that the client answers (an empty message) to let more come (a window of 8 MiB
    in flight; the server gives up after 5 s without an ack); an empty message ends
    the transfer, its status ``204`` for success, ``408``/``500`` for failure (raised
    as ``APIError`` with that code). Consumers are included.
    """
    nc = connection_of(js)
    inbox = await Inbox().open(nc, deliver := nc.new_inbox())
    try:
        request = {"deliver_subject": deliver, "chunk_size": chunk_size}
        subject = f"{api_prefix(js)}.STREAM.SNAPSHOT.{stream}"
        answer = _answer(await nc.request(subject, json.dumps(request).encode(), timeout=timeout))
        while True:
            if not await inbox.wait(timeout):
                raise nats.errors.TimeoutError
            msg = inbox.msgs.popleft()
            if not msg.data:  # the end: 204, or why the server stopped
                status = status_of(msg)
                if status is not None and status.code != "204":
                    raise ApiError(int(status.code), None, status.description).exception()
                return answer
            write(msg.data)
            if msg.reply:  # flow control: one more chunk may come
                await nc.publish(msg.reply, b"")
    finally:
        await inbox.close()


async def stream_restore(
    js: JetStreamContext,
    stream: str,
    snapshot: dict[str, Any],
    chunks: Iterable[bytes],
    *,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Restore ``stream`` from ``snapshot`` (the answer :func:`stream_snapshot` returned)
    and its ``chunks``; returns the server's last answer (``stream_info`` of the new stream).

    The request carries the stream's ``config`` and ``state``; the server answers with
    a subject to send the chunks to, acknowledges each (an empty reply; an error
    instead when it cannot store it) and answers the final empty message with the
    restored stream's info, or the reason it failed (``10062``, "restore failed").
    """
    nc = connection_of(js)
    body = json.dumps({"config": snapshot["config"], "state": snapshot["state"]}).encode()
    subject = f"{api_prefix(js)}.STREAM.RESTORE.{stream}"
    deliver = _answer(await nc.request(subject, body, timeout=timeout))["deliver_subject"]
    for chunk in chunks:
        reply = await nc.request(deliver, chunk, timeout=timeout)
        if reply.data:
            _answer(reply)  # the server refused the chunk and said why
    return _answer(await nc.request(deliver, b"", timeout=timeout))


class UserCredentials(RawCredentials):
    """A ``.creds`` text for ``connect(user_credentials=...)``, shown without its seed.

    (Here because it subclasses nats-py's ``RawCredentials``; made by ``edalab.AccountUser``.)

    nats-py reads the JWT and the seed from the text; ``repr`` and ``str`` name the user only.
    """

    def __init__(self, name: str, jwt: str, public_key: str, seed: str) -> None:
        self.user = name
        self.public_key = public_key
        super().__init__(
            "-----BEGIN NATS USER JWT-----\n"
            f"{jwt}\n------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{seed}\n------END USER NKEY SEED------\n"
        )

    def __repr__(self) -> str:
        return f"<credentials of user {self.user!r} ({self.public_key[:1]}..., seed hidden)>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("credentials are not pickled (their seed would be written out)")
