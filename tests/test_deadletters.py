"""Dead letters: advisories captured in a stream, inspected, replayed, discarded."""

from __future__ import annotations

import pytest

from edalab import DeadLetters, EventConsumer, PermanentError, ensure_stream, publish_events
from edalab.testing import EventFactory


@pytest.fixture
async def dead(js):  # type: ignore[no-untyped-def]
    """A fresh dead-letter stream for the test."""
    letters = DeadLetters(js)
    await letters.setup()
    await js.purge_stream(letters.stream)
    return letters


async def test_terminated_and_max_deliveries_are_captured_with_reasons(  # type: ignore[no-untyped-def]
    js, dead, stream_name, token
) -> None:
    """An undecodable message, a permanent failure and a poison message all land, with why."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    await publish_events(js, [make(f"{token}.ok", {"n": 0}), make(f"{token}.reject", {"n": 1})])
    await js.publish(f"{token}.ok", b"garbage")
    await publish_events(js, [make(f"{token}.poison", {"n": 2}), make(f"{token}.ok", {"n": 3})])
    consumer = await EventConsumer.create(js, stream_name, "svc", max_deliver=2)
    handled = []

    async def handle(event) -> None:  # type: ignore[no-untyped-def]
        if event.type.endswith("reject"):
            raise PermanentError("customer unknown")
        if event.type.endswith("poison"):
            raise RuntimeError("bug")
        handled.append(event.data["n"])

    await consumer.run(handle, timeout=0.5, retry_delay=0.05)
    assert handled == [0, 3]
    letters = await dead.wait_for(3)
    by_seq = {d.stream_seq: d for d in letters if d.stream == stream_name}
    assert by_seq[2].category == "terminated" and by_seq[2].reason == "handler: customer unknown"
    assert by_seq[3].category == "undecodable" and "not valid JSON" in by_seq[3].reason
    assert by_seq[4].category == "max deliveries" and by_seq[4].deliveries == 2
    detail = await dead.inspect(by_seq[3])
    assert detail["data"] == b"garbage" and detail["subject"] == f"{token}.ok"
    assert str(detail["event"]).startswith("not an event")


async def test_replay_after_a_fix_and_discard(js, dead, stream_name, token) -> None:  # type: ignore[no-untyped-def]
    """A replayed letter is processed once the handler is fixed, and leaves the list."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    await publish_events(js, [make(f"{token}.order", {"n": 1})])
    consumer = await EventConsumer.create(js, stream_name, "svc")
    broken = True
    seen = []

    async def handle(event) -> None:  # type: ignore[no-untyped-def]
        if broken:
            raise PermanentError("missing price")
        seen.append(event.id)

    await consumer.run(handle, timeout=0.3)
    [letter] = await dead.wait_for(1)
    broken = False
    ack = await dead.replay(letter)
    assert not ack.duplicate and ack.seq == 2
    await consumer.run(handle, timeout=0.3)
    assert seen == ["evt-0001"]
    assert await dead.letters() == []
    replayed = await js.get_msg(stream_name, 2)
    assert replayed.headers["Edalab-Replay-Of"] == f"{stream_name}/1"


async def test_filter_and_discard(js, dead, stream_name, token) -> None:  # type: ignore[no-untyped-def]
    """letters() filters by stream; discard removes one letter only."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    for i in range(2):
        await js.publish(f"{token}.x", f"bad {i}".encode())
    consumer = await EventConsumer.create(js, stream_name, "svc")
    assert [d.event async for d in consumer.events(timeout=0.3)] == []
    letters = await dead.wait_for(2)
    assert len(await dead.letters(stream=stream_name)) == 2
    assert await dead.letters(stream="OTHER") == []
    await dead.discard(letters[0])
    assert [d.id for d in await dead.letters()] == [letters[1].id]
