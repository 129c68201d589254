"""Durable consumers and the event consumer helper, against the real server."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import AckPolicy, DeliverPolicy

from edalab import (
    ConsumerConfigConflict,
    ConsumerError,
    EventConsumer,
    EventFactory,
    NotAnEdalabJetStream,
    PermanentError,
    TransientError,
    ensure_consumer,
    ensure_stream,
    publish_events,
    wait_for,
)


async def _stream_with_events(js, stream_name, token, n=5):
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    events = [make(f"{token}.created", {"n": i}) for i in range(n)]
    await publish_events(js, events)
    return events


async def test_ensure_consumer_is_idempotent_and_updates(js, stream_name, token) -> None:
    """Same config: unchanged; an updatable field: updated with the change listed."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    assert (await ensure_consumer(js, stream_name, "c", ack_wait=5)).action == "created"
    assert (await ensure_consumer(js, stream_name, "c", ack_wait=5)).action == "unchanged"
    setup = await ensure_consumer(js, stream_name, "c", ack_wait=10)
    assert setup.action == "updated"
    assert setup.changes == {"ack_wait": (5.0, 10)}


async def test_deliver_policy_change_is_a_clear_conflict(js, stream_name, token) -> None:
    """Changing a durable's deliver policy fails naming the field, unless recreate=True."""
    await _stream_with_events(js, stream_name, token)
    await ensure_consumer(js, stream_name, "d", deliver_policy=DeliverPolicy.ALL)
    with pytest.raises(ConsumerConfigConflict) as info:
        await ensure_consumer(js, stream_name, "d", deliver_policy=DeliverPolicy.LAST)
    assert "deliver_policy" in info.value.changes
    assert "recreate=True" in str(info.value)
    setup = await ensure_consumer(
        js, stream_name, "d", deliver_policy=DeliverPolicy.LAST, recreate=True
    )
    assert setup.action == "recreated"
    assert (await js.consumer_info(stream_name, "d")).num_pending == 1


async def test_events_yields_decoded_events_in_order(js, stream_name, token) -> None:
    """The iterator yields every event with its message, and stops when idle."""
    events = await _stream_with_events(js, stream_name, token, n=7)
    consumer = await EventConsumer.create(js, stream_name, "reader")
    got = []
    async for delivery in consumer.events(batch=3, timeout=0.5):
        got.append(delivery.event)
        await delivery.ack(sync=True)
    assert got == events
    info = await consumer.info()
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_undecodable_messages_are_quarantined_not_dropped(js, stream_name, token) -> None:
    """A broken payload is terminated with its reason and kept in quarantined."""
    await _stream_with_events(js, stream_name, token, n=2)
    await js.publish(f"{token}.created", b"\xff not json")
    make = EventFactory(prefix="late-")
    await publish_events(js, [make(f"{token}.created")])
    consumer = await EventConsumer.create(js, stream_name, "q")
    seen = [d.event.id async for d in consumer.events(timeout=0.5)]
    assert seen == ["evt-0001", "evt-0002", "late-0001"]
    [bad] = consumer.quarantined
    assert bad.sequence == 3 and bad.raw == b"\xff not json"
    assert bad.reason.startswith("undecodable: not valid JSON")


async def test_run_acks_retries_and_terminates(js, stream_name, token) -> None:
    """Success acks, TransientError naks and is retried, PermanentError terminates."""
    await _stream_with_events(js, stream_name, token, n=3)
    consumer = await EventConsumer.create(js, stream_name, "worker", ack_wait=5)
    attempts: dict[int, int] = {}

    async def handle(event, delivery) -> None:
        n = event.data["n"]
        attempts[n] = attempts.get(n, 0) + 1
        if n == 1 and delivery.num_delivered == 1:
            raise TransientError("busy", delay=0.1)
        if n == 2:
            raise PermanentError("customer unknown")

    report = await consumer.run(handle, timeout=1.0, double_ack=True)
    assert attempts == {0: 1, 1: 2, 2: 1}
    assert (report.handled, report.acked, report.retried, report.terminated) == (4, 2, 1, 1)
    assert consumer.quarantined[0].reason == "handler: customer unknown"
    info = await consumer.info()
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_unexpected_errors_are_retried_until_max_deliver(js, stream_name, token) -> None:
    """A handler bug is retried (nak) and max_deliver bounds it; nothing crashes."""
    await _stream_with_events(js, stream_name, token, n=1)
    consumer = await EventConsumer.create(js, stream_name, "buggy", max_deliver=3)

    async def handle(event) -> None:
        raise KeyError("oops")

    report = await consumer.run(handle, timeout=0.5, retry_delay=0.05)
    assert report.handled == 3 and report.retried == 3 and report.acked == 0
    assert "KeyError" in report.errors[0]


