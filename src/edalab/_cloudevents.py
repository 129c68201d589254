"""The event envelope as a CloudEvents 1.0 event (notebook 16).

CloudEvents (https://cloudevents.io, spec 1.0.2) standardises the envelope every
event system reinvents. :class:`~edalab.Event` maps onto it one to one:

=============  ===========================  =====================================
Event          CloudEvents attribute        note
=============  ===========================  =====================================
``id``         ``id``                       required
``type``       ``type``                     required
``source``     ``source``                   required by CloudEvents: set it
``timestamp``  ``time``                     RFC 3339
``version``    ``dataversion`` (extension)  lower-case alphanumeric, as the spec asks
``data``       ``data``                     ``datacontenttype: application/json``
=============  ===========================  =====================================

*Structured* mode puts the whole event, attributes and data, in the message body as
the JSON event format, and says so with the header ``Content-Type:
application/cloudevents+json``. *Binary* mode puts each attribute in a header named
``ce-<attribute>`` (``datacontenttype`` included, as ``ce-datacontenttype``) and the
data alone in the body. The released NATS binding (CloudEvents 1.0.2) defines
structured mode only; its text predates NATS 2.2 headers. Here both modes follow the
binding's working draft (1.0.3-wip), as the Go SDK's JetStream binding does:

- a receiver on NATS 2.2 or later reads a message as *structured* only when its
  ``Content-Type`` header starts with ``application/cloudevents`` (case-insensitive),
  and as *binary* otherwise, so :func:`to_structured` returns that header with the
  body and :func:`from_message` decides by it;
- ``ce-`` header names are case-insensitive; values are percent-encoded where they are
  not plain printable ASCII (space, ``"`` and ``%`` included), and a receiver first
  unquotes a double-quoted value (older drafts allowed them; receivers MUST accept
  them), then percent-decodes it once, rejecting bytes that are not UTF-8.

    >>> from datetime import datetime, timezone
    >>> from edalab import Event
    >>> event = Event(id="e1", type="order.placed", data={"order_id": "o1"},
    ...               timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc), source="/shop/orders")
    >>> headers, body = to_structured(event)
    >>> headers
    {'Content-Type': 'application/cloudevents+json'}
    >>> from_structured(body) == event and from_message(headers, body) == event
    True
    >>> headers, body = to_binary(event)
    >>> headers["ce-type"], headers["ce-datacontenttype"], body
    ('order.placed', 'application/json', b'{"order_id":"o1"}')
    >>> from_binary(headers, body) == event and from_message(headers, body) == event
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from ._errors import EventDecodeError, EventError
from ._events import Event

__all__ = [
    "BINARY_PREFIX",
    "STRUCTURED_CONTENT_TYPE",
    "from_binary",
    "from_message",
    "from_structured",
    "is_structured",
    "to_binary",
    "to_cloudevent",
    "to_structured",
]

SPEC_VERSION = "1.0"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
CONTENT_TYPE = "Content-Type"
DATA_CONTENT_TYPE = "application/json"
BINARY_PREFIX = "ce-"
VERSION_EXTENSION = "dataversion"


def to_cloudevent(event: Event) -> dict[str, Any]:
    """The event's CloudEvents attributes and data, as a JSON-ready dict."""
    if not event.source:
        raise EventError(
            f"event {event.id!r}: CloudEvents requires a 'source' (a URI-reference such as "
            "'/shop/orders'); set Event.source"
        )
    body = json.loads(event.to_json())
    return {
        "specversion": SPEC_VERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": body["timestamp"],
        "datacontenttype": DATA_CONTENT_TYPE,
        VERSION_EXTENSION: event.version,
        "data": body["data"],
    }


