"""edalab.faststream on a real server: FastStream's test broker connected to nats-server.

Each test builds a small FastStream broker with edalab's middlewares and decoder, runs
it with ``TestNatsBroker(broker, with_real=True)`` against the session's server, and
checks what the stream, the key-value bucket and the dead letters hold afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub, TestNatsBroker
from nats.js.api import ConsumerConfig
from pydantic import BaseModel

from edalab import (
    CAUSATION_ID,
    CORRELATION_ID,
    MSG_ID,
    DeadLetters,
    Event,
    PermanentError,
    ProcessedIds,
    Reason,
    SchemaRegistry,
    TransientError,
    ensure_stream,
    stream_messages,
    wait_for,
)
from edalab.faststream import (
    EventDecoder,
    EventPublishing,
    Failures,
    IdempotencyGuard,
    ReplayRoute,
)


class OrderV1(BaseModel):
    order_id: str
    total_cents: int


class OrderV2(OrderV1):
    currency: str


@pytest.fixture
async def dead(js):
    """The session's dead-letter stream (one per server: it captures every advisory)."""
    letters = DeadLetters(js)
    await letters.setup()
    return letters


async def _quiet(js, stream: str, durable: str, timeout: float = 10.0) -> None:
    async def settled() -> bool:
        info = await js.consumer_info(stream, durable)
        return not info.num_pending and not info.num_ack_pending

    await wait_for(settled, timeout=timeout, what=f"{durable} to settle")


async def _handled(guard: IdempotencyGuard, count: int) -> None:
    async def done() -> bool:
        return guard.applied + guard.repeats >= count

    await wait_for(done, timeout=10, what=f"{count} deliveries through the guard")


def _subscriber(
    broker: NatsBroker, stream: str | JStream, subject: str, durable: str, **kw: Any
) -> Any:
    return broker.subscriber(
        subject,
        stream=JStream(stream, declare=False) if isinstance(stream, str) else stream,
        durable=durable,
        pull_sub=PullSub(batch_size=10, timeout=0.2),
        config=ConsumerConfig(max_deliver=3, ack_wait=5),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        **kw,
    )


async def test_a_retried_publish_is_stored_once_with_the_flow_headers(
    nats_url, js, stream_name, token
):
    """An Event published twice through EventPublishing is one message, id and flow attached."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[EventPublishing()])
    event = Event.create(f"{token}.placed", {"n": 1}, id="evt-1")
    async with TestNatsBroker(broker, with_real=True) as br:
        first = await br.publish(event, f"{token}.placed", stream=stream_name)
        again = await br.publish(event, f"{token}.placed", stream=stream_name)
    assert (bool(first.duplicate), again.duplicate) == (False, True)
    stored = [raw async for _, raw in stream_messages(js, stream_name)]
    assert len(stored) == 1
    assert Event.from_json(stored[0].data) == event  # edalab's JSON, not FastStream's
    headers = stored[0].headers or {}
    assert headers[MSG_ID] == "evt-1" and headers[CORRELATION_ID] == "evt-1"
    assert headers["traceparent"].startswith("00-")


async def test_a_handlers_event_result_carries_id_causation_and_correlation(
    nats_url, js, stream_name, token
):
    """A @publisher result (an Event) goes out with its id, its cause and the flow's id."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[EventPublishing()])

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder())
    @broker.publisher(f"{token}.paid", stream=stream_name)
    async def pay(event: Event) -> Event:
        return Event.create(f"{token}.paid", {"of": event.id}, id=f"paid-{event.id}")

    cause = Event.create(f"{token}.placed", {"n": 1}, id="o-1")
    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(cause, f"{token}.placed", stream=stream_name)
        await _quiet(js, stream_name, "svc")
    paid = [raw async for _, raw in stream_messages(js, stream_name)][1]
    headers = paid.headers or {}
    assert headers[MSG_ID] == "paid-o-1"
    assert (headers[CAUSATION_ID], headers[CORRELATION_ID]) == ("o-1", "o-1")


