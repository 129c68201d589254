"""The checker of exercise 16 (notebook 16_patterns).

The task: billing.charged exactly once per order, traced.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from edalab import (
    CAUSATION_ID,
    CORRELATION_ID,
    EdalabError,
    Event,
    TraceContext,
    derived_id,
    stream_messages,
)

from ._core import _NotYet, _require, _stream


async def checker(js: JetStreamContext) -> str:

    await _stream(js, "ORDERS")
    placed_id = "order-ex16"
    cause = derived_id(placed_id, "stock.reserved")
    want_id = derived_id(cause, "billing.charged")
    trace_ids, charged = set(), []
    async for seq, raw in stream_messages(js, "ORDERS"):
        try:
            event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
            if event.id == placed_id:
                trace = TraceContext.from_headers(raw.headers)
                trace_ids.add(trace.trace_id if trace else "")
        except EdalabError as err:
            raise _NotYet(f"ORDERS message {seq}: {err}") from None
        if event.type == "billing.charged" and (event.data or {}).get("order_id") == "ex16":
            charged.append((event, raw.headers or {}))
    _require(bool(trace_ids), "no order.placed for ex16 in ORDERS: run the exercise's first cell")
    _require(
        bool(charged),
        "ORDERS holds no billing.charged for order ex16; expected one: call "
        "on_reserved(reserved_id), twice",
    )
    _require(
        len(charged) == 1,
        f"ORDERS holds {len(charged)} billing.charged events for ex16 (ids "
        f"{sorted(e.id for e, _ in charged)}); expected one: a redelivery made a new event; "
        "derive its id from the cause with derived_id(cause_id, 'billing.charged')",
    )
    event, headers = charged[0]
    _require(
        event.id == want_id,
        f"billing.charged has id {event.id!r}; expected {want_id!r}, derived from the cause "
        "with derived_id(cause_id, 'billing.charged'), which any redelivery derives again",
    )
    _require(
        headers.get(CAUSATION_ID) == cause,
        f"Causation-Id is {headers.get(CAUSATION_ID)!r}; expected {cause!r}, the id of the "
        "stock.reserved event that caused the charge (flow_headers(..., causation_id=...))",
    )
    _require(
        headers.get(CORRELATION_ID) == placed_id,
        f"Correlation-Id is {headers.get(CORRELATION_ID)!r}; expected {placed_id!r}, the id "
        "of the flow's first event, order.placed (flow_headers(..., correlation_id=...))",
    )
    try:
        trace = TraceContext.from_headers(headers)
    except EdalabError as err:
        raise _NotYet(str(err)) from None
    _require(
        trace is not None and trace.trace_id in trace_ids,
        f"billing.charged's traceparent is {headers.get('traceparent')!r}; expected one in "
        f"the order's trace, {sorted(trace_ids)[0]!r}: use order_trace.child(...)",
    )
    return "one billing.charged for ex16 despite the redelivery, caused, correlated and traced"