async def test_double_ack_confirms_with_the_server(js, stream_name, token) -> None:
    """With double_ack the consumer's ack floor has moved when run() returns."""
    await _stream_with_events(js, stream_name, token, n=4)
    consumer = await EventConsumer.create(js, stream_name, "exact")

    async def handle(event) -> None:
        await asyncio.sleep(0)

    await consumer.run(handle, timeout=0.3, double_ack=True)
    info = await consumer.info()
    assert info.ack_floor.stream_seq == 4


async def test_invalid_consumer_config_is_a_consumer_error(js, stream_name, token) -> None:
    """The server's refusal to create a consumer comes back naming consumer and reason."""
    from edalab import ConsumerError

    await ensure_stream(js, stream_name, [f"{token}.>"])
    with pytest.raises(ConsumerError, match="filter subject"):
        await ensure_consumer(js, stream_name, "lps", deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)


async def test_builtin_timeout_from_fetch_ends_iteration_quietly(js, stream_name, token) -> None:
    """nats-py's fetch sometimes raises the builtin TimeoutError; the loop treats it as idle."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    consumer = await EventConsumer.create(js, stream_name, "idle")

    async def builtin_timeout(*args, **kwargs):
        raise TimeoutError

    consumer.sub.fetch = builtin_timeout
    assert [d async for d in consumer.events(timeout=0.1)] == []
    assert await consumer.fetch(5, timeout=0.1) == []


async def test_stored_event_ids_and_loss_report(js, stream_name, token) -> None:
    """Counting ids finds a duplicate and a loss, and skips what is not an event."""
    from edalab import stored_event_ids
    from edalab.course import loss_report

    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    published = [make(f"{token}.e") for _ in range(3)]
    await js.publish(f"{token}.e", published[0].to_json())  # no Nats-Msg-Id: stored twice
    await js.publish(f"{token}.e", published[1].to_json())
    await js.publish(f"{token}.e", published[1].to_json())
    await js.publish(f"{token}.e", b"not an event")
    ids = await stored_event_ids(js, stream_name)
    assert ids == {published[0].id: 1, published[1].id: 2}
    assert loss_report(published, 3, ids).rows == [[3, 3, 2, 1, 1]]


async def test_events_leave_no_pull_request_behind(js, stream_name, token) -> None:
    """After an idle stop, a new message stays pending: no old request captured it."""
    await _stream_with_events(js, stream_name, token, n=30)
    consumer = await EventConsumer.create(js, stream_name, "tidy")
    got = [d async for d in consumer.events(batch=8, timeout=0.3)]
    for d in got:
        await d.ack(sync=True)
    assert len(got) == 30
    await publish_events(js, [EventFactory(prefix="late-")(f"{token}.created")])
    info = await consumer.info()
    assert (info.num_pending, info.num_ack_pending, info.num_waiting) == (1, 0, 0)


async def test_events_yield_each_message_as_it_arrives(js, stream_name, token) -> None:
    """A message published during a long pull is yielded at once, not when the pull expires."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    consumer = await EventConsumer.create(js, stream_name, "live")

    async def first() -> str:
        async for d in consumer.events(batch=50, timeout=30, max_events=1):
            return d.event.id
        return ""

    task = asyncio.create_task(first())

    async def waiting() -> bool:
        return (await consumer.info()).num_waiting == 1

    await wait_for(waiting, timeout=5, what="the pull request to reach the server")
    await publish_events(js, [EventFactory()(f"{token}.created")])
    assert await asyncio.wait_for(task, 5) == "evt-0001"


@pytest.mark.parametrize("policy", [AckPolicy.EXPLICIT, AckPolicy.ALL])
async def test_batches_and_ack_batch_settle_every_event(js, stream_name, token, policy) -> None:
    """batches() yields every event once, in order, in lists; ack_batch leaves nothing pending."""
    events = await _stream_with_events(js, stream_name, token, n=300)
    consumer = await EventConsumer.create(js, stream_name, "bulk", ack_policy=policy)
    assert consumer.ack_policy == policy
    seen = []
    # max_events ends the loop at the last event; the timeout only bounds a stall (a busy
    # machine can be slower than 0.5 s between two batches).
    async for deliveries in consumer.batches(batch=64, timeout=5, max_events=300):
        # Pull requests are pipelined (the next goes out once half of one has come in), so
        # a list holds what has arrived: up to one and a half requests' worth.
        assert 0 < len(deliveries) <= 64 + 64 // 2
        seen += [d.event.id for d in deliveries]
        await consumer.ack_batch(deliveries)
    assert seen == [e.id for e in events]
    state: tuple[int, int, int] = (-1, -1, -1)

    async def settled() -> bool:  # acks are fire-and-forget: the server drains them on its own
        nonlocal state
        info = await consumer.info()
        state = (info.num_pending, info.num_ack_pending, info.ack_floor.stream_seq)
        return state == (0, 0, 300)

    await wait_for(settled, timeout=10, what="every ack to settle (pending, in flight, floor)")
    assert state == (0, 0, 300)


