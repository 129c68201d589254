"""The patterns of notebook 16: outbox, derived ids and tracing, sagas, concurrency, CloudEvents."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import nats.js.errors
import pytest

from edalab import (
    ConcurrencyConflict,
    Event,
    EventDecodeError,
    EventError,
    Outbox,
    OutboxRelay,
    PublishError,
    TraceContext,
    aggregate_version,
    append,
    derived_id,
    flow_headers,
    from_binary,
    from_message,
    from_structured,
    publish_event,
    stream_messages,
    to_binary,
    to_structured,
)
from edalab.course import fresh_stream, saga
from edalab.course.exercises import check


def _event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "id": "e-1",
        "type": "order.placed",
        "data": {"order_id": "o1", "lines": [1, 2]},
        "source": "/shop/orders",
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "version": 3,
    }
    fields.update(changes)
    return Event(**fields)


def test_cloudevents_round_trip_structured_and_binary_without_loss() -> None:
    """Every field survives both modes, version and microseconds included."""
    event = _event()
    _, structured = to_structured(event)
    assert from_structured(structured) == event
    headers, body = to_binary(event)
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-datacontenttype"] == "application/json"
    assert json.loads(body) == event.data
    assert from_binary(headers, body) == event
    odd = _event(source="/shop/orders?x=a b%", id="é-1")  # percent-encoded in headers
    odd_headers, odd_body = to_binary(odd)
    assert odd_headers["ce-id"] == "%C3%A9-1" and " " not in odd_headers["ce-source"]
    assert from_binary({k.title(): v for k, v in odd_headers.items()}, odd_body) == odd


def test_structured_cloudevents_carry_their_content_type_and_are_read_by_mode() -> None:
    """Structured mode sends its Content-Type header; a receiver picks the mode by it."""
    event = _event()
    headers, body = to_structured(event)
    assert headers == {"Content-Type": "application/cloudevents+json"}
    assert from_message(headers, body) == event
    assert from_message({"content-type": "Application/CloudEvents+JSON"}, body) == event
    with pytest.raises(EventDecodeError, match="binary CloudEvent"):
        from_message({}, body)  # no header: a conforming receiver reads binary mode
    assert from_message(*to_binary(event)) == event


def test_binary_cloudevents_accept_double_quoted_header_values() -> None:
    """Quoted values of older drafts are unquoted (backslash escapes too); bad UTF-8 is refused."""
    event = _event(source='/shop/"orders" a', id="e-2")
    headers, body = to_binary(event)
    quoted = {**headers, "ce-source": '"/shop/\\"orders\\" a"', "ce-id": '"e-2"'}
    assert from_binary(quoted, body) == event
    with pytest.raises(EventDecodeError, match=r"ce-id.*UTF-8"):
        from_binary({**headers, "ce-id": "%C0%A0"}, body)  # overlong encoding of a space


def test_cloudevents_need_a_source_and_say_what_is_missing() -> None:
    """No source: a typed error naming the field; a broken CloudEvent names its missing part."""
    with pytest.raises(EventError, match="source"):
        to_structured(_event(source=None))
    with pytest.raises(EventDecodeError, match="specversion"):
        from_structured(b'{"specversion": "0.3", "id": "x"}')
    with pytest.raises(EventDecodeError, match="type"):
        from_binary({"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s", "ce-time": "t"}, b"")
    headers, _ = to_binary(_event())
    with pytest.raises(EventDecodeError, match="not JSON"):
        from_binary({**headers, "ce-datacontenttype": "text/plain"}, b"hello")


def test_derived_ids_and_traces_are_stable_and_distinct() -> None:
    """Same cause and kind, same id; another kind or cause, another id; a bad header is an error."""
    assert derived_id("o1", "a.b") == derived_id("o1", "a.b")
    assert len({derived_id("o1", "a.b"), derived_id("o2", "a.b"), derived_id("o1", "a.c")}) == 3
    root = TraceContext.new()
    assert TraceContext.new().trace_id != root.trace_id
    child = root.child("billing")
    assert child.trace_id == root.trace_id and child.parent_id != root.parent_id
    headers = flow_headers(child, correlation_id="o1", causation_id="c1")
    assert TraceContext.from_headers(headers) == child
    with pytest.raises(EventError, match="traceparent"):
        TraceContext.parse("00-" + "0" * 32 + "-" + "1" * 16 + "-01")


async def test_trace_and_span_ids_are_random_not_derived() -> None:
    """The same hop run twice gets two span ids; a trace id is W3C-shaped and never all zeros."""
    root = TraceContext.new()
    spans = {root.child("billing").parent_id for _ in range(50)}
    assert len(spans) == 50
    traces = {TraceContext.new().trace_id for _ in range(50)}
    assert len(traces) == 50
    assert all(len(t) == 32 and set(t) != {"0"} for t in traces)
    assert TraceContext.parse(root.traceparent) == root


async def test_outbox_relay_crash_between_publish_and_mark_stores_each_event_once(
    js, stream_name, token
) -> None:
    """Rows committed with the business write are published; a relay that died resends, deduped."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE orders (id TEXT)")
    outbox = Outbox(db)
    for i in range(5):
        with db:
            db.execute("INSERT INTO orders VALUES (?)", (f"o{i}",))
            outbox.add(Event.create(f"{token}.placed", {"i": i}, id=f"{token}-{i}"))

    def failing_transaction() -> None:
        with db:  # the business write fails: its outbox row goes too
            outbox.add(Event.create(f"{token}.placed", {"i": 99}, id=f"{token}-99"))
            db.execute("INSERT INTO missing_table VALUES (1)")

    with pytest.raises(sqlite3.OperationalError):
        failing_transaction()
    first = await OutboxRelay(outbox, js, batch=3).publish_pending()  # the relay dies here
    assert [a.duplicate for _, a in first] == [None, None, None]
    assert outbox.counts() == {"pending": 5, "sent": 0}
    assert await OutboxRelay(outbox, js, batch=3).drain() == 5
    assert outbox.counts() == {"pending": 0, "sent": 5}
    ids = [json.loads(raw.data)["id"] async for _, raw in stream_messages(js, stream_name)]
    assert ids == [f"{token}-{i}" for i in range(5)]


