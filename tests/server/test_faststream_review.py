"""What edalab.faststream promises, pinned where the first tests left it open.

- ``Failures`` naks a transient failure *with its delay*: the server redelivers no
  sooner (a nak without one would pass the other tests);
- ``IdempotencyGuard``'s boundary: only the handler's result is atomic with its mark.
  Two workers holding one event both run the handler and one result is recorded; an
  effect the handler has outside its result runs again when the record fails after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.testing import TestNatsBroker
from nats.js.api import ConsumerConfig

from edalab import Event, ProcessedIds, TransientError, ensure_stream, publish_event, wait_for
from edalab.faststream import EventDecoder, Failures, IdempotencyGuard


def _subscribe(broker: NatsBroker, stream: str, subject: str, *, ack_wait: float = 5) -> Any:
    return broker.subscriber(
        subject,
        stream=JStream(stream, declare=False),
        durable="svc",
        pull_sub=PullSub(batch_size=1, timeout=0.2),
        config=ConsumerConfig(max_deliver=3, ack_wait=ack_wait),
        decoder=EventDecoder(),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )


async def test_a_transient_failure_comes_back_after_its_delay_not_before(
    nats_url, js, stream_name, token
) -> None:
    """TransientError(delay=0.6): the second delivery is at least 0.6 s after the first."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[Failures(delay=0.01)])
    seen: list[float] = []

    @_subscribe(broker, stream_name, f"{token}.placed")
    async def handle(event: Event) -> None:
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise TransientError("provider busy", delay=0.6)

    async with TestNatsBroker(broker, with_real=True):
        await publish_event(js, Event.create(f"{token}.placed", {}), subject=f"{token}.placed")

        async def twice() -> bool:
            return len(seen) >= 2

        await wait_for(twice, timeout=10, what="the redelivery")
    assert seen[1] - seen[0] >= 0.55, f"redelivered after {seen[1] - seen[0]:.3f} s"


async def test_two_workers_holding_one_event_record_one_result(
    nats_url, js, stream_name, token
) -> None:
    """Worker A is slow, ack_wait expires, B gets the event: both run, one result lands."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    ids = await ProcessedIds.open(js, f"{token}-ids", fresh=True)
    guards = [IdempotencyGuard(ids), IdempotencyGuard(ids)]
    ran: list[str] = []
    b_done = asyncio.Event()

    def worker(name: str, guard: IdempotencyGuard) -> NatsBroker:
        broker = NatsBroker(nats_url, log_level=logging.DEBUG, middlewares=[Failures(), guard])

        @_subscribe(broker, stream_name, f"{token}.placed", ack_wait=0.5)
        async def handle(event: Event) -> bytes:
            ran.append(name)
            if name == "A":
                await asyncio.wait_for(b_done.wait(), 10)  # still busy when B is handed it
            return name.encode()

        return broker

    a, b = worker("A", guards[0]), worker("B", guards[1])
    async with TestNatsBroker(a, with_real=True):
        await publish_event(
            js, Event.create(f"{token}.placed", {}, id="e-1"), subject=f"{token}.placed"
        )

        async def a_busy() -> bool:
            return ran == ["A"]

        await wait_for(a_busy, timeout=10, what="worker A to hold the event")
        async with TestNatsBroker(b, with_real=True):

            async def b_recorded() -> bool:
                return guards[1].applied == 1

            await wait_for(b_recorded, timeout=10, what="worker B to record its result")
            b_done.set()

            async def a_repeated() -> bool:
                return guards[0].repeats == 1

            await wait_for(a_repeated, timeout=10, what="worker A to find B's record")
    assert ran == ["A", "B"]  # the handler ran twice: its own side effects would too
    assert await ids.value("e-1") == b"B" and guards[0].applied == 0
    await js.delete_key_value(f"{token}-ids")


class _LostRecord(ProcessedIds):
    """The first record fails after the handler ran (a connection lost at that moment)."""

    failed = False

    async def record(self, event_id: str, value: bytes) -> bool:
        if not self.failed:
            self.failed = True
            raise ConnectionError("lost the server while recording")
        return await super().record(event_id, value)


async def test_an_effect_outside_the_result_runs_again_when_the_record_fails(
    nats_url, js, stream_name, token
) -> None:
    """The record fails after the handler: redelivered, the handler's outside effect repeats."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    plain = await ProcessedIds.open(js, f"{token}-ids", fresh=True)
    ids = _LostRecord(plain.kv)
    guard = IdempotencyGuard(ids)
    broker = NatsBroker(
        nats_url, log_level=logging.DEBUG, middlewares=[Failures(delay=0.05), guard]
    )
    card_calls: list[str] = []

    @_subscribe(broker, stream_name, f"{token}.placed")
    async def handle(event: Event) -> bytes:
        card_calls.append(event.id)  # a payment provider's API: outside the record
        return b"charged"

    async with TestNatsBroker(broker, with_real=True):
        await publish_event(
            js, Event.create(f"{token}.placed", {}, id="e-1"), subject=f"{token}.placed"
        )

        async def recorded() -> bool:
            return guard.applied == 1

        await wait_for(recorded, timeout=10, what="the record on redelivery")
    assert card_calls == ["e-1", "e-1"]  # hence: pass the event id as the provider's key
    assert await plain.value("e-1") == b"charged"
    await js.delete_key_value(f"{token}-ids")
