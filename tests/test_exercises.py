"""Each exercise checker accepts a correct solution and rejects a wrong one, on the live server."""

from __future__ import annotations

import pytest
from nats.js.api import DeliverPolicy
from pydantic import BaseModel

from edalab import (
    EventConsumer,
    SchemaRegistry,
    TransientError,
    fresh_stream,
    publish_event,
    publish_events,
)
from edalab.course.charts.redelivery import DeliveryLog
from edalab.course.exercises import EXERCISES, check
from edalab.course.manifest import LESSONS
from edalab.testing import EventFactory


async def test_02_dedup_window_and_three_orders(js) -> None:  # type: ignore[no-untyped-def]
    """The default (2 minute) duplicate window fails; 300 s with three distinct orders passes."""
    make = EventFactory()
    orders = [make("order.placed") for _ in range(3)]
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, orders)
    wrong = await check("03", js)
    assert not wrong.passed and "duplicate window" in wrong.message
    await fresh_stream(js, "ORDERS", ["order.>"], duplicate_window=300)
    await publish_events(js, [*orders, orders[0]])
    assert (await check("03", js)).passed
    await publish_event(js, make("order.placed"))
    too_many = await check("03", js)
    assert not too_many.passed and "holds 4" in too_many.message


async def test_03_billing_consumer(js) -> None:  # type: ignore[no-untyped-def]
    """billing must filter order.placed and have acknowledged everything."""
    make = EventFactory()
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed"), make("order.shipped"), make("order.placed")])
    missing = await check("05", js)
    assert not missing.passed and "no consumer 'billing'" in missing.message
    billing = await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.placed")
    unprocessed = await check("05", js)
    assert not unprocessed.passed and "acknowledged" in unprocessed.message

    async def ok(event):  # type: ignore[no-untyped-def]
        return None

    await billing.run(ok, timeout=0.3)
    assert (await check("05", js)).passed


async def _careful(js):  # type: ignore[no-untyped-def]
    """TASKS with one task and a fresh consumer careful configured as the exercise asks."""
    await fresh_stream(js, "TASKS", ["task.>"])
    await publish_events(js, [EventFactory()("task.created")])
    return await EventConsumer.create(
        js, "TASKS", "careful", max_deliver=4, backoff=[0.2, 0.4, 0.8], recreate=True
    )


async def _fail_three_times(event, delivery):  # type: ignore[no-untyped-def]
    if delivery.num_delivered < 4:
        raise TransientError("not yet")


async def test_06_backoff_observed_passes(js) -> None:  # type: ignore[no-untyped-def]
    """Three failures left to expire come back on the backoff's schedule, and the check passes."""
    careful = await _careful(js)
    log = DeliveryLog()
    await careful.run(_fail_three_times, timeout=2, on_transient="let_expire", observer=log.observe)
    assert [r.delivery for r in log.records] == [1, 2, 3, 4]
    result = await check("06", js, log)
    assert result.passed, result.message
    assert "0.2, 0.4, 0.8" in result.message


async def test_06_without_log_or_redeliveries_fails(js) -> None:  # type: ignore[no-untyped-def]
    """No log, or a handler that never fails, is not the exercise; the check says why."""
    careful = await _careful(js)
    assert "pass the DeliveryLog" in (await check("06", js)).message

    async def ok(event):  # type: ignore[no-untyped-def]
        return None

    log = DeliveryLog()
    await careful.run(ok, timeout=0.5, observer=log.observe)
    wrong = await check("06", js, log)
    assert not wrong.passed and "all four deliveries" in wrong.message


async def test_06_right_config_but_naks_fails(js) -> None:  # type: ignore[no-untyped-def]
    """Backoff configured, but the handler's naks set the timing: the check shows the gap."""
    careful = await _careful(js)
    log = DeliveryLog()

    async def nak_soon(event, delivery):  # type: ignore[no-untyped-def]
        if delivery.num_delivered < 4:
            raise TransientError("not yet", delay=0.05)

    await careful.run(nak_soon, timeout=2, observer=log.observe)
    assert [r.delivery for r in log.records] == [1, 2, 3, 4]
    wrong = await check("06", js, log)
    assert not wrong.passed
    assert "after delivery 1; your backoff says 0.2 s" in wrong.message
    assert "on_transient='let_expire'" in wrong.message


async def test_06_stale_log_fails(js) -> None:  # type: ignore[no-untyped-def]
    """A log from an earlier run does not pass once careful has delivered more since."""
    careful = await _careful(js)
    log = DeliveryLog()
    await careful.run(_fail_three_times, timeout=2, on_transient="let_expire", observer=log.observe)
    await publish_events(js, [EventFactory(prefix="again-")("task.created")])
    await careful.run(_fail_three_times, timeout=2, on_transient="let_expire")
    stale = await check("06", js, log)
    assert not stale.passed and "fresh DeliveryLog" in stale.message