async def test_append_refuses_a_stale_writer_with_a_typed_conflict(js, stream_name, token) -> None:
    """Two writers at the same version: one appends, the other gets ConcurrencyConflict."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    agg = f"{token}.a1.>"
    assert await aggregate_version(js, stream_name, agg) == 0
    opened = await append(
        js, f"{token}.a1.opened", Event.create("a.opened", {}), expected=0, aggregate=agg
    )
    await append(
        js,
        f"{token}.a1.deposited",
        Event.create("a.deposited", {}),
        expected=opened.seq,
        aggregate=agg,
    )
    with pytest.raises(ConcurrencyConflict) as err:
        await append(
            js,
            f"{token}.a1.withdrawn",
            Event.create("a.withdrawn", {}, id="w1"),
            expected=opened.seq,
            aggregate=agg,
        )
    assert err.value.expected == opened.seq and "w1" in str(err.value)
    assert await aggregate_version(js, stream_name, agg) == opened.seq + 1
    # The cause is kept (decided by it, not by the message text): the PublishError, and
    # under it nats-py's APIError with the server's code (10071 JSStreamWrongLastSequenceErrF).
    publish_error = err.value.__cause__
    assert isinstance(publish_error, PublishError)
    assert isinstance(publish_error.__cause__, nats.js.errors.APIError)
    assert publish_error.__cause__.err_code == 10071


@pytest.mark.parametrize("style", ["choreography", "orchestration"])
async def test_the_saga_completes_or_compensates_each_order_once(nc, style: str) -> None:
    """Both styles: orders within the limit complete; declined ones release stock and cancel."""
    js = nc.jetstream()
    await saga.setup(js)
    runner = saga.Choreography(js) if style == "choreography" else saga.Orchestration(js, nc)
    await runner.start()
    try:
        for i, cents in enumerate([100, 9_000, 4_999, 5_001]):
            await saga.place_order(js, f"o{i}", amount_cents=cents)
        await runner.settle()
    finally:
        await runner.stop()
    assert await saga.outcomes(js) == {
        "o0": ["order.completed"],
        "o1": ["order.cancelled"],
        "o2": ["order.completed"],
        "o3": ["order.cancelled"],
    }
    assert runner.stock.released == {"o1", "o3"}
    assert set(runner.billing.charged) == {"o0", "o2"}


async def test_exercise_16_wants_one_traced_charge_despite_a_redelivery(js) -> None:
    """A random id per attempt fails (two charges); the derived, traced one passes."""

    async def placed_order() -> tuple[Event, dict[str, str]]:
        await saga.setup(js)
        placed = await saga.place_order(js, "ex16", amount_cents=700)
        stored = await js.get_last_msg(saga.STREAM, "order.placed")
        order_trace = TraceContext.from_headers(stored.headers)  # read, never recomputed
        assert order_trace is not None
        cause = derived_id(placed.id, "stock.reserved")
        trace = order_trace.child("billing")
        return placed, flow_headers(trace, correlation_id=placed.id, causation_id=cause)

    placed, headers = await placed_order()
    cause = derived_id(placed.id, "stock.reserved")
    for _ in range(2):  # configuration right (headers), behaviour wrong (fresh ids)
        await publish_event(
            js, Event.create("billing.charged", {"order_id": "ex16"}), headers=headers
        )
    wrong = await check("16", js)
    assert not wrong.passed and "2 billing.charged" in wrong.message
    placed, headers = await placed_order()
    charged = Event.create(
        "billing.charged", {"order_id": "ex16"}, id=derived_id(cause, "billing.charged")
    )
    await publish_event(js, charged, headers={**headers, "Causation-Id": "someone-else"})
    assert "Causation-Id" in (await check("16", js)).message
    _, headers = await placed_order()
    await publish_event(
        js,
        charged,
        headers=flow_headers(TraceContext.new(), correlation_id=placed.id, causation_id=cause),
    )
    assert "traceparent" in (await check("16", js)).message  # a trace of its own
    _, headers = await placed_order()
    for _ in range(2):
        await publish_event(js, charged, headers=headers)
    assert (await check("16", js)).passed
