"""The Event envelope on the live server: a message's stream sequence and Nats-Msg-Id."""

from __future__ import annotations

import pytest

from edalab import MSG_ID, Event, EventDecodeError, EventFactory, ensure_stream, publish_event


async def test_from_msg_names_the_stream_sequence(js, stream_name, token) -> None:
    """A bad JetStream message's error carries its subject and stream sequence."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    good = EventFactory()(f"{token}.ok")
    await publish_event(js, good)
    await js.publish(f"{token}.bad", b"{broken")
    sub = await js.pull_subscribe(f"{token}.>", durable=None, stream=stream_name)
    first, second = await sub.fetch(2, timeout=2)
    assert Event.from_msg(first) == good
    with pytest.raises(EventDecodeError) as info:
        Event.from_msg(second)
    assert info.value.subject == f"{token}.bad"
    assert info.value.sequence == 2
    assert info.value.raw == b"{broken"


async def test_msg_id_header_is_the_event_id(js, stream_name, token) -> None:
    """publish_event sets Nats-Msg-Id to the event id, so a resend is a duplicate."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    event = EventFactory()(f"{token}.created")
    first = await publish_event(js, event)
    again = await publish_event(js, event)
    assert not first.duplicate and again.duplicate and again.seq == first.seq
    stored = await js.get_msg(stream_name, first.seq)
    assert stored.headers is not None and stored.headers[MSG_ID] == event.id
