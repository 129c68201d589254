"""Consume events from JetStream: durable consumers and a typed handler loop.

:func:`ensure_consumer` (notebook ``07_durable_consumers_and_replay``) is the
consumer twin of :func:`~edalab.ensure_stream`: idempotent, it updates what
the server lets change and, for what it does not (a durable's deliver policy,
its start sequence, its ack policy...), raises
:class:`~edalab.ConsumerConfigConflict`, or starts afresh when you pass
``recreate=True``.

:class:`EventConsumer` (notebooks ``05_subscribing`` and ``06_acks_and_redelivery``)
wraps a pull consumer::

    consumer = await EventConsumer.create(js, "USERS", "mailer", filter_subject="user.>")
    async for delivery in consumer.events(max_events=10):
        print(delivery.event.type)
        await delivery.ack()

    report = await consumer.run(handle)    # ack on success, nak/term on errors
    async for deliveries in consumer.batches(batch=500):   # bulk: a list at a time
        await consumer.ack_batch(deliveries)               # notebook 15_performance

It never drops a message silently: one that cannot be decoded (or has a version
no registered model knows) is terminated with its reason and recorded in
:attr:`EventConsumer.quarantined`; the server's termination advisory carries the
reason too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo
from nats.js.client import JetStreamContext

from edalab import _nats

from ._errors import (
    ConsumerConfigConflict,
    ConsumerError,
    EventDecodeError,
    EventError,
    PermanentError,
    TransientError,
    UnknownVersionError,
)
from ._events import Event, stream_sequence
from ._nats import Inbox, JetStream, connection_of
from ._reasons import Reason
from ._streams import plain

if TYPE_CHECKING:
    from ._versioning import SchemaRegistry

__all__ = [
    "ConsumerSetup",
    "Delivery",
    "EventConsumer",
    "Quarantined",
    "RunReport",
    "consumer_filters",
    "ensure_consumer",
    "stored_event_ids",
]


@dataclass(frozen=True)
class ConsumerSetup:
    """What :func:`ensure_consumer` did: ``created``, ``unchanged``, ``updated``, ``recreated``."""

    stream: str
    name: str
    action: Literal["created", "unchanged", "updated", "recreated"]
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    info: ConsumerInfo | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        extra = f", changes={self.changes!r}" if self.changes else ""
        return f"ConsumerSetup(name={self.name!r}, action={self.action!r}{extra})"


def _norm(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if key == "opt_start_time" and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    if key in ("ack_wait", "idle_heartbeat", "inactive_threshold") and value is not None:
        return round(float(value), 6)
    if key == "backoff" and value is not None:
        return [round(float(v), 6) for v in value]
    return value


def consumer_filters(config: ConsumerConfig | dict[str, Any]) -> list[str]:
    """A consumer's filter subjects, sorted, whether set as one or as several.

    >>> consumer_filters({"filter_subject": "user.created"})
    ['user.created']
    """
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k, None)
    one, many = get("filter_subject"), get("filter_subjects")
    return sorted(set(many or []) | ({one} if one else set()))


def _consumer_diff(existing: ConsumerConfig, wanted: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for key, new in wanted.items():
        if key in ("filter_subject", "filter_subjects"):
            continue
        old = getattr(existing, key, None)
        if _norm(key, old) != _norm(key, new):
            changes[key] = (plain(old), plain(new))
    # One filter or several are one setting: compare the sets, whichever field holds them.
    if ("filter_subject" in wanted or "filter_subjects" in wanted) and (
        consumer_filters(existing) != consumer_filters(wanted)
    ):
        changes["filters"] = (consumer_filters(existing), consumer_filters(wanted))
    return changes


async def ensure_consumer(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    recreate: bool = False,
    **config: Any,
) -> ConsumerSetup:
    """Create durable consumer ``durable`` on ``stream``, idempotently.

    ``config`` takes :class:`nats.js.api.ConsumerConfig` fields (``deliver_policy``,
    ``filter_subject``, ``ack_wait``, ``max_deliver``, ``backoff`` ...). Only those
    are compared with an existing consumer. A change the server refuses raises
    :class:`~edalab.ConsumerConfigConflict`, unless ``recreate=True``, which
    deletes the consumer (and its position in the stream) and creates it anew.
    """
    wanted = {"durable_name": durable, **config}

    async def create() -> ConsumerInfo:
        try:
            created: ConsumerInfo = await js.add_consumer(stream, ConsumerConfig(**wanted))
        except nats.js.errors.APIError as err:
            raise ConsumerError(
                f"cannot create consumer {durable!r} on stream {stream!r}: {err.description}"
            ) from err
        return created

    try:
        info = await js.consumer_info(stream, durable)
    except nats.js.errors.NotFoundError:
        return ConsumerSetup(stream, durable, "created", info=await create())
    changes = _consumer_diff(info.config, wanted)
    if not changes:
        return ConsumerSetup(stream, durable, "unchanged", info=info)
    if recreate:
        await js.delete_consumer(stream, durable)
        info = await create()
        return ConsumerSetup(stream, durable, "recreated", changes, info=info)
    merged = ConsumerConfig.from_response(info.config.as_dict())
    for key in changes:
        if key == "filters":
            new = consumer_filters(wanted)
            merged.filter_subject = new[0] if len(new) == 1 else None
            merged.filter_subjects = new if len(new) > 1 else None
        else:
            setattr(merged, key, wanted[key])
    try:
        info = await js.add_consumer(stream, merged)
    except nats.js.errors.APIError as err:
        raise ConsumerConfigConflict(stream, durable, changes, str(err.description)) from err
    return ConsumerSetup(stream, durable, "updated", changes, info=info)


@dataclass(slots=True)
class Delivery:
    """A decoded event with the JetStream message that carried it (and its connection)."""

    event: Event
    msg: Msg
    nc: NATS = field(repr=False)

    @property
    def subject(self) -> str:
        """The subject the event was published on."""
        return self.msg.subject

    @property
    def seq(self) -> int:
        """The event's stream sequence."""
        return int(self.msg.metadata.sequence.stream)

    @property
    def num_delivered(self) -> int:
        """How many times the server has delivered this message (1 on first delivery)."""
        return int(self.msg.metadata.num_delivered)

    async def ack(self, *, sync: bool = False, timeout: float = 2.0) -> None:
        """Acknowledge; with ``sync=True`` wait until the server confirms (the double ack)."""
        if sync:
            await self.msg.ack_sync(timeout=timeout)
        else:
            await self.msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        """Ask for redelivery, after ``delay`` seconds if given."""
        await self.msg.nak(delay=delay)

    async def in_progress(self) -> None:
        """Reset the ack timer: the work goes on."""
        await self.msg.in_progress()

    async def term(self, reason: str = "") -> None:
        """Stop redelivering this message, recording ``reason``."""
        await _nats.term(self.nc, self.msg, reason or "terminated by handler")


