"""Publishing events: acks, dedup, errors, the windowed bulk publisher."""

from __future__ import annotations

import pytest

from edalab import NoStreamError, PublishError, SubjectError
from edalab.publishing import publish_event, publish_events
from edalab.streams import ensure_stream
from edalab.testing import EventFactory


async def test_publish_returns_the_ack(js, stream_name, token) -> None:  # type: ignore[no-untyped-def]
    """A published event is stored on its type's subject with the next sequence."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    acks = [await publish_event(js, make(f"{token}.created")) for _ in range(3)]
    assert [a.seq for a in acks] == [1, 2, 3]
    assert {a.stream for a in acks} == {stream_name}


async def test_no_stream_names_the_subject(js, token) -> None:  # type: ignore[no-untyped-def]
    """Publishing where no stream listens raises NoStreamError with the subject."""
    with pytest.raises(NoStreamError) as info:
        await publish_event(js, EventFactory()(f"{token}.nowhere"), timeout=2)
    assert info.value.subject == f"{token}.nowhere"


async def test_bad_subject_is_refused_before_sending(js) -> None:  # type: ignore[no-untyped-def]
    """An event type with a wildcard cannot be a subject to publish to."""
    with pytest.raises(SubjectError):
        await publish_event(js, EventFactory()("user.*"))


async def test_wrong_expected_stream_is_a_publish_error(js, stream_name, token) -> None:  # type: ignore[no-untyped-def]
    """A server-side rejection becomes PublishError naming subject and event."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    event = EventFactory()(f"{token}.created")
    with pytest.raises(PublishError) as info:
        await publish_event(js, event, headers={"Nats-Expected-Stream": "OTHER"})
    assert info.value.event_id == event.id and info.value.subject == f"{token}.created"


async def test_bulk_publish_acks_every_event_in_order(js, stream_name, token) -> None:  # type: ignore[no-untyped-def]
    """publish_events returns one ack per event, in order, with a small window."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    events = [make(f"{token}.created", {"n": i}) for i in range(500)]
    acks = await publish_events(js, events, window=16)
    assert [a.seq for a in acks] == list(range(1, 501))
    assert (await js.stream_info(stream_name)).state.messages == 500
    again = await publish_events(js, events[:10])
    assert all(a.duplicate for a in again)


async def test_bulk_publish_without_stream_fails_clearly(js, token) -> None:  # type: ignore[no-untyped-def]
    """The bulk publisher reports the subject nobody stores."""
    make = EventFactory()
    with pytest.raises(NoStreamError, match=f"{token}.lost"):
        await publish_events(js, [make(f"{token}.lost") for _ in range(5)], timeout=2)