def _event(attributes: Mapping[str, Any], data: Any, where: str) -> Event:
    if attributes.get("specversion") != SPEC_VERSION:
        raise EventDecodeError(
            f"{where}: specversion is {attributes.get('specversion')!r}, not {SPEC_VERSION!r}"
        )
    missing = [a for a in ("id", "source", "type") if not attributes.get(a)]
    if missing:
        raise EventDecodeError(f"{where}: missing CloudEvents attribute(s) {', '.join(missing)}")
    if not attributes.get("time"):  # optional in CloudEvents; the course's envelope needs it
        raise EventDecodeError(f"{where}: no 'time' attribute, which an edalab Event requires")
    fields = {
        "id": attributes["id"],
        "type": attributes["type"],
        "source": attributes["source"],
        "timestamp": attributes["time"],
        "version": int(attributes.get(VERSION_EXTENSION, 1)),
        "data": data,
    }
    return Event.from_json(json.dumps(fields).encode(), subject=where)


def to_structured(event: Event) -> tuple[dict[str, str], bytes]:
    """The ``Content-Type`` header that marks structured mode, and the event as its body.

    The body is CloudEvents' JSON event format. Publish the header with it: without
    it, a receiver that follows the NATS binding reads the message as binary mode.
    """
    body = json.dumps(to_cloudevent(event), separators=(",", ":")).encode()
    return {CONTENT_TYPE: STRUCTURED_CONTENT_TYPE}, body


def from_structured(body: bytes) -> Event:
    """Read a structured CloudEvent; :class:`~edalab.EventDecodeError` says what's wrong."""
    try:
        attributes = json.loads(body)
    except ValueError as err:
        raise EventDecodeError(f"structured CloudEvent: not JSON ({err})") from None
    if not isinstance(attributes, dict):
        raise EventDecodeError("structured CloudEvent: not a JSON object")
    return _event(attributes, attributes.get("data"), "structured CloudEvent")


# Kept as they are in a header value: printable ASCII but space, '"' and '%' (the draft's rule).
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def to_binary(event: Event) -> tuple[dict[str, str], bytes]:
    """``ce-*`` headers (percent-encoded values) and a body holding only the data."""
    attributes = to_cloudevent(event)
    data = attributes.pop("data")
    headers = {
        f"{BINARY_PREFIX}{name}": quote(str(v), safe=_SAFE) for name, v in attributes.items()
    }
    return headers, json.dumps(data, separators=(",", ":")).encode()


_QUOTED_PAIR = re.compile(r"\\(.)")


def _header_value(name: str, value: str) -> str:
    """Unquote a double-quoted value (RFC 7230, 3.2.6), then percent-decode it once."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise EventDecodeError(
            f"binary CloudEvent: header {name} percent-decodes to bytes that are not UTF-8"
        ) from None


def from_binary(headers: Mapping[str, str] | None, body: bytes) -> Event:
    """Read a binary-mode CloudEvent from a message's headers and body."""
    attributes = {
        name.lower()[len(BINARY_PREFIX) :]: _header_value(name, value)
        for name, value in (headers or {}).items()
        if name.lower().startswith(BINARY_PREFIX)
    }
    kind = attributes.get("datacontenttype") or DATA_CONTENT_TYPE
    if not kind.startswith("application/json"):
        raise EventDecodeError(
            f"binary CloudEvent {attributes.get('id')!r}: data is {kind}, not JSON"
        )
    try:
        data = json.loads(body) if body else None
    except ValueError as err:
        raise EventDecodeError(
            f"binary CloudEvent {attributes.get('id')!r}: data is not JSON ({err})"
        ) from None
    return _event(attributes, data, "binary CloudEvent")


def is_structured(headers: Mapping[str, str] | None) -> bool:
    """Whether a message is in structured mode: its ``Content-Type`` says CloudEvents."""
    kinds = [v for k, v in (headers or {}).items() if k.lower() == CONTENT_TYPE.lower()]
    return any(v.strip().lower().startswith("application/cloudevents") for v in kinds)


def from_message(headers: Mapping[str, str] | None, body: bytes) -> Event:
    """Read a CloudEvent in whichever mode it came, as the NATS binding's draft decides it.

    ``Content-Type: application/cloudevents...`` means structured, anything else binary:

        >>> from_message({}, b'{"specversion": "1.0"}')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        edalab.EventDecodeError: ...binary CloudEvent: specversion is None, not '1.0'
    """
    return from_structured(body) if is_structured(headers) else from_binary(headers, body)
