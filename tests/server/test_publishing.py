"""Publishing events: acks, dedup, errors, the windowed bulk publisher."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess

import pytest

from edalab import (
    Event,
    EventFactory,
    JetStream,
    NoStreamError,
    NotAnEdalabJetStream,
    PublishError,
    SubjectError,
    ensure_stream,
    ingest_events,
    jetstream,
    publish_event,
    publish_events,
    stored_event_ids,
)
from edalab.course import fresh_stream
from tests.internals import FAST_INGEST_SINCE


async def test_publish_returns_the_ack(js, stream_name, token) -> None:
    """A published event is stored on its type's subject with the next sequence."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    acks = [await publish_event(js, make(f"{token}.created")) for _ in range(3)]
    assert [a.seq for a in acks] == [1, 2, 3]
    assert {a.stream for a in acks} == {stream_name}


async def test_no_stream_names_the_subject(js, token) -> None:
    """Publishing where no stream listens raises NoStreamError with the subject."""
    with pytest.raises(NoStreamError) as info:
        await publish_event(js, EventFactory()(f"{token}.nowhere"), timeout=2)
    assert info.value.subject == f"{token}.nowhere"


async def test_bad_subject_is_refused_before_sending(js) -> None:
    """An event type with a wildcard cannot be a subject to publish to."""
    with pytest.raises(SubjectError):
        await publish_event(js, EventFactory()("user.*"))


async def test_wrong_expected_stream_is_a_publish_error(js, stream_name, token) -> None:
    """A server-side rejection becomes PublishError naming subject and event."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    event = EventFactory()(f"{token}.created")
    with pytest.raises(PublishError) as info:
        await publish_event(js, event, headers={"Nats-Expected-Stream": "OTHER"})
    assert info.value.event_id == event.id and info.value.subject == f"{token}.created"


async def test_bulk_publish_acks_every_event_in_order(js, stream_name, token) -> None:
    """publish_events returns one ack per event, in order, with a small window."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    events = [make(f"{token}.created", {"n": i}) for i in range(500)]
    acks = await publish_events(js, events, window=16)
    assert [a.seq for a in acks] == list(range(1, 501))
    assert (await js.stream_info(stream_name)).state.messages == 500
    again = await publish_events(js, events[:10])
    assert all(a.duplicate for a in again)


async def test_bulk_publish_without_stream_fails_clearly(js, token) -> None:
    """The bulk publisher reports the subject nobody stores."""
    make = EventFactory()
    with pytest.raises(NoStreamError, match=f"{token}.lost"):
        await publish_events(js, [make(f"{token}.lost") for _ in range(5)], timeout=2)


async def test_bulk_publish_needs_an_edalab_jetstream(nc, stream_name, token) -> None:
    """A plain nats-py JetStreamContext gets a typed error saying how to get the right one."""
    from nats.js.client import JetStreamContext

    await ensure_stream(nc.jetstream(), stream_name, [f"{token}.>"])
    with pytest.raises(NotAnEdalabJetStream, match=r"edalab\.jetstream"):
        await publish_events(JetStreamContext(nc), [EventFactory()(f"{token}.created")])
    acks = await publish_events(jetstream(nc), [EventFactory()(f"{token}.created")])
    assert acks[0].seq == 1


def _server_version() -> tuple[int, int]:
    from edalab import find_nats_server

    out = subprocess.run([str(find_nats_server()), "--version"], capture_output=True, text=True)
    found = re.search(r"v(\d+)\.(\d+)", out.stdout)  # "nats-server: v2.15.1"
    assert found, out.stdout
    return int(found[1]), int(found[2])


_fast_ingest = pytest.mark.skipif(
    _server_version() < FAST_INGEST_SINCE, reason="fast ingest needs nats-server 2.14+"
)