async def test_05_audit_from_sequence_3(js) -> None:  # type: ignore[no-untyped-def]
    """A durable replaying from the start is not what was asked."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_events(js, [make("user.created") for _ in range(5)])
    await EventConsumer.create(js, "USERS", "audit")
    wrong = await check("07", js)
    assert not wrong.passed and "by_start_sequence" in wrong.message
    audit = await EventConsumer.create(
        js,
        "USERS",
        "audit",
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=3,
        recreate=True,
    )
    seqs = []
    async for delivery in audit.events(timeout=0.3):
        seqs.append(delivery.seq)
        await delivery.ack(sync=True)
    assert seqs == [3, 4, 5]
    result = await check("07", js)
    assert result.passed and "3..5, each delivered once" in result.message


async def test_07_right_config_but_redelivered_fails(js) -> None:  # type: ignore[no-untyped-def]
    """audit configured right, but an event nak'ed before its ack: the check counts redeliveries."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_events(js, [make("user.created") for _ in range(5)])
    audit = await EventConsumer.create(
        js,
        "USERS",
        "audit",
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=3,
        recreate=True,
    )
    untouched = await check("07", js)
    assert not untouched.passed and "3 events to deliver" in untouched.message
    async for delivery in audit.events(timeout=0.3):
        if delivery.num_delivered == 1 and delivery.seq == 4:
            await delivery.nak()
        else:
            await delivery.ack(sync=True)
    wrong = await check("07", js)
    assert not wrong.passed
    assert "made 4 deliveries for the 3 events 3..5" in wrong.message
    assert "recreate=True" in wrong.message


async def test_06_two_filters(js) -> None:  # type: ignore[no-untyped-def]
    """Exactly the two filters pass; one of them alone does not."""
    await fresh_stream(js, "USERS", ["user.>"])
    await EventConsumer.create(js, "USERS", "profile-watch", filter_subject="user.deleted")
    assert not (await check("02", js)).passed
    await EventConsumer.create(
        js, "USERS", "profile-watch", filter_subjects=["user.*.updated", "user.deleted"]
    )
    assert (await check("02", js)).passed


class V3(BaseModel):
    user_id: str


class V4(V3):
    country: str = "unknown"


class V4Breaking(V3):
    country: str


async def test_07_v4_registry(js) -> None:  # type: ignore[no-untyped-def]
    """v4 must exist, be compatible with v3, and upcast every stored event."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_event(js, make("user.created", {"user_id": "a"}, version=3))
    registry = SchemaRegistry()
    registry.register("user.created", 3, V3)
    assert "add version 4" in (await check("08", js, registry)).message
    registry.register("user.created", 4, V4Breaking)
    registry.upcaster("user.created", 3)(lambda d: {**d, "country": "nl"})
    assert "breaks" in (await check("08", js, registry)).message
    registry.register("user.created", 4, V4)
    assert (await check("08", js, registry)).passed
    assert not (await check("08", js)).passed


async def test_08_right_model_but_stored_events_do_not_replay(js) -> None:  # type: ignore[no-untyped-def]
    """v4 registered and compatible, but a stored v3 event cannot be upcast: the check says why."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_event(js, make("user.created", {"user_id": "a"}, version=3))
    registry = SchemaRegistry()
    registry.register("user.created", 3, V3)
    registry.register("user.created", 4, V4)
    missing = await check("08", js, registry)
    assert not missing.passed
    assert "sequence 1 (version 3) does not replay as version 4" in missing.message
    assert "no upcaster to version 4" in missing.message
    assert "@registry.upcaster('user.created', n)" in missing.message
    registry.upcaster("user.created", 3)(lambda d: {**d, "country": 7})
    invalid = await check("08", js, registry)
    assert not invalid.passed and "valid string" in invalid.message
    assert "\n" not in invalid.message


async def test_unknown_exercise_is_an_error(js) -> None:  # type: ignore[no-untyped-def]
    """A typo in the exercise key is reported with the known keys."""
    with pytest.raises(ValueError, match="known: 02"):
        await check("99", js)
    assert list(EXERCISES) == [x.number for x in LESSONS if x.exercise]


async def test_08_dead_letters_cleared_and_fix_replayed(js) -> None:  # type: ignore[no-untyped-def]
    """Letters left fail; the corrected payment replayed and processed passes."""
    from edalab import DeadLetters, Event, PermanentError

    dead = DeadLetters(js)
    await dead.setup()
    await js.purge_stream(dead.stream)
    await fresh_stream(js, "PAYMENTS", ["payment.>"])
    await publish_events(js, [EventFactory()("payment.captured", {"amount_cents": -1})])
    payments = await EventConsumer.create(js, "PAYMENTS", "payments")

    async def book(event):  # type: ignore[no-untyped-def]
        if event.data["amount_cents"] < 0:
            raise PermanentError("negative")

    await payments.run(book, timeout=0.3, double_ack=True)
    [letter] = await dead.wait_for(1)
    assert "remain" in (await check("09", js)).message
    original = Event.from_json((await dead.original(letter)).data)
    fixed = original.model_copy(update={"data": {"amount_cents": 100}})
    await dead.replay(letter, data=fixed.to_json())
    await payments.run(book, timeout=0.3, double_ack=True)
    assert (await check("09", js)).passed


