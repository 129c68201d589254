"""Publish events to JetStream, one at a time or in bulk.

:func:`publish_event` (notebook ``03_publishing``) is ``js.publish`` with three
additions: the payload is the event's JSON, the ``Nats-Msg-Id`` header is the
event's id (so the server drops a duplicate sent again within the stream's
duplicate window), and failures become edalab errors naming the subject::

    ack = await publish_event(js, Event.create("user.created", {"user_id": "u1"}))
    ack.seq, ack.duplicate

:func:`publish_events` sends many with a window of unacknowledged publishes in
flight, and returns every ``PubAck`` in order; :func:`ingest_events` sends many as one
fast-ingest batch (ADR-50, nats-server 2.14+) with one acknowledgement per group of
messages, for streams created with ``allow_batched=True`` (notebook ``15_performance``)::

    acks = await publish_events(js, events)            # one PubAck per event
    report = await ingest_events(js, events)           # one flow ack per group, then a PubAck
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from edalab import _nats

from ._connection import connection_log, permission_error
from ._errors import NoStreamError, PublishError
from ._events import Event
from ._nats import Inbox, JetStream, connection_of
from ._subjects import validate_subject

__all__ = [
    "FAST_INGEST_SINCE",
    "MSG_ID",
    "IngestReport",
    "ingest_events",
    "publish_event",
    "publish_events",
]

#: The JetStream header carrying a message's id for de-duplication.
MSG_ID = "Nats-Msg-Id"

SubjectFor = str | Callable[[Event], str] | None


@functools.lru_cache(maxsize=4096)
def _checked(subject: str) -> str:
    """``subject`` if it can be published to (a service uses few: each is checked once)."""
    return validate_subject(subject)


def _subject_of(event: Event, subject: SubjectFor) -> str:
    name = event.type if subject is None else subject(event) if callable(subject) else subject
    return _checked(name) if isinstance(name, str) else validate_subject(name)


async def publish_event(
    js: JetStreamContext,
    event: Event,
    *,
    subject: SubjectFor = None,
    timeout: float = 5.0,
    retry_for: float = 0.0,
    data_as_string: bool = False,
    headers: dict[str, str] | None = None,
) -> PubAck:
    """Publish one event and await its ``PubAck``.

    The subject is ``event.type`` unless ``subject`` (a string or a function of
    the event) says otherwise. Raises :class:`~edalab.NoStreamError` when no
    stream captures the subject and :class:`~edalab.PublishError` otherwise.

    With ``retry_for`` > 0, a publish that timed out or found the server away
    (restarting, JetStream not ready) is sent again, with the same
    ``Nats-Msg-Id``, until that many seconds have passed (notebook
    ``09_durability``). If the first attempt was in fact stored, the retry comes
    back as a duplicate of it: retried or not, the event is stored once.
    """
    subj = _subject_of(event, subject)
    hdrs = {**(headers or {}), MSG_ID: event.id}
    payload = event.to_json(data_as_string=data_as_string)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    pause = 0.05
    nc = js.connection if isinstance(js, JetStream) else None  # for the permission check
    log = connection_log(nc) if nc is not None else None
    while True:
        since = len(log.errors) if log else 0
        try:
            return await js.publish(subj, payload, timeout=timeout, headers=hdrs)
        except (nats.errors.Error, TimeoutError) as err:
            denied = permission_error(nc, subj, "publish", since) if nc is not None else None
            if denied is not None:
                raise denied from err
            if not _nats.retryable(err) or loop.time() + pause > deadline:
                raise _nats.publish_error(err, subj, event.id) from err
        # A deliberate pause between retries (the server is restarting), growing to 1 s.
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


@dataclass(frozen=True)
class _Outgoing:
    """The events of one bulk call: each one's subject (all checked before anything is sent).

    Payloads and headers are made as each event goes out (:meth:`wire`), not all before
    the first: the server stores the first events while Python encodes the next.
    """

    events: list[Event]
    subjects: list[str]
    headers: dict[str, str]

    @classmethod
    def of(
        cls, events: Iterable[Event], subject: SubjectFor, headers: dict[str, str] | None
    ) -> _Outgoing:
        batch = list(events)
        checked: dict[str, str] = {}  # most batches use a few subjects: validate each once
        subjects = []
        for e in batch:
            name = subject(e) if callable(subject) else (subject if subject is not None else e.type)
            if name not in checked:
                checked[name] = validate_subject(name)
            subjects.append(checked[name])
        return cls(batch, subjects, dict(headers or {}))

    def wire(self, i: int) -> tuple[str, bytes, dict[str, str]]:
        """Event ``i``'s subject, payload and headers (its id as ``Nats-Msg-Id``)."""
        event = self.events[i]
        return self.subjects[i], event.to_json(), {**self.headers, MSG_ID: event.id}

    def failed(self, i: int, reason: str) -> PublishError:
        """The error naming event ``i``."""
        return PublishError(self.subjects[i], reason, event_id=self.events[i].id)