@pytest.mark.skipif(_server_version() >= FAST_INGEST_SINCE, reason="this server has fast ingest")
async def test_ingest_on_an_older_server_says_it_needs_2_14(js, stream_name, token) -> None:
    """On a server without fast ingest, ingest_events refuses before sending anything."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    with pytest.raises(PublishError, match=r"needs nats-server 2\.14"):
        await ingest_events(js, [Event.create(f"{token}.x", {})])
    assert (await js.stream_info(stream_name)).state.messages == 0


@_fast_ingest
async def test_ingest_stores_every_event_once_in_order(js, stream_name, token) -> None:
    """ingest_events stores every event in order; sent again, each is dropped as a duplicate."""
    await ensure_stream(js, stream_name, [f"{token}.>"], allow_batched=True)
    make = EventFactory()
    events = [make(f"{token}.created", {"n": i}) for i in range(2000)]
    report = await ingest_events(js, events, flow=50)
    assert (report.stream, report.events, report.last_seq, report.batches) == (
        stream_name,
        2000,
        2000,
        1,
    )
    stored = await stored_event_ids(js, stream_name)
    assert list(stored) == [e.id for e in events] and set(stored.values()) == {1}
    again = await ingest_events(js, events[:300])
    assert again.last_seq == 0  # the server stored nothing new in that batch
    assert (await js.stream_info(stream_name)).state.messages == 2000


async def _most_sent_between_turns(nc, publish) -> int:
    """Run ``publish`` beside a task that notes nats-py's sent-message count at every turn
    of the loop; the most messages published between two of its turns."""
    counts: list[int] = []
    done = False

    async def watch() -> None:
        while not done:
            counts.append(nc.stats["out_msgs"])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await publish()
    done = True
    await watcher
    counts.append(nc.stats["out_msgs"])
    return max(b - a for a, b in itertools.pairwise(counts))


@_fast_ingest
async def test_bulk_publishers_let_the_loop_run_while_they_send(nc, js, stream_name, token) -> None:
    """nats-py writes what was published only when its flusher task runs: the bulk paths
    yield to the loop every 128 events, whatever their window or flow allows."""
    await ensure_stream(js, stream_name, [f"{token}.>"], allow_batched=True)
    make = EventFactory()
    events = [make(f"{token}.created", {"n": i}) for i in range(3000)]
    bulk = await _most_sent_between_turns(nc, lambda: publish_events(js, events, window=4096))
    ingest = await _most_sent_between_turns(nc, lambda: ingest_events(js, events))
    assert bulk <= 130 and ingest <= 130, (bulk, ingest)  # 128 events and a pull or two


@_fast_ingest
async def test_ingest_one_event(js, stream_name, token) -> None:
    """A batch of one commits at once and comes back with its PubAck."""
    await ensure_stream(js, stream_name, [f"{token}.>"], allow_batched=True)
    report = await ingest_events(js, [EventFactory()(f"{token}.created")])
    assert (report.events, report.last_seq) == (1, 1)


@_fast_ingest
async def test_ingest_needs_a_stream_that_allows_it(js, stream_name, token) -> None:
    """A stream without allow_batched refuses, and the error names the event and the fix."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    events = [EventFactory()(f"{token}.created") for _ in range(5)]
    with pytest.raises(PublishError, match="allow_batched=True") as info:
        await ingest_events(js, events, timeout=2)
    assert info.value.event_id == events[0].id
    assert (await js.stream_info(stream_name)).state.messages == 0


@_fast_ingest
async def test_ingest_refusal_names_the_event_and_stops_there(js, stream_name, token) -> None:
    """An event the server refuses is named; the ones before it are stored, none after."""
    await ensure_stream(js, stream_name, [f"{token}.>"], allow_batched=True, max_msg_size=400)
    make = EventFactory()
    events = [make(f"{token}.created", {"n": i}) for i in range(100)]
    events[60] = make(f"{token}.created", {"big": "x" * 1000})
    with pytest.raises(PublishError) as info:
        await ingest_events(js, events, timeout=2)
    assert info.value.event_id == events[60].id
    assert (await js.stream_info(stream_name)).state.messages == 60


@_fast_ingest
async def test_ingest_without_stream_fails_clearly(js, token) -> None:
    """Fast ingest to a subject no stream captures raises NoStreamError naming it."""
    with pytest.raises(NoStreamError, match=f"{token}.lost"):
        await ingest_events(js, [EventFactory()(f"{token}.lost") for _ in range(5)], timeout=2)


async def test_edalab_jetstream_keeps_its_connection_and_api_prefix(nc) -> None:
    """nc.jetstream() on an edalab connection holds nc and the API prefix, domain included."""
    assert isinstance(nc.jetstream(), JetStream) and nc.jetstream().connection is nc
    assert nc.jetstream().api_prefix == "$JS.API"
    assert jetstream(nc, domain="hub").api_prefix == "$JS.hub.API"
    assert jetstream(nc, prefix="ops.API").api_prefix == "ops.API"