async def test_a_v1_event_arrives_upcast(nats_url, js, stream_name, token):
    """EventDecoder with a registry hands the handler version 2 of a version-1 event."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    reg = SchemaRegistry()
    reg.register(f"{token}.placed", 1, OrderV1)
    reg.register(f"{token}.placed", 2, OrderV2)
    reg.upcaster(f"{token}.placed", 1)(lambda d: {**d, "currency": "EUR"})
    broker = NatsBroker(
        nats_url, log_level=logging.DEBUG, middlewares=[EventPublishing(), Failures()]
    )
    seen: list[Any] = []
    done = asyncio.Event()

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder(reg))
    async def handle(event: Event) -> None:
        seen.append((event.version, event.data))
        done.set()

    old = Event.create(f"{token}.placed", OrderV1(order_id="o1", total_cents=5), version=1)
    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(old, f"{token}.placed", stream=stream_name)
        await asyncio.wait_for(done.wait(), 10)
    assert seen == [(2, {"order_id": "o1", "total_cents": 5, "currency": "EUR"})]


async def test_the_guard_applies_a_redelivered_event_once(nats_url, js, stream_name, token):
    """A redelivery (the consumer reset) skips the handler: one charge recorded, one publish."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    charges = await ProcessedIds.open(js, f"{token}-charges", history=5, fresh=True)
    guard = IdempotencyGuard(charges)
    broker = NatsBroker(
        nats_url,
        log_level=logging.DEBUG,
        middlewares=[EventPublishing(), Failures(delay=0.05), guard],
    )
    runs: list[str] = []

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder())
    async def charge(event: Event) -> bytes:
        runs.append(event.id)
        return b"500"

    order = Event.create(f"{token}.placed", {"n": 1}, id="o-1")
    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(order, f"{token}.placed", stream=stream_name)
        await _quiet(js, stream_name, "svc")
    await js.delete_consumer(stream_name, "svc")  # redeployed, consumer reset: all again
    async with TestNatsBroker(broker, with_real=True):
        await _handled(guard, 2)
    assert runs == ["o-1"]
    assert (guard.applied, guard.repeats) == (1, 1)
    assert await charges.value("o-1") == b"500"
    assert len(await charges.kv.history("o-1")) == 1  # one write ever: the charge


async def test_without_the_guard_a_redelivered_event_runs_twice(nats_url, js, stream_name, token):
    """The same redelivery without IdempotencyGuard runs the handler again (the guard's point)."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    broker = NatsBroker(
        nats_url, log_level=logging.DEBUG, middlewares=[EventPublishing(), Failures(delay=0.05)]
    )
    runs: list[str] = []

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder())
    async def charge(event: Event) -> None:
        runs.append(event.id)

    order = Event.create(f"{token}.placed", {"n": 1}, id="o-1")
    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(order, f"{token}.placed", stream=stream_name)
        await _quiet(js, stream_name, "svc")
    await js.delete_consumer(stream_name, "svc")
    async with TestNatsBroker(broker, with_real=True):
        await _quiet(js, stream_name, "svc")
    assert runs == ["o-1", "o-1"]


async def test_failures_nak_transient_and_dead_letter_the_rest_with_why(
    nats_url, js, dead, stream_name, token
):
    """Transient: redelivered then handled; permanent, garbage, v3, a bug: dead letters by kind."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    reg = SchemaRegistry()
    reg.register(f"{token}.placed", 1, OrderV1)
    broker = NatsBroker(
        nats_url, log_level=logging.DEBUG, middlewares=[EventPublishing(), Failures(delay=0.05)]
    )
    tries: dict[str, int] = {}
    handled: list[str] = []

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder(reg))
    async def handle(event: Event) -> None:
        n = event.data["order_id"]
        tries[n] = tries.get(n, 0) + 1
        if n == "busy" and tries[n] == 1:
            raise TransientError("payment provider busy", delay=0.05)
        if n == "free":
            raise PermanentError("free order: nothing to charge")
        if n == "bug":
            raise ZeroDivisionError("division by zero")
        handled.append(n)

    def order(n: str, version: int = 1) -> Event:
        return Event.create(f"{token}.placed", {"order_id": n, "total_cents": 5}, version=version)

    async with TestNatsBroker(broker, with_real=True) as br:
        for event in (order("busy"), order("free"), order("bug"), order("new", 3)):
            await br.publish(event, f"{token}.placed", stream=stream_name)
        await js.publish(f"{token}.placed", b"garbage")
        await _quiet(js, stream_name, "svc")

        async def four() -> bool:
            return len(await dead.letters(stream=stream_name)) >= 4

        await wait_for(four, timeout=10, what="four dead letters")
    assert handled == ["busy"] and tries["busy"] == 2 and tries["bug"] == 3
    kinds = {d.stream_seq: d.category for d in await dead.letters(stream=stream_name)}
    assert kinds == {
        2: Reason.REJECTED,
        3: Reason.MAX_DELIVERIES,
        4: Reason.UNKNOWN_VERSION,
        5: Reason.UNDECODABLE,
    }