@dataclass(frozen=True)
class Quarantined:
    """A message put aside (terminated) with the reason; ``raw`` keeps its bytes.

    ``reason`` is the text the server's advisory carries; ``kind`` is its typed value.
    """

    subject: str
    sequence: int | None
    reason: str
    raw: bytes = field(repr=False)
    kind: Reason = field(default=Reason.TERMINATED, repr=False)


@dataclass
class RunReport:
    """What :meth:`EventConsumer.run` did."""

    handled: int = 0
    acked: int = 0
    retried: int = 0
    terminated: int = 0
    errors: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"RunReport(handled={self.handled}, acked={self.acked}, retried={self.retried}, "
            f"terminated={self.terminated})"
        )


Handler = Callable[..., Awaitable[Any]]


def _wants_delivery(handler: Handler) -> bool:
    """``handler(event, delivery)`` rather than ``handler(event)``."""
    return len(inspect.signature(handler).parameters) >= 2


class _Quota:
    """How many more events an iteration wants (``None``: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def left(self) -> int | None:
        return None if self.limit is None else self.limit - self.used


class _PullRequests:
    """Pipelined pull requests for one iteration, and the messages they bring.

    Every message asked for is accounted for (delivered, or returned unfulfilled by the
    server's 408 when the request expires), so when this stops no request of ours is
    left open on the server to capture messages nobody will read. nats-py's ``fetch``
    waits on each message with its own timeout; here replies gather in an
    :class:`Inbox` and are taken all at once.
    """

    def __init__(self, consumer: EventConsumer, batch: int, timeout: float, quota: _Quota) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.consumer = consumer
        self.nc = consumer.nc
        self.batch = batch
        self.timeout = timeout
        self.quota = quota
        self.request_expires = max(int(timeout * 1e9), 1_000_000)
        self.reply = self.nc.new_inbox()
        self.outstanding = 0  # messages asked for and not yet accounted for
        self.got_since_idle_check = 0
        self.idle = False
        self.inbox = Inbox()

    async def open(self) -> None:
        """Subscribe to the reply inbox."""
        await self.inbox.open(self.nc, self.reply)

    async def close(self) -> None:
        """Unsubscribe."""
        await self.inbox.close()

    async def _ask(self) -> None:
        wanted = self.quota.left()
        if (wanted is not None and wanted <= 0) or self.outstanding > self.batch // 2:
            return
        size = self.batch if wanted is None else min(self.batch, wanted - self.outstanding)
        if size > 0:
            c = self.consumer
            await _nats.request_next(
                self.nc, c.js, c.stream, c.durable, self.reply, size, self.request_expires
            )
            self.outstanding += size

    async def take(self) -> list[Msg] | None:
        """The next messages (at least one), or ``None``: nothing more wanted, or idle."""
        while not self.idle:
            await self._ask()
            # One turn of the loop, so nats-py's flusher writes what went out since the
            # last list (its acks, this pull request) before we read on: taking messages
            # already here does not wait, and unwritten acks would hold the consumer at
            # max_ack_pending while we work through them.
            await asyncio.sleep(0)
            if self.outstanding == 0:
                return None  # nothing more wanted, nothing in flight
            # The server answers every request by its expiry: a late 408 at worst.
            if not await self.inbox.wait(self.timeout + 5):
                raise ConsumerError(
                    f"no answer from the server for consumer {self.consumer.durable!r} on "
                    f"stream {self.consumer.stream!r} (connection lost?)"
                )
            out = self._sort(self.inbox.msgs)
            if out:
                return out
        return None

    def _sort(self, msgs: deque[Msg]) -> list[Msg]:
        """Messages out of ``msgs``; statuses (heartbeat, 408, 409) update the accounts."""
        out: list[Msg] = []
        append, got = out.append, 0
        for msg in msgs:
            status = _nats.status_of(msg)
            if status is None:
                append(msg)
                got += 1
                continue
            self._count(got)
            got = 0
            if status.heartbeat:
                continue
            pending = status.pending
            self.outstanding = max(0, self.outstanding - pending) if pending else 0
            if status.consumer_deleted:
                raise ConsumerError(f"consumer {self.consumer.durable!r} was deleted")
            if self.outstanding == 0:
                if not self.got_since_idle_check:
                    self.idle = True  # a whole request expired empty: idle for `timeout`
                self.got_since_idle_check = 0
        msgs.clear()
        self._count(got)
        return out

    def _count(self, delivered: int) -> None:
        self.outstanding -= delivered
        self.got_since_idle_check += delivered


def _why(err: EventError) -> tuple[Reason, str]:
    """Why a message that failed to decode (or upcast) is quarantined."""
    if isinstance(err, EventDecodeError):
        return Reason.UNDECODABLE, Reason.UNDECODABLE.text(err.reason)
    if isinstance(err, UnknownVersionError):
        return Reason.UNKNOWN_VERSION, Reason.UNKNOWN_VERSION.text(str(err))
    return Reason.INVALID_EVENT, Reason.INVALID_EVENT.text(f"{type(err).__name__}: {err}")


class EventConsumer:
    """A durable pull consumer that yields decoded events.

    Create it with :meth:`create`; ``registry`` (a
    :class:`~edalab.SchemaRegistry`) upcasts every event to its newest
    version before you see it.
    """

    def __init__(
        self,
        js: JetStream,
        stream: str,
        durable: str,
        sub: JetStreamContext.PullSubscription,
        *,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.js = js
        #: The connection: pull requests, replies and terminations go out on it.
        self.nc: NATS = connection_of(js)
        self.stream = stream
        self.durable = durable
        self.sub = sub
        self.registry = registry
        self.quarantined: list[Quarantined] = []
        #: The consumer's ack policy (``create`` reads it from the server).
        self.ack_policy = AckPolicy.EXPLICIT
        self._stopping = False

    @classmethod
    async def create(
        cls,
        js: JetStream,
        stream: str,
        durable: str,
        *,
        recreate: bool = False,
        registry: SchemaRegistry | None = None,
        **config: Any,
    ) -> EventConsumer:
        """Ensure the durable consumer exists (see :func:`ensure_consumer`) and bind to it."""
        setup = await ensure_consumer(js, stream, durable, recreate=recreate, **config)
        sub = await js.pull_subscribe_bind(durable, stream)
        consumer = cls(js, stream, durable, sub, registry=registry)
        if setup.info is not None:
            consumer.ack_policy = AckPolicy(setup.info.config.ack_policy or AckPolicy.EXPLICIT)
        return consumer

    async def info(self) -> ConsumerInfo:
        """The consumer's state on the server."""
        info: ConsumerInfo = await self.js.consumer_info(self.stream, self.durable)
        return info

    async def close(self) -> None:
        """Stop receiving (the durable consumer stays on the server)."""
        with contextlib.suppress(nats.errors.Error):
            await self.sub.unsubscribe()

    async def _quarantine(self, msg: Msg, why: tuple[Reason, str]) -> None:
        kind, text = why
        self.quarantined.append(
            Quarantined(msg.subject, stream_sequence(msg), text, msg.data, kind)
        )
        await _nats.term(self.nc, msg, text)

    async def _deliveries(self, msgs: Iterable[Msg]) -> list[Delivery]:
        """Decode every message (upcast with the registry); quarantine each that fails.

        The hot path of every read: one loop, no call per message beyond the decode.
        """
        out: list[Delivery] = []
        append, decode, registry, nc = out.append, Event.from_msg, self.registry, self.nc
        for msg in msgs:
            try:
                event = decode(msg)
                if registry is not None:
                    event = registry.upcast(event, subject=msg.subject)
            except EventError as err:
                await self._quarantine(msg, _why(err))
                continue
            append(Delivery(event, msg, nc))
        return out

    async def fetch(self, batch: int = 10, timeout: float = 1.0) -> list[Delivery]:
        """Fetch up to ``batch`` events, waiting at most ``timeout``; ``[]`` when none came.

        Messages that cannot be decoded are quarantined, not returned. It reads with the
        same pull requests as :meth:`events`, so it fails the same way: a deleted
        consumer raises :class:`~edalab.ConsumerError` (nats-py's ``fetch``
        would report its "409 Consumer Deleted" as a timeout, as if nothing came).
        """
        out: list[Delivery] = []
        async for deliveries in self.batches(batch=batch, timeout=timeout, max_events=batch):
            out += deliveries
        return out

    async def events(
        self, *, batch: int = 10, timeout: float = 1.0, max_events: int | None = None
    ) -> AsyncGenerator[Delivery, None]:
        """Yield deliveries until ``max_events`` were yielded or none came for ``timeout``.

        Acknowledging is up to you (``await delivery.ack()``). Each event is yielded as
        soon as it arrives; behind the scenes pull requests of up to ``batch`` messages
        are pipelined (the next one goes out when the current one is half received).
        """
        async for deliveries in self.batches(batch=batch, timeout=timeout, max_events=max_events):
            for delivery in deliveries:
                yield delivery

    async def batches(
        self, *, batch: int = 256, timeout: float = 1.0, max_events: int | None = None
    ) -> AsyncIterator[list[Delivery]]:
        """Like :meth:`events`, a list at a time: every delivery that has arrived so far.

        For bulk work (notebook ``15_performance``): one await per list instead of one per
        event; settle the list with :meth:`ack_batch`.
        """
        quota = _Quota(max_events)
        pulls = _PullRequests(self, batch, timeout, quota)
        await pulls.open()
        try:
            while (msgs := await pulls.take()) is not None:
                deliveries = await self._deliveries(msgs)
                if deliveries:
                    quota.used += len(deliveries)
                    yield deliveries
        finally:
            await pulls.close()

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge every delivery of the list: one ack each, or one in all under AckPolicy.ALL.

        With ``ack_policy=AckPolicy.ALL`` the server takes an ack of sequence N as an
        ack of every message of the consumer up to N, so the last one is sent alone.
        That is only right when every earlier message was handled too, and only one
        worker pulls from the consumer (another worker's unfinished messages below N
        would be acknowledged with it).
        """
        if not deliveries:
            return
        if self.ack_policy == AckPolicy.ALL:
            await deliveries[-1].ack()
            return
        for delivery in deliveries:
            await delivery.msg.ack()

    async def run(
        self,
        handler: Handler,
        *,
        batch: int = 10,
        timeout: float = 1.0,
        max_events: int | None = None,
        retry_delay: float = 1.0,
        on_transient: Literal["nak", "let_expire"] = "nak",
        double_ack: bool = False,
        observer: Callable[[str, Delivery], None] | None = None,
    ) -> RunReport:
        """Call ``handler(event)`` (or ``handler(event, delivery)``) for each event.

        - returns normally: ack (with ``double_ack``, wait for the server's confirmation);
        - raises :class:`~edalab.TransientError`: nak, redelivered after its
          ``delay`` (or ``retry_delay``);
        - raises :class:`~edalab.PermanentError`: terminate and quarantine;
        - raises anything else: treated as transient (nak after ``retry_delay``), and
          recorded in the report; ``max_deliver`` on the consumer bounds the retries.

        ``on_transient`` chooses how a transient failure is retried:

        - ``"nak"`` (the default): nak with the delay above; the server redelivers after
          that delay, or, on a consumer with a ``backoff``, after
          ``delay + backoff[n-1] - backoff[0]`` for the n-th redelivery;
        - ``"let_expire"``: send nothing, so the message comes back when its ack timer
          runs out: after ``ack_wait``, or after the consumer's next ``backoff`` step
          (a plain nak, without a delay, ignores ``backoff``).
          A :class:`~edalab.TransientError` that names its own ``delay`` is still
          nak'ed with it. Give ``timeout`` more than the longest step, or the run stops
          before the message comes back. Notebook ``06_acks_and_redelivery`` shows both.

        Stops after ``max_events`` events or when none arrive for ``timeout`` seconds.
        ``observer(outcome, delivery)``, if given, hears each ``"deliver"``, ``"ack"``,
        ``"retry"`` and ``"term"`` (for tracing; notebook ``17_capstone`` plots them).
        """
        note = self._check(on_transient, observer)
        wants_delivery = _wants_delivery(handler)
        report = RunReport()
        async for delivery in self.events(batch=batch, timeout=timeout, max_events=max_events):
            await self._handle(
                handler, delivery, wants_delivery, report, note,
                retry_delay=retry_delay, on_transient=on_transient, double_ack=double_ack,
                crash=False,
            )  # fmt: skip
        return report

    async def serve(
        self,
        handler: Handler,
        *,
        batch: int = 10,
        idle: float = 1.0,
        retry_delay: float = 1.0,
        on_transient: Literal["nak", "let_expire"] = "nak",
        unexpected: Literal["raise", "retry"] = "raise",
        double_ack: bool = False,
        observer: Callable[[str, Delivery], None] | None = None,
    ) -> RunReport:
        """Run ``handler`` on every event until cancelled or stopped (:meth:`stop`): a service.

        The handler's contract is :meth:`run`'s (return: ack; ``TransientError``: nak;
        ``PermanentError``: terminate and quarantine), but a quiet consumer does not end
        it: it pulls again every ``idle`` seconds. Any other exception crashes the
        service (``unexpected="raise"``, the default): the message is nak'ed for a
        redelivery and the exception propagates, so under an ``asyncio.TaskGroup`` it
        cancels the other services and surfaces at once::

            async with asyncio.TaskGroup() as services:
                services.create_task(payments.serve(charge))
                services.create_task(emails.serve(send))

        With ``unexpected="retry"`` such an exception is retried like a transient one
        (nak after ``retry_delay``, recorded in the report). Cancelling the task stops
        it where it is (``CancelledError`` propagates); :meth:`stop` lets the event in
        hand finish and returns the report within ``idle`` seconds.
        """
        note = self._check(on_transient, observer)
        wants_delivery = _wants_delivery(handler)
        report = RunReport()
        self._stopping = False
        while not self._stopping:
            # One round of pipelined pulls; it ends after `idle` quiet seconds with every
            # pull request answered, so a stop leaves none open on the server.
            events = self.events(batch=batch, timeout=idle)
            async with contextlib.aclosing(events):
                async for delivery in events:
                    await self._handle(
                        handler, delivery, wants_delivery, report, note,
                        retry_delay=retry_delay, on_transient=on_transient,
                        double_ack=double_ack, crash=unexpected == "raise",
                    )  # fmt: skip
                    if self._stopping:
                        break
        return report

    def stop(self) -> None:
        """Ask :meth:`serve` to return: after the event in hand, or within ``idle`` seconds."""
        self._stopping = True

    @staticmethod
    def _check(
        on_transient: str, observer: Callable[[str, Delivery], None] | None
    ) -> Callable[[str, Delivery], None]:
        if on_transient not in ("nak", "let_expire"):
            raise ConsumerError(f"on_transient must be 'nak' or 'let_expire', not {on_transient!r}")
        return observer or (lambda outcome, delivery: None)

    async def _handle(
        self,
        handler: Handler,
        delivery: Delivery,
        wants_delivery: bool,
        report: RunReport,
        note: Callable[[str, Delivery], None],
        *,
        retry_delay: float,
        on_transient: str,
        double_ack: bool,
        crash: bool,
    ) -> None:
        """One event through ``handler``, settled as :meth:`run` documents."""
        report.handled += 1
        note("deliver", delivery)
        where = f"{delivery.event.type} seq {delivery.seq}"
        try:
            if wants_delivery:
                await handler(delivery.event, delivery)
            else:
                await handler(delivery.event)
        except TransientError as err:
            note("retry", delivery)
            report.retried += 1
            report.errors.append(f"{where}: retry ({err.reason})")
            if err.delay is not None or on_transient == "nak":
                await delivery.nak(err.delay if err.delay is not None else retry_delay)
        except PermanentError as err:
            note("term", delivery)
            report.terminated += 1
            report.errors.append(f"{where}: terminated ({err.reason})")
            why = (Reason.REJECTED, Reason.REJECTED.text(err.reason))
            await self._quarantine(delivery.msg, why)
        except Exception as err:
            note("retry", delivery)
            report.retried += 1
            report.errors.append(f"{where}: {type(err).__name__}: {err}")
            if on_transient == "nak" or crash:
                await delivery.nak(retry_delay)
            if crash:
                raise
        else:
            await delivery.ack(sync=double_ack)
            note("ack", delivery)
            report.acked += 1


async def stored_event_ids(
    js: JetStreamContext, stream: str, *, timeout: float = 2.0
) -> Counter[str]:
    """How many times each event id is stored in ``stream`` (read start to end, then forget).

    For checking a run after faults: an id counted twice is a duplicate, a missing id a
    loss. Undecodable messages are not counted (and not terminated).

    Each fetch waits up to ``timeout``; right after a fault (a restarted node, a new
    consumer leader) a fetch can come back empty, so reading goes on until nothing came
    for ``5 * timeout`` in a row, then :class:`TimeoutError` names what was read.
    """
    total = (await js.stream_info(stream)).state.messages
    sub = await js.pull_subscribe(">", stream=stream)
    ids: Counter[str] = Counter()
    seen = 0
    quiet = 0  # fetches in a row that brought nothing
    try:
        while seen < total:
            try:
                msgs = await sub.fetch(min(500, total - seen), timeout=timeout)
            except TimeoutError as err:  # nats-py 2.16's fetch: its own, or asyncio's
                quiet += 1
                if quiet >= 5:
                    raise TimeoutError(
                        f"stream {stream}: read {seen} of {total} messages, then nothing "
                        f"for {5 * timeout:g} s"
                    ) from err
                continue
            quiet = 0
            for msg in msgs:
                seen += 1
                with contextlib.suppress(EventError):
                    ids[Event.from_msg(msg).id] += 1
                await msg.ack()
    finally:
        await sub.unsubscribe()
    return ids
