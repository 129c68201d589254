"""edalab's guarantees as FastStream building blocks (notebook ``22_workbook_to_service``).

FastStream (``faststream[nats]``) gives a service its handler loop: pydantic-validated
handlers, acknowledgement policies, a test broker. What this course teaches matters
most it leaves to you. Each piece here is one of FastStream's own extension points,
added to *your* broker; none wraps FastStream:

=========================  =====================================================
piece                      FastStream extension point
=========================  =====================================================
:class:`EventPublishing`   broker middleware, ``publish_scope``: an :class:`~edalab.Event`
                           goes out as edalab JSON with its id as ``Nats-Msg-Id`` (a
                           retried publish is dropped by the stream) and the flow
                           headers (``Correlation-Id``, ``Causation-Id``, ``traceparent``)
:class:`EventDecoder`      custom ``decoder=``: the body becomes an :class:`~edalab.Event`,
                           old versions upcast by a :class:`~edalab.SchemaRegistry`
:class:`Failures`          broker middleware, ``consume_scope``: ``TransientError``
                           becomes ``NackMessage(delay=...)``, ``PermanentError`` and
                           undecodable events a ``+TERM`` with edalab's reason, so
                           :class:`~edalab.DeadLetters` files them by category
:class:`IdempotencyGuard`  broker middleware, ``consume_scope``: the handler's result
                           is recorded under the event id with one atomic
                           :meth:`~edalab.ProcessedIds.record`; a redelivery is skipped
:class:`ReplayRoute`       the subscriber arguments that read a consumer's dead-letter
                           replays (:meth:`~edalab.DeadLetters.replay`), and nobody else's
=========================  =====================================================

A service::

    from faststream import AckPolicy, FastStream
    from faststream.nats import JStream, NatsBroker, PullSub
    from edalab.faststream import EventDecoder, EventPublishing, Failures, IdempotencyGuard

    broker = NatsBroker(url, middlewares=[EventPublishing(), Failures()])
    charges = IdempotencyGuard("charges", broker)
    broker.add_middleware(charges)   # appended: the innermost, inside Failures

    @broker.subscriber("shop.order.placed", stream=JStream("SHOP", declare=False),
                       durable="shop-payments", pull_sub=PullSub(),
                       decoder=EventDecoder(registry), ack_policy=AckPolicy.NACK_ON_ERROR)
    @broker.publisher("shop.payment.captured", stream="SHOP")
    async def pay(event: Event) -> Event: ...

``pip install "edalab[faststream]"`` installs FastStream; ``edalab`` alone does not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

try:
    from faststream import BaseMiddleware, ContextRepo, StreamMessage
    from faststream.exceptions import AckMessage, HandlerException, NackMessage, RejectMessage
    from faststream.nats import JStream, NatsBroker
except ImportError as err:  # pragma: no cover - the packaging test runs without it
    raise ImportError(
        'edalab.faststream needs FastStream with NATS: pip install "edalab[faststream]"'
    ) from err
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

# edalab's own names are reached through their modules: this module's namespace holds
# only what it defines (its __all__), the rest is imported from `edalab`.
from . import (
    _deadletters,
    _errors,
    _events,
    _idempotency,
    _nats,
    _publishing,
    _reasons,
    _tracing,
    _versioning,
)

__all__ = [
    "EventDecoder",
    "EventPublishing",
    "Failures",
    "IdempotencyGuard",
    "ReplayRoute",
    "event_headers",
    "event_id_of",
    "reason_of",
]

_CallNext = Callable[[StreamMessage[Any]], Awaitable[Any]]


def event_headers(
    event: _events.Event, cause: _events.Event | None = None, **incoming: str
) -> dict[str, str]:
    """The headers an event goes out with: its id as ``Nats-Msg-Id``, and its flow.

    ``cause`` (the event being handled, if any) gives the causation id and, with the
    ``incoming`` headers it came with, the correlation id and the next ``traceparent``
    span (notebook ``16_patterns``). With no cause, the event starts a flow.

        >>> from edalab import Event
        >>> e = Event.create("shop.order.placed", id="o-1")
        >>> h = event_headers(e)
        >>> h["Nats-Msg-Id"], h["Correlation-Id"], "Causation-Id" in h
        ('o-1', 'o-1', False)
        >>> p = Event.create("shop.payment.captured", id="p-1")
        >>> event_headers(p, e, **h)["Causation-Id"], event_headers(p, e, **h)["Correlation-Id"]
        ('o-1', 'o-1')
    """
    headers = {_publishing.MSG_ID: event.id}
    parent = (
        _tracing.TraceContext.from_headers(incoming) if _tracing.TRACEPARENT in incoming else None
    )
    trace = parent.child(event.type) if parent else _tracing.TraceContext.new()
    headers[_tracing.TRACEPARENT] = trace.traceparent
    if cause is None:
        headers[_tracing.CORRELATION_ID] = incoming.get(_tracing.CORRELATION_ID, event.id)
    else:
        headers[_tracing.CORRELATION_ID] = incoming.get(_tracing.CORRELATION_ID, cause.id)
        headers[_tracing.CAUSATION_ID] = cause.id
    return headers


def event_id_of(message: StreamMessage[Any], decoded: Any = None) -> str | None:
    """The event id of a FastStream message: the decoded event's, else its ``Nats-Msg-Id``."""
    if isinstance(decoded, _events.Event):
        return decoded.id
    value = message.headers.get(_publishing.MSG_ID)
    return str(value) if value else None


