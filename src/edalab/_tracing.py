"""Ids and headers that let you follow one business flow across services (notebook 16).

- **Deterministic ids** for derived events: ``derived_id(cause, "payment.captured")``
  is the same on every run, so a redelivered cause yields the *same* derived event id
  and ``Nats-Msg-Id`` dedup drops the second publish.
- **Correlation and causation**: every event of one flow carries the flow's
  correlation id (the first event's id) and the id of the event that caused it.
- **W3C trace context**: a ``traceparent`` header (``00-<trace-id>-<span-id>-<flags>``)
  keeps one trace id from the first publish to the last handler; each hop is a new span.
  Trace and span ids are **random**, unlike event ids: the W3C spec asks for random
  trace ids (not computable from business data such as an order id), and a handler
  that runs twice for one redelivered message made two spans, so it gets two span ids.
  Read a flow's trace from the headers its messages carry, never recompute it.

    >>> cause = "order-7"
    >>> derived_id(cause, "payment.captured") == derived_id(cause, "payment.captured")
    True
    >>> root = TraceContext.new()
    >>> child = root.child("payments")
    >>> child.trace_id == root.trace_id and child.parent_id != root.parent_id
    True
    >>> root.child("payments") != child  # the same hop run again: another span
    True
    >>> TraceContext.parse(child.traceparent) == child
    True
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import EventError

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "TRACEPARENT",
    "TraceContext",
    "derived_id",
    "flow_headers",
]

#: W3C Trace Context header (https://www.w3.org/TR/trace-context/).
TRACEPARENT = "traceparent"
#: The id of the flow's first event, on every event of the flow.
CORRELATION_ID = "Correlation-Id"
#: The id of the event that caused this one.
CAUSATION_ID = "Causation-Id"

_NAMESPACE = uuid.UUID("6f1c1c6e-4a5b-4f1e-9a7d-3c1e0e2b7a10")  # edalab's, fixed forever
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def derived_id(cause_id: str, kind: str) -> str:
    """The id of the event of ``kind`` derived from the event ``cause_id`` (a UUIDv5).

    Same inputs, same id: whatever redelivers the cause, the derived event is one.

        >>> derived_id("order-7", "payment.captured")
        'c6a7cd5d-b3e5-548f-98ad-b16fb336033d'
    """
    return str(uuid.uuid5(_NAMESPACE, f"{kind}\x00{cause_id}"))


def _random_hex(length: int) -> str:
    """``length`` random hex digits, not all zero (the W3C spec forbids an all-zero id).

    ``os.urandom`` is what ``secrets`` reads; one call and a bytes test (not a set of
    the hex digits) keeps it near a microsecond: every published event makes one.
    """
    while not any(raw := os.urandom(length // 2)):
        pass  # one chance in 2**64 or less
    return raw.hex()


def _random_ids() -> tuple[str, str]:
    """A trace id (32 hex digits) and a span id (16), from one read of the OS's randomness."""
    while True:
        raw = os.urandom(24)
        if any(raw[:16]) and any(raw[16:]):
            return raw[:16].hex(), raw[16:].hex()


@dataclass(frozen=True)
class TraceContext:
    """One span of a W3C trace: the trace id, this span's id, the sampled flag."""

    trace_id: str
    parent_id: str
    flags: str = "01"

    @classmethod
    def new(cls) -> TraceContext:
        """A new trace: a random trace id and a random span id."""
        return cls(*_random_ids())

    def child(self, name: str) -> TraceContext:
        """The next hop's span: same trace id, a new random span id.

        ``name`` (the hop, e.g. ``"billing"``) documents the call; it does not feed the
        id, so a redelivered message handled again gets a span of its own.
        """
        del name
        return TraceContext(self.trace_id, _random_hex(16), self.flags)

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` header value."""
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"

    @classmethod
    def parse(cls, value: str) -> TraceContext:
        """Read a ``traceparent`` header; an :class:`~edalab.EventError` names it if bad."""
        match = _TRACEPARENT.match(value.strip())
        if not match or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
            raise EventError(f"not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>): {value!r}")
        return cls(match[1], match[2], match[3])

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> TraceContext | None:
        """The trace context a message carries, if any."""
        value = (headers or {}).get(TRACEPARENT)
        return cls.parse(value) if value else None


def flow_headers(
    trace: TraceContext, *, correlation_id: str, causation_id: str | None = None
) -> dict[str, str]:
    """The headers every event of a flow carries (pass them to ``publish_event``).

    >>> flow_headers(TraceContext.new(), correlation_id="o1")["Correlation-Id"]
    'o1'
    """
    headers = {TRACEPARENT: trace.traceparent, CORRELATION_ID: correlation_id}
    if causation_id is not None:
        headers[CAUSATION_ID] = causation_id
    return headers