async def test_batches_quarantine_bad_messages_and_stop_at_max_events(
    js, stream_name, token
) -> None:
    """An undecodable message is quarantined, not listed; max_events bounds what is yielded."""
    await _stream_with_events(js, stream_name, token, n=3)
    await js.publish(f"{token}.created", b"not json")
    await _stream_with_events(js, stream_name, token, n=0)
    consumer = await EventConsumer.create(js, stream_name, "bounded")
    lists = [ds async for ds in consumer.batches(batch=10, timeout=0.5, max_events=2)]
    assert sum(len(ds) for ds in lists) == 2
    rest = [d async for d in consumer.events(batch=10, timeout=0.5)]
    assert [d.seq for d in rest] == [3]
    assert [q.sequence for q in consumer.quarantined] == [4]


async def test_event_consumer_needs_an_edalab_jetstream(nc, stream_name, token) -> None:
    """A plain nats-py JetStreamContext is refused with a typed error naming the fix."""
    from nats.js.client import JetStreamContext

    await _stream_with_events(nc.jetstream(), stream_name, token, n=1)
    with pytest.raises(NotAnEdalabJetStream, match=r"edalab\.connect"):
        await EventConsumer.create(JetStreamContext(nc), stream_name, "plain")


@pytest.mark.parametrize("read", ["events", "batches", "fetch"])
async def test_a_consumer_deleted_under_a_reader_stops_it(js, stream_name, token, read) -> None:
    """The server answers open pull requests of a deleted consumer with "409 Consumer Deleted".

    Every way of reading says so with ConsumerError (nats-py's own fetch would report it as
    a timeout, so fetch() would have returned [] as if nothing came).
    """
    await ensure_stream(js, stream_name, [f"{token}.>"])
    consumer = await EventConsumer.create(js, stream_name, "doomed")
    if read == "events":
        reading = asyncio.ensure_future(anext(consumer.events(batch=10, timeout=30)))
    elif read == "batches":
        reading = asyncio.ensure_future(anext(consumer.batches(batch=10, timeout=30)))
    else:
        reading = asyncio.ensure_future(consumer.fetch(10, timeout=30))

    async def waiting() -> bool:
        return (await consumer.info()).num_waiting == 1

    await wait_for(waiting, timeout=5, what="the pull request to reach the server")
    await js.delete_consumer(stream_name, "doomed")
    with pytest.raises(ConsumerError, match="consumer 'doomed' was deleted"):
        await asyncio.wait_for(reading, 5)


async def test_a_service_whose_handler_raises_brings_its_group_down(js, stream_name, token) -> None:
    """serve() under a TaskGroup: a handler's unexpected error cancels the other services
    and surfaces at once (not at shutdown); the message goes back for a redelivery."""
    await _stream_with_events(js, stream_name, token, n=1)
    broken = await EventConsumer.create(js, stream_name, "broken", ack_wait=30)
    idle = await EventConsumer.create(js, stream_name, "idle", filter_subject=f"{token}.none")
    crashed = ValueError("the handler's bug")

    async def handler(event):
        raise crashed

    async def services() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(idle.serve(handler, idle=30))
            group.create_task(broken.serve(handler, idle=30))

    with pytest.raises(ExceptionGroup) as caught:
        await asyncio.wait_for(services(), 10)  # idle=30: only the crash can end it in time
    assert caught.value.exceptions == (crashed,)
    assert (await broken.info()).ack_floor.stream_seq == 0  # not acked: it comes back


async def test_serve_runs_until_stopped_and_retries_when_told(js, stream_name, token) -> None:
    """serve() keeps pulling past quiet spells; stop() ends it with its report.
    With unexpected="retry" a handler's error is retried, not raised."""
    await _stream_with_events(js, stream_name, token, n=2)
    consumer = await EventConsumer.create(js, stream_name, "service", ack_wait=30)
    seen: list[str] = []
    late = asyncio.Event()

    async def handler(event):
        seen.append(event.id)
        if len(seen) == 1:
            raise RuntimeError("first try fails")
        if len(seen) == 4:
            late.set()

    serving = asyncio.create_task(
        consumer.serve(handler, idle=0.1, retry_delay=0.05, unexpected="retry")
    )

    async def both_handled() -> bool:
        return len(seen) >= 3

    await wait_for(both_handled, timeout=5, what="both events, one retried")
    # several idle periods pass: the service is still there and takes a late event
    await publish_events(js, [EventFactory(prefix="late-")(f"{token}.created")])
    await asyncio.wait_for(late.wait(), 5)
    assert not serving.done()
    consumer.stop()
    report = await asyncio.wait_for(serving, 5)
    assert (report.handled, report.acked, report.retried) == (4, 3, 1)


async def test_cancelling_a_service_propagates(js, stream_name, token) -> None:
    """A cancel from outside is not a stop: serve() lets CancelledError out."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    consumer = await EventConsumer.create(js, stream_name, "cancelled")

    async def handler(event):
        pass

    serving = asyncio.create_task(consumer.serve(handler, idle=30))

    async def waiting() -> bool:
        return (await consumer.info()).num_waiting == 1

    await wait_for(waiting, timeout=5, what="the service's pull request")
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