# -- publishing ---------------------------------------------------------------------------


class _Publishing(BaseMiddleware):
    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        body = cmd.body
        if isinstance(body, _events.Event):
            cause, incoming = None, {}
            handled = self.context.get_local("message")
            if isinstance(handled, StreamMessage):
                incoming = {str(k): str(v) for k, v in handled.headers.items()}
                decoded = await handled.decode()
                cause = decoded if isinstance(decoded, _events.Event) else None
            # The caller's own headers win over the derived ones (but not the id).
            cmd.headers = {
                **event_headers(body, cause, **incoming),
                **(cmd.headers or {}),
                _publishing.MSG_ID: body.id,
            }
            cmd.body = body.to_json()
        return await call_next(cmd)


class EventPublishing:
    """Broker middleware: an :class:`~edalab.Event` body goes out deduplicable and traced.

    Whatever publishes an ``Event`` through the broker (``broker.publish(event, ...)``,
    a ``@broker.publisher`` returning one, ``publisher.publish(event)``) sends edalab's
    JSON (:meth:`~edalab.Event.to_json`) with ``Nats-Msg-Id`` = the event id, so a retried
    publish (a lost PubAck, a redelivered cause) is stored once within the stream's
    duplicate window, and :func:`event_headers`: correlation, causation (the event being
    handled) and a ``traceparent`` span. Pass ``stream=`` to get the PubAck (and its
    ``duplicate``). Other bodies pass through untouched.

        >>> from faststream.nats import NatsBroker
        >>> broker = NatsBroker("nats://127.0.0.1:4222", middlewares=[EventPublishing()])
    """

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        """FastStream calls this once per message or publish (``BrokerMiddleware``)."""
        return _Publishing(msg, context=context)


# -- decoding -----------------------------------------------------------------------------


class EventDecoder:
    """Custom decoder: the message body as an :class:`~edalab.Event`, upcast to the newest version.

    With a ``registry``, an event whose type it knows is upcast
    (:meth:`~edalab.SchemaRegistry.upcast`: a version-1 order arrives as version 2,
    its data validated by the newest model);
    ``as_model=True`` hands the handler the newest model instance instead of the event.
    An undecodable body or an unknown version raises edalab's error, which
    :class:`Failures` terminates with the reason.

        >>> from edalab import SchemaRegistry
        >>> decoder = EventDecoder(SchemaRegistry())
    """

    def __init__(
        self, registry: _versioning.SchemaRegistry | None = None, *, as_model: bool = False
    ) -> None:
        if as_model and registry is None:
            raise ValueError("as_model=True needs a registry (the models live there)")
        self.registry = registry
        self.as_model = as_model

    def event(self, message: StreamMessage[Any]) -> _events.Event:
        """Decode (and upcast) one message's body; edalab's errors name subject and sequence."""
        raw = message.raw_message
        subject = raw.subject if isinstance(raw, Msg) else None
        sequence = _events.stream_sequence(raw) if isinstance(raw, Msg) else None
        event = _events.Event.from_json(bytes(message.body), subject=subject, sequence=sequence)
        if self.registry is not None and self.registry.versions(event.type):
            event = self.registry.upcast(event, subject=subject)
        return event

    async def __call__(self, message: StreamMessage[Any]) -> _events.Event | BaseModel:
        """FastStream calls this as the subscriber's ``decoder``."""
        event = self.event(message)
        if self.as_model:
            assert self.registry is not None
            return self.registry.parse(event)
        return event


# -- failures -----------------------------------------------------------------------------


