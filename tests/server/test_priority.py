"""Priority groups on the live server: ensure_priority_consumer, PriorityPuller, unpin."""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats.js.errors
import pytest

from edalab import (
    ConsumerConfigConflict,
    ConsumerError,
    PriorityPuller,
    ensure_priority_consumer,
    ensure_stream,
    pinned_client,
    unpin,
    wait_for,
)


async def _stream(js, name: str) -> None:
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(name)
    await ensure_stream(js, name, [f"{name.lower()}.>"])


async def _publish(js, stream: str, count: int) -> None:
    for n in range(count):
        await js.publish(f"{stream.lower()}.job", str(n).encode())


async def test_ensure_priority_consumer_is_idempotent_and_reports_changes(js) -> None:
    """created, then unchanged, then updated with the changed priority_timeout in ns."""
    await _stream(js, "PRIO1")
    first = await ensure_priority_consumer(js, "PRIO1", "w", group="g", priority_timeout=1.0)
    again = await ensure_priority_consumer(js, "PRIO1", "w", group="g", priority_timeout=1.0)
    changed = await ensure_priority_consumer(js, "PRIO1", "w", group="g", priority_timeout=2.0)
    assert (first.action, again.action, changed.action) == ("created", "unchanged", "updated")
    assert changed.changes == {"priority_timeout": (1_000_000_000, 2_000_000_000)}


async def test_ensure_priority_consumer_names_what_the_server_refuses(js) -> None:
    """A push consumer cannot have a priority group: the server's reason is in the error."""
    await _stream(js, "PRIO2")
    with pytest.raises(ConsumerError, match="cannot create consumer 'push'"):
        await ensure_priority_consumer(js, "PRIO2", "push", group="g", deliver_subject="x.y")
    await ensure_priority_consumer(js, "PRIO2", "w", group="g")
    with pytest.raises(ConsumerConfigConflict):
        await ensure_priority_consumer(js, "PRIO2", "w", group="g", deliver_subject="x.y")


async def test_only_the_pinned_puller_receives_and_keeps_its_pin(js) -> None:
    """The first puller to get a message holds the pin (the consumer's state names it);
    a second puller gets nothing while the first keeps pulling."""
    await _stream(js, "PRIO3")
    await ensure_priority_consumer(js, "PRIO3", "w", group="g", priority_timeout=2.0)
    a, b = (PriorityPuller(js, "PRIO3", "w", "g") for _ in range(2))
    await _publish(js, "PRIO3", 1)
    assert len(await a.fetch(batch=1, timeout=1)) == 1
    assert a.pinned and await pinned_client(js, "PRIO3", "w", "g") == a.pin_id
    await _publish(js, "PRIO3", 4)
    standby = asyncio.create_task(b.fetch(batch=4, timeout=0.5))
    got = await a.fetch(batch=4, timeout=0.5)
    assert (len(got), await standby, b.said) == (4, [], "408 Request Timeout")
    assert not b.pinned


async def test_the_standby_takes_over_priority_timeout_after_the_last_pull(js) -> None:
    """The pinned puller stops pulling: the standby gets the next message and a new pin,
    not before priority_timeout (1 s) and not much after; the old one then gets a 423."""
    await _stream(js, "PRIO4")
    await ensure_priority_consumer(js, "PRIO4", "w", group="g", priority_timeout=1.0)
    a, b = (PriorityPuller(js, "PRIO4", "w", "g") for _ in range(2))
    await _publish(js, "PRIO4", 1)
    await a.fetch(batch=1, timeout=1)
    last_pull = time.monotonic()
    await a.fetch(batch=1, timeout=0.01)  # a's last pull (nothing there): the timer restarts
    await _publish(js, "PRIO4", 1)
    got = await b.fetch(batch=1, timeout=3)
    took = time.monotonic() - last_pull
    print(f"\n[priority groups] standby took over after {took:.2f} s (priority_timeout 1 s)")
    assert len(got) == 1 and b.pinned and b.pin_id != a.pin_id
    assert 0.95 <= took <= 2.0
    assert await a.fetch(batch=1, timeout=0.25) == []
    assert (a.pinned, a.said) == (False, "423 Nats-Pin-Id mismatch")