async def test_a_dead_letter_replays_to_the_consumer_that_gave_up_only(
    nats_url, js, dead, stream_name, token
):
    """ReplayRoute stacked on the handler: the fixed service gets the replay; audit does not."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    broken = True
    seen: dict[str, list[str]] = {"svc": [], "audit": []}
    broker = NatsBroker(
        nats_url, log_level=logging.DEBUG, middlewares=[EventPublishing(), Failures(delay=0.05)]
    )
    route = ReplayRoute(stream_name, "svc")

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder())
    @_subscriber(broker, route.jstream, route.subject, route.durable, decoder=EventDecoder())
    async def handle(event: Event) -> None:
        if broken:
            raise PermanentError("missing price")
        seen["svc"].append(event.id)

    @_subscriber(broker, stream_name, f"{token}.placed", "audit", decoder=EventDecoder())
    async def audit(event: Event) -> None:
        seen["audit"].append(event.id)

    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(
            Event.create(f"{token}.placed", id="o-9"), f"{token}.placed", stream=stream_name
        )
        (letter,) = await _letters(dead, stream_name)
        broken = False
        await dead.replay(letter)
        await _quiet(js, dead.stream, route.durable)
        await _quiet(js, stream_name, "audit")
    assert seen == {"svc": ["o-9"], "audit": ["o-9"]}


async def _letters(dead: DeadLetters, stream: str) -> list[Any]:
    async def one() -> bool:
        return bool(await dead.letters(stream=stream))

    await wait_for(one, timeout=10, what=f"a dead letter of {stream}")
    return await dead.letters(stream=stream)


async def test_a_body_that_fails_the_handlers_model_is_terminated_as_invalid(
    nats_url, js, dead, stream_name, token
):
    """FastStream's own validation error (handler argument) is permanent: +TERM, invalid event."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[Failures(delay=0.05)])
    tries: list[int] = []

    @_subscriber(broker, stream_name, f"{token}.placed", "svc")
    async def handle(order: OrderV1) -> None:
        tries.append(1)

    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish({"order_id": "o1"}, f"{token}.placed", stream=stream_name)
        (letter,) = await _letters(dead, stream_name)
    assert tries == [] and letter.category is Reason.INVALID_EVENT
    assert "total_cents" in letter.reason and letter.deliveries == 1


async def test_a_guarded_handler_returning_none_repeats_as_none(nats_url, js, stream_name, token):
    """A handler with no result: recorded as done; its redelivery returns None, not b"null"."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    ids = await ProcessedIds.open(js, f"{token}-done", fresh=True)
    guard = IdempotencyGuard(ids)
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[Failures(), guard])

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder())
    @broker.publisher(f"{token}.echo", stream=stream_name)
    async def handle(event: Event) -> None:
        return None

    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(
            Event.create(f"{token}.placed", id="e-1"), f"{token}.placed", stream=stream_name
        )
        await _handled(guard, 1)
    await js.delete_consumer(stream_name, "svc")
    async with TestNatsBroker(broker, with_real=True):
        await _handled(guard, 2)
    assert (guard.applied, guard.repeats) == (1, 1) and await ids.value("e-1") == b"null"
    echoed = [raw.data or b"" async for _, raw in stream_messages(js, stream_name)][1:]
    assert echoed == [b"", b""]  # FastStream publishes None as an empty body: both times


async def test_a_permanent_failure_is_terminated_once_with_its_reason(
    nc, js, nats_url, stream_name, token
):
    """One +TERM with edalab's reason: FastStream's own reject must not add a second one."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    seen: list[tuple[str, str]] = []
    deleted = asyncio.Event()

    async def on_advisory(msg: Any) -> None:
        kind = msg.subject.split(".")[4]  # $JS.EVENT.ADVISORY.CONSUMER.<KIND>....
        seen.append((kind, json.loads(msg.data).get("reason", "")))
        if kind == "DELETED":
            deleted.set()

    sub = await nc.subscribe(f"$JS.EVENT.ADVISORY.CONSUMER.*.{stream_name}.>", cb=on_advisory)
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[Failures(delay=0.05)])

    @_subscriber(broker, stream_name, f"{token}.placed", "svc", decoder=EventDecoder())
    async def handle(event: Event) -> None:
        raise PermanentError("free order: nothing to charge")

    async with TestNatsBroker(broker, with_real=True) as br:
        await br.publish(Event.create(f"{token}.placed", {}), f"{token}.placed", stream=stream_name)
        await _quiet(js, stream_name, "svc")
    # The server sends its advisories in order: once the consumer's DELETED advisory is
    # here, any second MSG_TERMINATED advisory would have come before it.
    await js.delete_consumer(stream_name, "svc")
    await asyncio.wait_for(deleted.wait(), timeout=5)
    await sub.unsubscribe()
    terminated = [reason for kind, reason in seen if kind == "MSG_TERMINATED"]
    assert terminated == [Reason.REJECTED.text("free order: nothing to charge")]
