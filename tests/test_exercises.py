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
from edalab.course.exercises import EXERCISES, check
from edalab.course.manifest import LESSONS
from edalab.testing import EventFactory


async def test_03_dedup_needs_a_dropped_resend(js) -> None:  # type: ignore[no-untyped-def]
    """03 passes only when a resend was answered duplicate and not stored, in a 300 s window."""
    make = EventFactory()
    orders = [make("order.placed") for _ in range(3)]
    await fresh_stream(js, "ORDERS", ["order.>"])
    acks = await publish_events(js, orders)
    acks.append(await publish_event(js, orders[0]))
    wrong = await check("03", js, acks)
    assert not wrong.passed and "duplicate window is 120s" in wrong.message
    await fresh_stream(js, "ORDERS", ["order.>"], duplicate_window=300)
    acks = await publish_events(js, orders)
    acks.append(await publish_event(js, orders[0]))
    assert [(a.seq, bool(a.duplicate)) for a in acks] == [
        (1, False),
        (2, False),
        (3, False),
        (1, True),
    ]
    result = await check("03", js, acks)
    assert result.passed, result.message
    assert "evt-0001" in result.message and "sequence 1" in result.message
    missing = await check("03", js)
    assert not missing.passed and "pass the PubAcks" in missing.message


async def test_03_right_window_but_resend_stored_fails(js) -> None:  # type: ignore[no-untyped-def]
    """Window right, but a resend without Nats-Msg-Id was stored: the check names the sequences."""
    make = EventFactory()
    orders = [make("order.placed") for _ in range(3)]
    await fresh_stream(js, "ORDERS", ["order.>"], duplicate_window=300)
    acks = await publish_events(js, orders)
    acks.append(await js.publish("order.placed", orders[0].to_json()))  # no Nats-Msg-Id
    result = await check("03", js, acks)
    assert not result.passed
    assert "none of your 4 PubAcks says duplicate=True" in result.message
    assert "(sequences 1, 2, 3, 4)" in result.message
    only_three = await check("03", js, acks[:3])
    assert not only_three.passed and "none of your 3 PubAcks" in only_three.message
    assert not (await check("03", js, ["not an ack"])).passed


async def test_05_billing_must_deliver_and_ack(js) -> None:  # type: ignore[no-untyped-def]
    """billing right in config fails until it delivered and acknowledged every order.placed."""
    make = EventFactory(prefix="t05-")
    await fresh_stream(js, "ORDERS", ["order.>"])
    acks = await publish_events(
        js, [make("order.placed"), make("order.shipped"), make("order.placed")]
    )
    assert [(a.seq, a.duplicate) for a in acks] == [(1, None), (2, None), (3, None)], acks
    missing = await check("05", js)
    assert not missing.passed and "no consumer 'billing'" in missing.message
    billing = await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.placed")
    idle = await check("05", js)
    assert not idle.passed and "delivered none" in idle.message
    first = await billing.fetch(1, timeout=1)
    assert [d.seq for d in first] == [1]
    unacked = await check("05", js)
    assert not unacked.passed
    assert "delivered up to sequence 1 and acknowledged up to 0" in unacked.message
    await first[0].ack(sync=True)
    half = await check("05", js)
    assert not half.passed and "never delivered" in half.message

    async def ok(event):  # type: ignore[no-untyped-def]
        return None

    await billing.run(ok, timeout=0.3)
    result = await check("05", js)
    assert result.passed, result.message
    assert "all 2 order.placed events (up to sequence 3)" in result.message, result.message


async def test_05_billing_wrong_filter(js) -> None:  # type: ignore[no-untyped-def]
    """A billing consumer that reads every order subject fails, naming its filter."""
    make = EventFactory()
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed")])
    await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.*")
    result = await check("05", js)
    assert not result.passed and "order.*" in result.message


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


async def test_02_patterns_right(nc) -> None:  # type: ignore[no-untyped-def]
    """The two patterns the mailer needs receive exactly the wanted probes, once each."""
    result = await check("02", nc, ["user.*.updated", "user.deleted"])
    assert result.passed, result.message
    assert "exactly the 4" in result.message


async def test_02_patterns_wrong(nc) -> None:  # type: ignore[no-untyped-def]
    """Too wide, too narrow and overlapping patterns fail, saying what the server delivered."""
    wide = await check("02", nc, "user.>")
    assert not wide.passed
    assert "not wanted user.created, user.profile.viewed, user.profile.photo.updated" in (
        wide.message
    )
    listed = await check("02", nc, ["user.profile.updated", "user.email.updated", "user.deleted"])
    assert not listed.passed and "missing user.address.updated" in listed.message
    overlap = await check("02", nc, ["user.*.updated", "user.deleted", "*.deleted"])
    assert not overlap.passed and "user.deleted x2" in overlap.message
    assert "more than once user.deleted" in overlap.message
    bad = await check("02", nc, ["user.>.updated"])
    assert not bad.passed and "'>' must be the last token" in bad.message


async def test_closed_connection_is_one_line(nats_url) -> None:  # type: ignore[no-untyped-def]
    """A check on a closed connection says so and how to reconnect, without a traceback."""
    from edalab import connect

    nc = await connect(nats_url)
    js = nc.jetstream()
    await nc.close()
    result = await check("05", js)
    assert not result.passed and "connection is closed" in result.message
    assert "nc = await connect(server)" in result.message


async def test_02_needs_a_live_connection(nats_url) -> None:  # type: ignore[no-untyped-def]
    """A closed connection or a JetStream context is refused with what to do."""
    from edalab import connect

    nc = await connect(nats_url)
    not_nc = await check("02", nc.jetstream(), ["user.*.updated"])
    assert not not_nc.passed and "pass your connection" in not_nc.message
    await nc.close()
    closed = await check("02", nc, ["user.*.updated", "user.deleted"])
    assert not closed.passed and "closed" in closed.message


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