async def test_unpin_moves_the_pin_to_a_waiting_puller(js) -> None:
    """After unpin, the waiting puller gets the next message with a new pin id."""
    await _stream(js, "PRIO5")
    await ensure_priority_consumer(js, "PRIO5", "w", group="g", priority_timeout=30.0)
    a, b = (PriorityPuller(js, "PRIO5", "w", "g") for _ in range(2))
    await _publish(js, "PRIO5", 1)
    [held] = await a.fetch(batch=1, timeout=1)
    waiting = asyncio.create_task(b.fetch(batch=1, timeout=3))

    async def b_waits() -> bool:
        return (await js.consumer_info("PRIO5", "w")).num_waiting >= 1

    await wait_for(b_waits, timeout=5, what="b's pull")
    await unpin(js, "PRIO5", "w", "g")
    await _publish(js, "PRIO5", 1)
    assert len(await waiting) == 1 and b.pinned
    assert await pinned_client(js, "PRIO5", "w", "g") == b.pin_id != a.pin_id
    assert (await js.consumer_info("PRIO5", "w")).num_ack_pending == 2  # a still holds its one
    await held.ack()
    with pytest.raises(ConsumerError, match="cannot unpin"):
        await unpin(js, "PRIO5", "w", "no-such-group")


async def test_overflow_serves_min_pending_only_above_the_backlog(js) -> None:
    """min_pending=50: nothing at a backlog of 10; from 120 down to 50 (71); the rest
    (49) to the puller without a threshold."""
    await _stream(js, "PRIO6")
    await ensure_priority_consumer(js, "PRIO6", "w", group="g", policy="overflow")
    primary = PriorityPuller(js, "PRIO6", "w", "g")
    helper = PriorityPuller(js, "PRIO6", "w", "g", min_pending=50)

    async def take(puller: PriorityPuller) -> int:
        msgs = await puller.fetch(batch=200, timeout=0.3)
        for msg in msgs:
            await msg.ack()
        return len(msgs)

    await _publish(js, "PRIO6", 10)
    assert (await take(helper), await take(primary)) == (0, 10)
    await _publish(js, "PRIO6", 120)
    assert (await take(helper), await take(primary)) == (71, 49)


async def test_a_pull_the_server_refuses_raises_with_its_reason(js) -> None:
    """A group the consumer does not have, or min_pending on a pinned consumer: 400."""
    await _stream(js, "PRIO7")
    await ensure_priority_consumer(js, "PRIO7", "w", group="g")
    with pytest.raises(ConsumerError, match="400 Bad Request - Invalid Priority Group"):
        await PriorityPuller(js, "PRIO7", "w", "other").fetch(batch=1, timeout=0.3)
    with pytest.raises(ConsumerError, match="Not a Overflow Priority consumer"):
        await PriorityPuller(js, "PRIO7", "w", "g", min_pending=5).fetch(batch=1, timeout=0.3)


async def test_acks_do_not_keep_the_pin_only_pulls_do(js) -> None:
    """Lesson 19 says a pull is the pinned client's heartbeat and nothing else is: a
    pinned puller that keeps its message in progress (+WPI every 0.2 s) but sends no pull
    loses the pin priority_timeout (1 s) after it got it."""
    await _stream(js, "PRIO8")
    await ensure_priority_consumer(js, "PRIO8", "w", group="g", priority_timeout=1.0)
    a = PriorityPuller(js, "PRIO8", "w", "g")
    await _publish(js, "PRIO8", 1)
    [msg] = await a.fetch(batch=1, timeout=1)
    pinned_at = time.monotonic()
    assert await pinned_client(js, "PRIO8", "w", "g") == a.pin_id

    async def dropped() -> bool:
        await msg.in_progress()  # each poll also tells the server: still working on it
        return await pinned_client(js, "PRIO8", "w", "g") is None

    await wait_for(dropped, timeout=3, what="the pin to be dropped", interval=0.2)
    assert time.monotonic() - pinned_at >= 0.95
    await msg.ack()