#: Publishes between two yields to the event loop in the bulk paths. nats-py's
#: ``publish`` only appends to a buffer that its flusher task writes out when the loop
#: runs it: a loop that never yields sends nothing until it waits, so the server sits
#: idle while Python works, then Python while the server works.
_YIELD_EVERY = 128


class _AckedPublish:
    """:func:`publish_events`: a window of publishes in flight, one ``PubAck`` per event.

    Every event is published with the reply subject ``<inbox>.<index>`` under one wildcard
    subscription; the acknowledgement's subject says which event it settles.
    """

    def __init__(
        self, js: JetStream, out: _Outgoing, window: int, timeout: float, retry_for: float
    ) -> None:
        self.js = js
        self.nc: NATS = connection_of(js)
        self.out = out
        self.window = window
        self.timeout = timeout
        self.retry_for = retry_for
        self.loop = asyncio.get_running_loop()
        self.give_up = self.loop.time() + retry_for
        self.acks: list[PubAck | None] = [None] * len(out.events)
        self.sent_at = [0.0] * len(out.events)
        self.in_flight = 0
        self.oldest = 0  # every index below this has its ack
        self.prefix = self.nc.new_inbox()
        self.offset = len(self.prefix) + 1
        log = connection_log(self.nc)
        self.since = len(log.errors) if log else 0
        self.inbox = Inbox()

    async def run(self) -> list[PubAck]:
        """Publish all, return every PubAck in input order."""
        await self.inbox.open(self.nc, self.prefix + ".*")
        try:
            for i in range(len(self.out.events)):
                await self._send(i)
                if self.in_flight >= self.window:
                    # Down to half the window, not window - 1: publishing then runs on in
                    # bursts without yielding to the loop for every event.
                    await self._settle(self.window // 2)
                elif not i % _YIELD_EVERY:
                    await asyncio.sleep(0)  # nats-py's flusher writes what we have so far
            await self._settle(0)
        finally:
            await self.inbox.close()
        settled = [a for a in self.acks if a is not None]
        if len(settled) != len(self.acks):  # cannot happen: _settle(0) accounts for each
            raise self.out.failed(0, "internal error: an acknowledgement went missing")
        return settled

    async def _send(self, i: int) -> None:
        self.sent_at[i] = self.loop.time()
        subject, payload, headers = self.out.wire(i)
        try:
            await self.nc.publish(subject, payload, reply=f"{self.prefix}.{i}", headers=headers)
        except (nats.errors.Error, TimeoutError) as err:
            if self.retry_for <= 0 or not _nats.retryable(err):
                raise _nats.publish_error(err, self.out.subjects[i], self.out.events[i].id) from err
            self.sent_at[i] = self.loop.time() - self.timeout  # overdue at once: resent
        self.in_flight += 1

    async def _settle(self, upto: int) -> None:
        """Take acknowledgements until at most ``upto`` events are in flight."""
        msgs = self.inbox.msgs
        while True:
            while msgs:
                self._accept(msgs.popleft())
            if self.in_flight <= upto:
                return
            while self.acks[self.oldest] is not None:
                self.oldest += 1
            left = self.sent_at[self.oldest] + self.timeout - self.loop.time()
            if not await self.inbox.wait(left):
                await self._overdue()

    def _accept(self, msg: Msg) -> None:
        try:
            i = int(msg.subject[self.offset :])
        except ValueError:
            return
        if i >= len(self.acks) or self.acks[i] is not None:
            return  # a late answer to an event already settled by a retry
        reply = _nats.pub_reply(msg)
        if reply is None:
            # No responders: no stream, or (in a cluster) none that can answer right now.
            if self.retry_for <= 0:
                raise NoStreamError(self.out.subjects[i])
            self.sent_at[i] = self.loop.time() - self.timeout  # overdue: resent
            return
        if isinstance(reply, _nats.ApiError):
            failed = self.out.failed(i, f"server said: {reply.description}")
            raise failed from reply.exception()
        self.in_flight -= 1
        self.acks[i] = reply

    async def _overdue(self) -> None:
        """The oldest event's ack is late: a denial, an error, or (with retry_for) resend."""
        i = self.oldest
        denied = permission_error(self.nc, self.out.subjects[i], "publish", self.since)
        if denied is not None:
            raise denied
        if self.retry_for <= 0:
            raise self.out.failed(i, "no PubAck before the timeout")
        # Resend, with the same Nats-Msg-Id, every event whose ack is overdue.
        now = self.loop.time()
        for j in range(i, len(self.acks)):
            if self.acks[j] is None and self.sent_at[j] and self.sent_at[j] + self.timeout <= now:
                self.acks[j] = await publish_event(
                    self.js,
                    self.out.events[j],
                    subject=self.out.subjects[j],
                    timeout=min(self.timeout, 2.0),
                    retry_for=max(0.0, self.give_up - self.loop.time()),
                    headers=self.out.headers,
                )
                self.in_flight -= 1


async def publish_events(
    js: JetStream,
    events: Iterable[Event],
    *,
    subject: SubjectFor = None,
    window: int = 256,
    timeout: float = 10.0,
    retry_for: float = 0.0,
    headers: dict[str, str] | None = None,
) -> list[PubAck]:
    """Publish many events with up to ``window`` unacknowledged at once.

    Far faster than awaiting each ``js.publish`` in turn, with the same
    guarantee: it returns only when every event has its ``PubAck`` (in input
    order), and raises naming the first event that failed. ``timeout`` bounds
    the wait for each acknowledgement, counted from when its event was sent.
    With ``retry_for`` > 0, an event whose acknowledgement did not come is sent
    again (same ``Nats-Msg-Id``) as :func:`publish_event` does, so a server
    restart in the middle loses nothing and duplicates nothing.

    ``js`` must be an edalab :class:`~edalab.JetStream` (what
    ``nc.jetstream()`` returns for a connection made by :func:`edalab.connect`):
    the events go out on its connection, each with the reply subject
    ``<inbox>.<index>`` under one wildcard subscription. nats-py's ``publish_async``
    does the same with a future, an id and a callback per event.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    out = _Outgoing.of(events, subject, headers)
    if not out.events:
        return []
    return await _AckedPublish(js, out, window, timeout, retry_for).run()


@dataclass(frozen=True)
class IngestReport:
    """What :func:`ingest_events` stored: how many events, in how many batches, the last seq.

    ``last_seq`` is the stream sequence of the last message the final batch stored (0
    when the server dropped every event of that batch as a duplicate).

    ``batches`` is 1 unless acknowledgements were lost (a server restart) and the rest was
    sent again as a new batch; ``resent`` counts the events sent more than once (each is
    stored once: the server drops a repeated ``Nats-Msg-Id``).
    """

    stream: str
    events: int
    last_seq: int
    batches: int = 1
    resent: int = 0


class _Lost(Exception):
    """The batch's acknowledgements stopped coming: resend from event ``index`` on."""

    def __init__(self, index: int, why: str) -> None:
        super().__init__(why)
        self.index = index
        self.why = why


class _FastIngest:
    """:func:`ingest_events`: ADR-50 fast-ingest batches with ``gap: fail``.

    Each event goes out with the reply subject
    ``<inbox>.<flow>.fail.<batch seq>.<op>.$FI`` (op 0 starts the batch, 1 appends, 2
    commits); the server answers the first with its flow (``{"type":"ack","seq":0,
    "msgs":N}``), then one flow ack every N messages (``seq``: every message up to it is
    stored, none missing), and the commit with a ``PubAck`` counting the batch.
    """

    def __init__(
        self,
        js: JetStream,
        out: _Outgoing,
        flow: int,
        outstanding: int,
        timeout: float,
        retry_for: float,
    ) -> None:
        self.nc: NATS = connection_of(js)
        self.out = out
        self.flow = flow
        self.outstanding = outstanding
        self.timeout = timeout
        self.retry_for = retry_for
        self.loop = asyncio.get_running_loop()
        self.batches = 0
        self.resent = 0
        # The current batch: its first event, how far it is sent and confirmed, its replies.
        self.start = self.confirmed = self.sent_upto = 0
        self.ack_every = flow
        self.heard = False
        self.final: PubAck | None = None
        self.inbox = Inbox()

    async def run(self) -> IngestReport:
        """Send every event; a lost batch is resent from its first unconfirmed event."""
        give_up = self.loop.time() + self.retry_for
        start, pause = 0, 0.05
        while True:
            try:
                ack = await self._batch(start)
                return IngestReport(
                    ack.stream, len(self.out.events), ack.seq, self.batches, self.resent
                )
            except _Lost as lost:
                if self.loop.time() + pause > give_up:
                    raise self.out.failed(lost.index, lost.why) from lost.__cause__
                self.resent += self.sent_upto - lost.index
                start = lost.index
            # A deliberate pause before a new batch (the server is restarting), up to 1 s.
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _batch(self, start: int) -> PubAck:
        """One batch from event ``start`` to the end; its final PubAck."""
        self.batches += 1
        self.start = self.confirmed = self.sent_upto = start
        self.final = None
        self.ack_every = self.flow
        self.heard = False
        prefix = self.nc.new_inbox()
        self.inbox = await Inbox().open(self.nc, prefix + ".>")
        last = len(self.out.events) - 1
        try:
            for i in range(start, last + 1):
                seq = i - start + 1
                op = 2 if i == last else (0 if seq == 1 else 1)
                await self._send(i, _nats.ingest_reply_subject(prefix, self.flow, seq, op))
                if op == 0:  # the server's first answer: refused, or the flow to use
                    await self._wait(lambda: self.heard)
                if self.inbox.msgs:
                    self._take()
                # Flow control: at most `outstanding` groups of `ack_every` unconfirmed.
                if not self._may_send():
                    await self._wait(self._may_send)
                elif not seq % _YIELD_EVERY:
                    await asyncio.sleep(0)  # nats-py's flusher writes what we have so far
            await self._wait(lambda: self.final is not None)
        finally:
            await self.inbox.close()
        assert self.final is not None
        return self.final

    async def _send(self, i: int, reply: str) -> None:
        subject, payload, headers = self.out.wire(i)
        try:
            await self.nc.publish(subject, payload, reply=reply, headers=headers)
        except (nats.errors.Error, TimeoutError) as err:
            if self.retry_for <= 0 or not _nats.retryable(err):
                raise _nats.publish_error(err, self.out.subjects[i], self.out.events[i].id) from err
            raise _Lost(self.confirmed, f"{type(err).__name__} while sending") from err
        self.sent_upto = i + 1

    def _may_send(self) -> bool:
        return self.sent_upto - self.confirmed < self.ack_every * self.outstanding

    async def _wait(self, done: Callable[[], bool]) -> None:
        """Take replies until ``done()``; a silence of ``timeout`` loses the batch."""
        self._take()
        while not done():
            if not await self.inbox.wait(self.timeout):
                raise _Lost(self.confirmed, "no acknowledgement before the timeout")
            self._take()

    def _take(self) -> None:
        msgs = self.inbox.msgs
        while msgs:
            self._reply(msgs.popleft())

    def _reply(self, msg: Msg) -> None:
        reply = _nats.ingest_reply(msg)
        if reply.kind == "no_stream":
            raise NoStreamError(self.out.subjects[self.start])
        if reply.kind == "flow":  # every message up to `seq` of this batch is stored
            self.confirmed = max(self.confirmed, self.start + reply.seq)
            self.ack_every = reply.msgs
            self.heard = True
        elif reply.kind == "gap":  # messages went missing on the way: the batch stops there
            raise _Lost(self.confirmed, "the server saw a gap in the batch")
        elif reply.kind in ("err", "error"):
            error = reply.error or _nats.ApiError(None, None, "refused")
            if error.err_code == _nats.ErrCode.BATCH_PUBLISH_UNKNOWN_ID:
                raise _Lost(self.confirmed, "the server lost the batch (restarted?)")
            why = f"server said: {error.description}"
            if error.err_code == _nats.ErrCode.BATCH_PUBLISH_DISABLED:
                why += " (create the stream with allow_batched=True; nats-server 2.14+)"
            raise self.out.failed(self.start + reply.seq - 1, why) from error.exception()
        else:  # the commit's PubAck: the whole batch is stored
            self.final = reply.ack
            self.confirmed = self.sent_upto
            self.heard = True


async def ingest_events(
    js: JetStream,
    events: Iterable[Event],
    *,
    subject: SubjectFor = None,
    flow: int = 500,
    outstanding: int = 2,
    timeout: float = 10.0,
    retry_for: float = 0.0,
    headers: dict[str, str] | None = None,
) -> IngestReport:
    """Publish many events as one fast-ingest batch (ADR-50): one ack per group, not per event.

    The stream must allow it (``allow_batched=True``, nats-server 2.14+). The server
    acknowledges every ``flow`` messages at most (it picks the group size, up to 500, and
    shrinks it when other fast publishers share the stream); at most ``outstanding``
    groups are unconfirmed at once. With ``gap: fail`` an acknowledgement of message N
    means every message up to N is stored, so it returns only when every event is stored,
    and raises naming the event the server refused (the batch stops there: later events
    are not stored).

    What you give up against :func:`publish_events`: no ``PubAck`` per event (no
    sequence or ``duplicate`` flag for each; :class:`IngestReport` has the last), and the
    stream must opt in. With ``retry_for`` > 0, a batch whose acknowledgements stop
    (a server restart) is sent again from its first unconfirmed event as a new batch,
    with the same ``Nats-Msg-Id`` headers: nothing lost, nothing stored twice.
    """
    if flow < 1 or outstanding < 1:
        raise ValueError("flow and outstanding must be at least 1")
    out = _Outgoing.of(events, subject, headers)
    if not out.events:
        raise ValueError("no events to ingest")
    server = connection_of(js).connected_server_version
    if (server.major, server.minor) < FAST_INGEST_SINCE:
        # An older server does not know the batch headers: it would store the messages as
        # plain publishes and never send the flow acknowledgements this waits for.
        raise PublishError(
            out.subjects[0],
            f"fast ingest needs nats-server {'.'.join(map(str, FAST_INGEST_SINCE))}+; "
            f"this server is {server.major}.{server.minor}.{server.patch}: use publish_events",
            event_id=out.events[0].id,
        )
    return await _FastIngest(js, out, flow, outstanding, timeout, retry_for).run()


#: The nats-server release that brought fast-ingest batches (ADR-50, ``allow_batched``).
FAST_INGEST_SINCE = (2, 14)
