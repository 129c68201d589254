"""The event envelope: what every message in the course carries.

The seed tutorial's Go struct had four fields, ``id``, ``type``, ``data`` and
``timestamp``; :class:`Event` keeps their JSON names so Go services interoperate,
and adds ``version`` (notebook ``08_versioning``) and an optional ``source``.
Notebook ``01_event_structure`` explains every field.

    >>> from datetime import datetime, timezone
    >>> event = Event(id="123", type="user.created", data={"user_id": "user123"},
    ...               timestamp=datetime(2024, 5, 1, tzinfo=timezone.utc))
    >>> event.to_json()
    b'{"id":"123","type":"user.created","data":{"user_id":"user123"},"timestamp":"2024-05-01T00:00:00Z","version":1}'
    >>> Event.from_json(event.to_json()) == event
    True
"""

from __future__ import annotations

import builtins
import functools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, overload

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)

from ._errors import EventDecodeError, PayloadError
from ._nats import is_jetstream_delivery
from ._subjects import validate_subject

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["Event", "describe_validation_error", "stream_sequence", "utc_now"]

M = TypeVar("M", bound=BaseModel)


@functools.lru_cache(maxsize=4096)
def _subject_type(event_type: str) -> str:
    """``event_type`` if it can be a subject (a service has few types: checked once each)."""
    return validate_subject(event_type)


def _check_type(value: str, info: ValidationInfo) -> str:
    # Built in Python, an event's type must be a subject it can be published to; decoded
    # from JSON (what another producer stored), it is read as it is.
    if info.mode == "python":
        _subject_type(value)
    return value


def _json_ready(value: Any, info: ValidationInfo) -> Any:
    # A model payload is kept as its JSON-ready dict: the event is then exactly what
    # travels on the wire, and decoding gives back an equal event. (Decoded JSON holds no
    # model, and isinstance against BaseModel, an ABC, is slow: the hot path skips it.)
    if info.mode == "python" and isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def utc_now() -> datetime:
    """The current time as an aware UTC datetime.

    >>> utc_now().tzinfo
    datetime.timezone.utc
    """
    return datetime.now(UTC)


def describe_validation_error(err: ValidationError) -> str:
    """Turn a pydantic error into one line naming each bad field.

    >>> try:
    ...     Event.model_validate({"type": "x"})
    ... except ValidationError as err:
    ...     print(describe_validation_error(err))
    field 'id': Field required; field 'timestamp': Field required
    """
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "json_invalid":
            parts.append(f"not valid JSON ({e['ctx'].get('error', e['msg'])})")
        elif not loc:
            parts.append(e["msg"])
        else:
            parts.append(f"field {loc!r}: {e['msg']}")
    return "; ".join(parts)


