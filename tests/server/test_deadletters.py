"""Dead letters: advisories captured in a stream, inspected, replayed, discarded."""

from __future__ import annotations

import pytest

from edalab import (
    DeadLetters,
    EventConsumer,
    EventFactory,
    PermanentError,
    Reason,
    ensure_stream,
    publish_events,
)


@pytest.fixture
async def dead(js):
    """A fresh dead-letter stream for the test."""
    letters = DeadLetters(js)
    await letters.setup()
    await js.purge_stream(letters.stream)
    return letters


async def test_terminated_and_max_deliveries_are_captured_with_reasons(
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

    async def handle(event) -> None:
        if event.type.endswith("reject"):
            raise PermanentError("customer unknown")
        if event.type.endswith("poison"):
            raise RuntimeError("bug")
        handled.append(event.data["n"])

    await consumer.run(handle, timeout=0.5, retry_delay=0.05)
    assert handled == [0, 3]
    letters = await dead.wait_for(3)
    by_seq = {d.stream_seq: d for d in letters if d.stream == stream_name}
    assert by_seq[2].category is Reason.REJECTED
    assert by_seq[2].reason == "handler: customer unknown"
    assert by_seq[3].category is Reason.UNDECODABLE and "not valid JSON" in by_seq[3].reason
    assert by_seq[4].category is Reason.MAX_DELIVERIES and by_seq[4].deliveries == 2
    by_sequence = sorted(consumer.quarantined, key=lambda q: q.sequence or 0)
    assert [q.kind for q in by_sequence] == [Reason.REJECTED, Reason.UNDECODABLE]
    detail = await dead.inspect(by_seq[3])
    assert detail["data"] == b"garbage" and detail["subject"] == f"{token}.ok"
    assert str(detail["event"]).startswith("not an event")


async def test_replay_reaches_only_the_consumer_that_gave_up(js, dead, stream_name, token) -> None:
    """A replay goes to the failed consumer's replay reader; another consumer never sees it."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    await publish_events(js, [make(f"{token}.order", {"n": 1})])
    billing = await EventConsumer.create(js, stream_name, "billing")
    audit = await EventConsumer.create(js, stream_name, "audit")
    broken = True
    seen: dict[str, list[str]] = {"billing": [], "audit": []}

    async def bill(event) -> None:
        if broken:
            raise PermanentError("missing price")
        seen["billing"].append(event.id)

    async def record(event) -> None:
        seen["audit"].append(event.id)

    await billing.run(bill, timeout=0.3)
    await audit.run(record, timeout=0.3)
    [letter] = await dead.wait_for(1)
    assert letter.consumer == "billing"
    broken = False
    ack = await dead.replay(letter)
    assert ack.stream == dead.stream and not ack.duplicate
    replays = await dead.replays(stream_name, "billing")
    report = await replays.run(bill, timeout=0.3)
    await audit.run(record, timeout=0.3)
    assert report.acked == 1 and seen == {"billing": ["evt-0001"], "audit": ["evt-0001"]}
    assert await dead.letters() == [] and await dead.count() == 0
    assert (await js.stream_info(stream_name)).state.last_seq == 1  # nothing republished there
    replayed = await js.get_msg(dead.stream, ack.seq)
    assert replayed.subject == f"deadletters.replay.{stream_name}.billing"
    assert replayed.headers["Edalab-Replay-Of"] == f"{stream_name}/1"
    assert replayed.headers["Edalab-Replay-Subject"] == f"{token}.order"
    from edalab.course.charts.deadletters import draw, flow_state

    state = await flow_state(js, dead, stream_name)
    flows = {c.name: (c.acked, c.replays, c.replays_unacked) for c in state.consumers}
    assert flows == {"audit": (1, 0, 0), "billing": (1, 1, 0)}
    assert (state.letters, state.replays) == (0, 1)
    pytest.importorskip("matplotlib", reason="drawing needs the workbook's set (make compat)")
    assert draw(state).axes[0].get_title().startswith(f"Dead-letter flow of {stream_name}")


async def test_a_replay_that_fails_again_is_replayed_to_the_same_reader(
    js, dead, stream_name, token
) -> None:
    """A replay the reader terminates becomes a letter whose replay goes back to that reader."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    await publish_events(js, [EventFactory()(f"{token}.order", {"n": 1})])
    billing = await EventConsumer.create(js, stream_name, "billing")

    async def reject(event) -> None:
        raise PermanentError("still broken")

    await billing.run(reject, timeout=0.3)
    await dead.replay((await dead.wait_for(1))[0])
    replays = await dead.replays(stream_name, "billing")
    await replays.run(reject, timeout=0.3)
    [again] = await dead.wait_for(1)
    assert again.stream == dead.stream and again.consumer == f"replay-{stream_name}-billing"
    ack = await dead.replay(again)
    assert (await js.get_msg(dead.stream, ack.seq)).subject == dead.replay_subject(
        stream_name, "billing"
    )


async def test_filter_and_discard(js, dead, stream_name, token) -> None:
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
    await dead.discard(letters[0])  # again (a cell run twice): nothing more to remove
    assert [d.id for d in await dead.letters()] == [letters[1].id]


def test_reason_text_round_trips_and_foreign_reasons_are_terminated() -> None:
    """Each reason edalab sends parses back to itself; another client's text is TERMINATED."""
    for reason in (Reason.UNDECODABLE, Reason.UNKNOWN_VERSION, Reason.INVALID_EVENT):
        assert Reason.of_term(reason.text("detail: with a colon")) is reason
    assert Reason.of_term(Reason.REJECTED.text("no price")) == "rejected"
    assert Reason.of_term("handler gave up") is Reason.TERMINATED
    assert Reason.of_term("") is Reason.TERMINATED


async def test_each_quarantine_reason_reaches_the_dead_letter_as_the_same_value(
    js, dead, stream_name, token
) -> None:
    """Unknown version and a failed upcast: Quarantined.kind equals the letter's category."""
    from pydantic import BaseModel

    from edalab import SchemaRegistry

    class V1(BaseModel):
        n: int

    class V2(BaseModel):
        n: int
        m: int

    registry = SchemaRegistry()
    registry.register(f"{token}.x", 1, V1)
    registry.register(f"{token}.x", 2, V2)  # no upcaster from 1 to 2: upcasting v1 fails
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    await publish_events(
        js, [make(f"{token}.x", {"n": 1}), make(f"{token}.x", {"n": 1}, version=9)]
    )
    consumer = await EventConsumer.create(js, stream_name, "svc", registry=registry)
    assert [d async for d in consumer.events(timeout=0.3)] == []
    kinds = [q.kind for q in consumer.quarantined]
    assert kinds == [Reason.INVALID_EVENT, Reason.UNKNOWN_VERSION]
    letters = sorted(await dead.wait_for(2), key=lambda d: d.stream_seq)
    assert [d.category for d in letters] == kinds