def reason_of(err: BaseException) -> str | None:
    """The ``+TERM`` reason for a permanent failure (edalab's texts), ``None`` for the others.

    >>> from edalab import PermanentError, TransientError
    >>> reason_of(PermanentError("free order"))
    'handler: free order'
    >>> reason_of(TransientError("busy")) is None
    True
    """
    if isinstance(err, _errors.PermanentError):
        return _reasons.Reason.REJECTED.text(err.reason)
    if isinstance(err, _errors.EventDecodeError):
        return _reasons.Reason.UNDECODABLE.text(str(err))
    if isinstance(err, _errors.UnknownVersionError):
        return _reasons.Reason.UNKNOWN_VERSION.text(str(err))
    if isinstance(err, _errors.UpcastError | _errors.PayloadError):
        return _reasons.Reason.INVALID_EVENT.text(str(err))
    if isinstance(err, ValidationError):  # FastStream's validation of the handler's arguments
        return _reasons.Reason.INVALID_EVENT.text(_events.describe_validation_error(err))
    return None


class _Failures(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, config: Failures) -> None:
        super().__init__(msg, context=context)
        self.config = config

    async def consume_scope(self, call_next: _CallNext, msg: StreamMessage[Any]) -> Any:
        try:
            return await call_next(msg)
        except _errors.TransientError as err:
            raise NackMessage(delay=self.config.delay if err.delay is None else err.delay) from err
        except HandlerException:  # NackMessage, RejectMessage, AckMessage...: as they say
            raise
        except Exception as err:
            reason = reason_of(err)
            if reason is None and not self.config.permanent(err):
                # A bug or an unexpected error: retried, until max_deliver gives up on it
                # (the server's MAX_DELIVERIES advisory: a dead letter).
                raise NackMessage(delay=self.config.delay) from err
            raw = msg.raw_message
            if isinstance(raw, Msg) and raw.reply:
                await _nats.term_delivered(raw, reason or _reasons.Reason.REJECTED.text(repr(err)))
                # Terminated, with the reason. FastStream's reject would send a second
                # +TERM (and the server a second advisory, without the reason): its ack
                # sends an +ACK instead, which the server ignores for a message no longer
                # pending.
                raise AckMessage() from err
            raise RejectMessage() from err


class Failures:
    """Broker middleware: transient failures nak'd with a delay, permanent ones terminated with why.

    - :class:`~edalab.TransientError` (``delay`` seconds, else ``delay`` here): nak with
      that delay, redelivered until the consumer's ``max_deliver``; then the server
      gives up and says so (``MAX_DELIVERIES`` advisory);
    - :class:`~edalab.PermanentError`, an undecodable body, an unknown version, an
      upcast or payload error: ``+TERM`` with edalab's reason (:class:`~edalab.Reason`),
      once; the ``MSG_TERMINATED`` advisory carries it;
    - anything else (a bug): nak with ``delay`` too, unless ``permanent`` says otherwise.

    Capture both advisories with :meth:`~edalab.DeadLetters.setup` and they are dead
    letters, listed by category and replayable to this consumer only (:class:`ReplayRoute`).
    Set the subscriber's ``ack_policy=AckPolicy.NACK_ON_ERROR`` so that an error after
    the handler (publishing its result) is retried too.

        >>> failures = Failures(delay=0.5)
    """

    def __init__(
        self,
        *,
        delay: float = 1.0,
        permanent: Callable[[BaseException], bool] = lambda err: False,
    ) -> None:
        self.delay = delay
        self.permanent = permanent

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        """FastStream calls this once per message (``BrokerMiddleware``)."""
        return _Failures(msg, context=context, config=self)


# -- idempotency ---------------------------------------------------------------------------


def _encoded(result: Any) -> bytes:
    if isinstance(result, _events.Event):
        return result.to_json()
    if isinstance(result, BaseModel):
        return result.model_dump_json().encode()
    if isinstance(result, bytes):
        return result
    if isinstance(result, str):
        return result.encode()
    return _NONE if result is None else str(result).encode()


#: What the guard records for a handler that returned ``None`` (its effect happened; no result).
_NONE = b"null"


class _Guard(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, config: IdempotencyGuard) -> None:
        super().__init__(msg, context=context)
        self.config = config

    async def consume_scope(self, call_next: _CallNext, msg: StreamMessage[Any]) -> Any:
        event_id = event_id_of(msg, await msg.decode())
        if event_id is None:
            raise _errors.PermanentError("no event id (neither an edalab Event nor a Nats-Msg-Id)")
        ids = await self.config.ids()
        done = await ids.value(event_id)
        if done is None:
            result = await call_next(msg)
            if await ids.record(event_id, _encoded(result)):
                self.config.applied += 1
                return result
            done = await ids.value(event_id)  # another worker recorded it first: use theirs
        self.config.repeats += 1
        # The recorded result goes out again: an Event keeps its id, so the stream drops
        # the copy if the first publish got through, and stores it if it did not.
        return self.config.result_of(done or b"")


