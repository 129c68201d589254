"""Each exercise checker accepts a correct solution and rejects a wrong one, on the live server."""

from __future__ import annotations

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy, SubjectTransform
from pydantic import BaseModel

from edalab import (
    EventConsumer,
    SchemaRegistry,
    TransientError,
    fresh_stream,
    publish_event,
    publish_events,
)
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


async def test_04_careful_consumer_needs_redeliveries(js) -> None:  # type: ignore[no-untyped-def]
    """Without a transient failure there is no redelivery, and the check says so."""
    make = EventFactory()
    await fresh_stream(js, "TASKS", ["task.>"])
    await publish_events(js, [make("task.created") for _ in range(2)])
    careful = await EventConsumer.create(
        js, "TASKS", "careful", max_deliver=4, backoff=[0.1, 0.2, 0.3]
    )

    async def ok(event):  # type: ignore[no-untyped-def]
        return None

    await careful.run(ok, timeout=0.3, max_events=1)
    wrong = await check("06", js)
    assert not wrong.passed

    async def flaky(event, delivery):  # type: ignore[no-untyped-def]
        if delivery.num_delivered == 1:
            raise TransientError("first try", delay=0.05)

    await careful.run(flaky, timeout=0.5)
    result = await check("06", js)
    assert result.passed, result.message


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
    assert (await check("07", js)).passed


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
    assert (await check("18", js)).passed


async def test_a_check_on_a_closed_connection_says_so_in_one_line(nats_url: str) -> None:
    """After `await nc.close()`, check() explains how to reconnect instead of a traceback."""
    from edalab.connection import connect

    nc = await connect(nats_url)
    js = nc.jetstream()
    await nc.close()
    result = await check("03", js)
    assert not result.passed
    assert "closed" in result.message and "connect()" in result.message
    assert "\n" not in repr(result)


async def _prices(js, per_symbol: int, **config) -> None:  # type: ignore[no-untyped-def]
    await fresh_stream(js, "PRICES", ["price.*"], **config)
    for symbol in ("AAPL", "MSFT", "NVDA"):
        for price in range(per_symbol):
            await js.publish(f"price.{symbol}", str(price).encode())


async def test_ex04_last_value_per_key_passes(js) -> None:  # type: ignore[no-untyped-def]
    """A max_msgs_per_subject=1 stream with two updates per symbol passes, probe cleaned up."""
    await _prices(js, 2, max_msgs_per_subject=1)
    result = await check("04", js)
    assert result.passed, result.message
    info = await js.stream_info("PRICES")
    assert info.state.messages == 3, "the checker's probe key must be purged"


async def test_ex04_plain_stream_keeps_every_price(js) -> None:  # type: ignore[no-untyped-def]
    """A stream without a per-subject limit keeps old prices, and the check names them."""
    await _prices(js, 2)
    result = await check("04", js)
    assert not result.passed and "max_msgs_per_subject=1" in result.message


async def test_ex04_no_update_replaced_anything(js) -> None:  # type: ignore[no-untyped-def]
    """The right limit but a single price per symbol: nothing was replaced, and it says so."""
    await _prices(js, 1, max_msgs_per_subject=1)
    result = await check("04", js)
    assert not result.passed and "at least two per symbol" in result.message


async def test_ex04_refusing_updates_is_not_last_value(js) -> None:  # type: ignore[no-untyped-def]
    """One message per symbol held by discard-new-per-subject refuses updates: the probe fails."""
    await fresh_stream(
        js,
        "PRICES",
        ["price.*"],
        max_msgs_per_subject=1,
        discard=DiscardPolicy.NEW,
        discard_new_per_subject=True,
    )
    for symbol in ("AAPL", "MSFT", "NVDA"):
        await js.publish(f"price.{symbol}", b"1")
    for i in range(3):
        await js.publish(f"price.OTHER{i}", b"1")
    result = await check("04", js)
    assert not result.passed and "refused an update" in result.message


async def _shipments(js, partitions: int, *, ack: bool = True) -> None:  # type: ignore[no-untyped-def]
    dest = f"shipment.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}"
    transform = SubjectTransform(src="shipment.*", dest=dest)
    await fresh_stream(js, "SHIPMENTS", ["shipment.*"], subject_transform=transform)
    for key in ("s1", "s2", "s3", "s4", "s5", "s6"):
        await js.publish(f"shipment.{key}", b"{}")
    for p in range(4):
        config = ConsumerConfig(max_ack_pending=1)
        sub = await js.pull_subscribe(
            f"shipment.{p}.*", durable=f"ship-{p}", stream="SHIPMENTS", config=config
        )
        while ack and (await sub.consumer_info()).num_pending:
            [msg] = await sub.fetch(1, timeout=5)
            await msg.ack_sync()


async def test_ex14_four_partitions_pass_twice(js) -> None:  # type: ignore[no-untyped-def]
    """Four partitions, one in-order consumer each, all acked: passes, and again after probes."""
    await _shipments(js, 4)
    first = await check("14", js)
    assert first.passed, first.message
    second = await check("14", js)
    assert second.passed, second.message


async def test_ex14_unprocessed_partitions_fail(js) -> None:  # type: ignore[no-untyped-def]
    """The right stream and consumers, but nothing processed: the check says what is left."""
    await _shipments(js, 4, ack=False)
    result = await check("14", js)
    assert not result.passed and "events to deliver" in result.message


async def test_ex14_unpartitioned_stream_fails(js) -> None:  # type: ignore[no-untyped-def]
    """A stream without the partition transform fails, naming the destination to use."""
    await fresh_stream(js, "SHIPMENTS", ["shipment.*"])
    result = await check("14", js)
    assert not result.passed and "partition(4,1)" in result.message


async def test_ex14_overlapping_consumers_fail(js) -> None:  # type: ignore[no-untyped-def]
    """Four drained in-order consumers, but two share partition 0 and none reads 3: it fails."""
    await _shipments(js, 4)
    await js.delete_consumer("SHIPMENTS", "ship-3")
    sub = await js.pull_subscribe(
        "shipment.0.*",
        durable="ship-3",
        stream="SHIPMENTS",
        config=ConsumerConfig(max_ack_pending=1),
    )
    while (await sub.consumer_info()).num_pending:
        [msg] = await sub.fetch(1, timeout=5)
        await msg.ack_sync()
    result = await check("14", js)
    assert not result.passed
    assert "consumers ['ship-0', 'ship-3'] receive" in result.message or (
        "no consumer receives" in result.message
    )