class Event(BaseModel):
    """An event: what happened (``type``), when, its payload and how to identify it.

    ``data`` is whatever the producer put there: a dict or a pydantic model for
    Python producers (a model is kept as its JSON-ready dict), a JSON *string* for
    the seed's Go struct (``Data string``). :meth:`payload` reads either form.

    ``type`` is the subject the event is published to unless another is given, so
    :meth:`create` refuses a type that cannot be one (a wildcard, whitespace, an empty
    token) with the :class:`~edalab.SubjectError` a publish would raise, and
    ``Event(...)`` with pydantic's ``ValidationError`` naming field ``type`` and the same
    reason. Decoding (:meth:`from_json`) does not: what another producer stored must stay
    readable. (The checks are validators that run on Python input only, so decoding, the
    hot path, is pydantic's JSON validation and nothing more.)

        >>> Event.create("user.created", {"username": "ann"}).version
        1
        >>> Event.create("user created")
        Traceback (most recent call last):
        ...
        edalab.SubjectError: invalid subject 'user created': contains whitespace
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, description="Unique id; also the Nats-Msg-Id used for dedup.")
    type: Annotated[str, AfterValidator(_check_type)] = Field(
        min_length=1, description="What happened, e.g. 'user.created'."
    )
    data: Annotated[Any, BeforeValidator(_json_ready)] = Field(
        default=None, description="The payload."
    )
    timestamp: AwareDatetime = Field(description="When it happened (with a zone offset).")
    version: int = Field(default=1, ge=1, description="Schema version of the payload.")
    source: str | None = Field(default=None, description="Which service produced it.")

    @classmethod
    def create(
        cls,
        type: str,
        data: Any = None,
        *,
        id: str | None = None,
        version: int = 1,
        source: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> Event:
        """Make a new event with a fresh UUID and the current UTC time.

        >>> Event.create("order.placed", {"order_id": 7}, id="evt-1").id
        'evt-1'
        """
        _subject_type(type)  # the SubjectError itself, not pydantic's wrapping of it
        return cls(
            id=id if id is not None else str(uuid.uuid4()),
            type=type,
            data=data,
            timestamp=clock(),
            version=version,
            source=source,
        )

    def to_dict(self, *, data_as_string: bool = False) -> dict[str, Any]:
        """The JSON-ready dict; ``data_as_string`` encodes ``data`` as a JSON string (Go style).

        >>> Event.create("a.b", {"x": 1}, id="1").to_dict(data_as_string=True)["data"]
        '{"x":1}'
        """
        out = self.model_dump(mode="json", exclude_none=True)
        if self.data is None:
            out["data"] = None
        if data_as_string and not isinstance(self.data, str):
            out["data"] = json.dumps(out["data"], separators=(",", ":"), ensure_ascii=False)
        return out

    def to_json(self, *, data_as_string: bool = False) -> bytes:
        """Encode for the wire (UTF-8 JSON bytes).

        With ``data_as_string=True`` the result decodes into the seed's Go struct,
        whose ``Data`` field is a ``string``.

            >>> Event.create("a.b", "hi", id="1").to_json()[:30]
            b'{"id":"1","type":"a.b","data":'
        """
        if not data_as_string:
            # The serializer writes bytes directly (model_dump_json makes a str first).
            return self.__pydantic_serializer__.to_json(self, exclude_none=True)
        return json.dumps(
            self.to_dict(data_as_string=True), separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_json(
        cls,
        raw: bytes | str,
        *,
        subject: str | None = None,
        sequence: int | None = None,
    ) -> Event:
        """Decode wire bytes, or raise :class:`~edalab.EventDecodeError`.

        The error names the subject and stream sequence (when given), what was
        wrong, and keeps the raw bytes.

            >>> Event.from_json('{"id":"1","type":"a.b","timestamp":"2024-01-01T00:00:00Z"}').id
            '1'
        """
        try:
            return cls.__pydantic_validator__.validate_json(raw)  # type: ignore[no-any-return]
        except ValidationError as err:
            data = raw.encode() if isinstance(raw, str) else bytes(raw)
            raise EventDecodeError(
                describe_validation_error(err), subject=subject, sequence=sequence, raw=data
            ) from None

    @classmethod
    def from_msg(cls, msg: Msg) -> Event:
        """Decode a NATS message, naming its subject and stream sequence in any error."""
        try:
            # The model's validator itself: model_validate_json adds 0.5 µs of Python per call.
            return cls.__pydantic_validator__.validate_json(msg.data)  # type: ignore[no-any-return]
        except ValidationError as err:
            raise EventDecodeError(
                describe_validation_error(err),
                subject=msg.subject,
                sequence=stream_sequence(msg),
                raw=bytes(msg.data),
            ) from None

    @overload
    def payload(self, model: None = None) -> Any: ...

    @overload
    def payload(self, model: builtins.type[M]) -> M: ...

    def payload(self, model: builtins.type[M] | None = None) -> Any:
        """The payload, parsed: a JSON string (Go style) is decoded; a model validates it.

        >>> Event.create("a.b", '{"x": 1}', id="1").payload()
        {'x': 1}
        """
        value = self.data
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise PayloadError(
                    f"data is a string but not JSON ({err})",
                    event_id=self.id,
                    model=model.__name__ if model else "JSON",
                ) from None
        if model is None:
            return value
        if isinstance(value, model):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        try:
            return model.model_validate(value)
        except ValidationError as err:
            raise PayloadError(
                describe_validation_error(err), event_id=self.id, model=model.__name__
            ) from None


def stream_sequence(msg: Msg) -> int | None:
    """The stream sequence of a JetStream message, or ``None`` for a core NATS one."""
    if not is_jetstream_delivery(msg):
        return None
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:  # a malformed ack subject: the sequence is simply unknown
        return None