async def test_09_auditor_permissions(js) -> None:  # type: ignore[no-untyped-def]
    """An auditor who may publish fails; one limited to reading order.> passes."""
    from edalab import NatsServer, User, authorization_config

    loose = User("auditor", password="pw", subscribe=["order.>"])
    with NatsServer(config=authorization_config([loose])) as srv:
        result = await check("12", js, url=srv.url, user="auditor", password="pw")
        assert not result.passed and "may publish" in result.message
        wrong_pw = await check("12", js, url=srv.url, user="auditor", password="nope")
        assert "cannot log in" in wrong_pw.message
    strict = User("auditor", password="pw", publish=[], subscribe=["order.>"])
    with NatsServer(config=authorization_config([strict])) as srv:
        assert (await check("12", js, url=srv.url, user="auditor", password="pw")).passed


async def test_10_r3_audit_stream(js) -> None:  # type: ignore[no-untyped-def]
    """A single-replica AUDIT fails (the session server is not a cluster); R3 passes."""
    from edalab import connect, ensure_stream
    from edalab.cluster import NatsCluster

    await fresh_stream(js, "AUDIT", ["audit.>"])
    assert "1 replica" in (await check("13", js)).message
    with NatsCluster(3) as cluster:
        nc = await connect(cluster.urls)
        cjs = nc.jetstream()
        await ensure_stream(cjs, "AUDIT", ["audit.>"], num_replicas=3)
        make = EventFactory()
        await publish_events(cjs, [make("audit.note") for _ in range(150)])
        assert "150 messages" in (await check("13", cjs)).message
        await publish_events(cjs, [make("audit.note") for _ in range(50)])
        from edalab.cluster import wait_until_current

        await wait_until_current(cjs, "AUDIT")
        assert (await check("13", cjs)).passed
        await nc.close()


async def test_13_translated_subscription(js) -> None:  # type: ignore[no-untyped-def]
    """Forgetting MaxInflight fails; the full translation, drained, passes."""
    from edalab import Event, publish_event

    await fresh_stream(js, "MIGRATION", ["events"])
    for i in range(3):
        await publish_event(js, Event.create("user.created", "{}", id=f"m{i}"), subject="events")
    opts = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": 2, "ack_wait": 10}
    await EventConsumer.create(js, "MIGRATION", "billing", **opts)
    assert "max_ack_pending=5" in (await check("18", js)).message
    billing = await EventConsumer.create(
        js, "MIGRATION", "billing", max_ack_pending=5, recreate=True, **opts
    )
    async for delivery in billing.events(timeout=0.3):
        await delivery.ack(sync=True)
    result = await check("18", js)
    assert result.passed and "2..3, each delivered once" in result.message


async def _stan_translation(js, cb):  # type: ignore[no-untyped-def]
    """MIGRATION with 3 messages and billing as a manual-ack callback subscription."""
    import asyncio

    from nats.js.api import ConsumerConfig

    from edalab import Event, publish_event

    await fresh_stream(js, "MIGRATION", ["events"])
    for i in range(3):
        await publish_event(js, Event.create("user.created", "{}", id=f"m{i}"), subject="events")
    got: asyncio.Queue[int] = asyncio.Queue()

    async def handler(msg):  # type: ignore[no-untyped-def]
        await cb(msg)
        await got.put(msg.metadata.sequence.stream)

    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=2,
        ack_wait=10,
        max_ack_pending=5,
    )
    sub = await js.subscribe(
        "events", cb=handler, durable="billing", stream="MIGRATION", manual_ack=True, config=config
    )
    seqs = [await asyncio.wait_for(got.get(), timeout=10) for _ in range(2)]
    return sub, seqs


async def test_18_manual_ack_callback_passes(js) -> None:  # type: ignore[no-untyped-def]
    """SetManualAckMode as manual_ack=True with a callback that acks passes."""

    async def ack(msg):  # type: ignore[no-untyped-def]
        await msg.ack()

    sub, seqs = await _stan_translation(js, ack)
    assert seqs == [2, 3]
    result = await check("18", js)
    await sub.unsubscribe()
    assert result.passed, result.message


async def test_18_right_config_but_no_ack_fails(js) -> None:  # type: ignore[no-untyped-def]
    """Config right, manual_ack=True, but the callback never acks: the check says so."""

    async def forget(msg):  # type: ignore[no-untyped-def]
        return None

    sub, seqs = await _stan_translation(js, forget)
    assert seqs == [2, 3]
    wrong = await check("18", js)
    await sub.unsubscribe()
    assert not wrong.passed
    assert "delivered 2 message(s) that nobody acknowledged" in wrong.message
    assert "await msg.ack()" in wrong.message