class IdempotencyGuard:
    """Broker middleware: each event's effect happens once, as one atomic write.

    The handler's *result* is its effect: the guard records it under the event id with
    :meth:`~edalab.ProcessedIds.record` (key-value ``create``: the server refuses a
    second one), so exactly one result per event is ever recorded, across redeliveries,
    restarts and workers (while the key lives: a bucket ``ttl`` forgets it). A delivery
    whose event has a recorded result skips the handler and returns that result again
    (an ``Event`` result is re-published with its own id: the stream drops the copy
    within its duplicate window; ``None`` stays ``None``; anything else comes back as
    the recorded bytes). ``applied`` and ``repeats`` count both.

    Only the result is atomic with the mark. The handler itself runs before the record:
    a crash between the two, or two workers holding the same message at once (its
    ``ack_wait`` expired), runs it again, and only one of the results is recorded (the
    other worker returns that one). So keep the handler's other side effects out, or
    give them the event id as their idempotency key (at least once, notebook
    ``10_idempotency``). A repeat returns the recorded *bytes* (an ``Event`` and ``None``
    excepted): a ``str`` or model result comes back as its encoding.

    List the guard *after* :class:`Failures` (inner): what the guard raises (an
    undecodable body, a message with no event id, a key-value error) then reaches
    ``Failures``, and an undecodable message is terminated at once; listed before it,
    those errors go to FastStream's ``ack_policy`` (``NACK_ON_ERROR``: retried until
    ``max_deliver``; its default ``REJECT_ON_ERROR``: terminated with no reason).

    ``bucket`` is a :class:`~edalab.ProcessedIds`, or a bucket name opened on first use
    through ``broker``'s connection (created if missing).

        >>> from faststream.nats import NatsBroker
        >>> broker = NatsBroker("nats://127.0.0.1:4222")
        >>> guard = IdempotencyGuard("charges", broker)
    """

    def __init__(
        self,
        bucket: _idempotency.ProcessedIds | str,
        broker: NatsBroker | None = None,
        *,
        result: Callable[[bytes], Any] | None = None,
    ) -> None:
        if not isinstance(bucket, _idempotency.ProcessedIds | str):
            # Caught here, not per message: a guard that cannot record would fail every
            # delivery, and Failures would retry each one until max_deliver.
            raise TypeError(
                f"IdempotencyGuard records in a ProcessedIds (or a bucket name with the "
                f"broker), not a {type(bucket).__name__}: pass ProcessedIds(kv) or "
                f"await ProcessedIds.open(js, name)"
            )
        if isinstance(bucket, str) and broker is None:
            raise ValueError("a bucket name needs the broker whose connection opens it")
        self._ids = bucket if isinstance(bucket, _idempotency.ProcessedIds) else None
        self.bucket = bucket if isinstance(bucket, str) else None
        self.broker = broker
        self.result_of = result or _recorded
        self.applied = 0
        self.repeats = 0

    async def ids(self) -> _idempotency.ProcessedIds:
        """The :class:`~edalab.ProcessedIds` the guard records in (opened on first use)."""
        if self._ids is None:
            assert self.broker is not None and self.bucket is not None
            self._ids = await _idempotency.ProcessedIds.open(
                _nats.jetstream(self.broker.connection), self.bucket
            )
        return self._ids

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        """FastStream calls this once per message (``BrokerMiddleware``)."""
        return _Guard(msg, context=context, config=self)


def _recorded(value: bytes) -> Any:
    """A recorded result again: an Event if it was one, ``None`` if none, else the bytes."""
    if value == _NONE:
        return None
    try:
        return _events.Event.from_json(value)
    except _errors.EdalabError:
        return value


# -- dead-letter replays --------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayRoute:
    """Where :meth:`~edalab.DeadLetters.replay` sends ``consumer``'s letters: subscriber arguments.

    Stack a second ``@broker.subscriber(route.subject, stream=route.jstream,
    durable=route.durable)`` on the same handler and the replays of this consumer's dead
    letters reach it, and no other service.

        >>> route = ReplayRoute("SHOP", "shop-payments")
        >>> route.subject, route.durable
        ('deadletters.replay.SHOP.shop-payments', 'replay-SHOP-shop-payments')
    """

    stream: str
    consumer: str
    dead_letters: str = "DEAD_LETTERS"
    prefix: str = _deadletters.REPLAY_PREFIX

    @property
    def subject(self) -> str:
        """The replay subject, in the dead-letter stream."""
        return f"{self.prefix}.{self.stream}.{self.consumer}"

    @property
    def durable(self) -> str:
        """The durable that reads the replays (the one :meth:`~edalab.DeadLetters.replays` uses)."""
        return f"replay-{self.stream}-{self.consumer}"

    @property
    def jstream(self) -> JStream:
        """The dead-letter stream, left undeclared (:class:`~edalab.DeadLetters` owns it)."""
        return JStream(self.dead_letters, declare=False)
