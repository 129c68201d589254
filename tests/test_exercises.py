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
from edalab.course.charts.redelivery import DeliveryLog
from edalab.course.exercises import EXERCISES, check
from edalab.course.manifest import LESSONS
from edalab.factories import EventFactory


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
    audit = await _audit_from_3(js)
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
    audit = await _audit_from_3(js)
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


async def _stored_v3(js) -> SchemaRegistry:  # type: ignore[no-untyped-def]
    """A USERS stream holding one v3 user.created, and a registry that knows v3."""
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_event(js, EventFactory()("user.created", {"user_id": "a"}, version=3))
    registry = SchemaRegistry()
    registry.register("user.created", 3, V3)
    return registry


async def test_07_v4_registry(js) -> None:  # type: ignore[no-untyped-def]
    """v4 must exist, be compatible with v3, and upcast every stored event."""
    registry = await _stored_v3(js)
    assert "add version 4" in (await check("08", js, registry)).message
    registry.register("user.created", 4, V4Breaking)
    registry.upcaster("user.created", 3)(lambda d: {**d, "country": "nl"})
    assert "breaks" in (await check("08", js, registry)).message
    registry.register("user.created", 4, V4)
    assert (await check("08", js, registry)).passed
    assert not (await check("08", js)).passed


async def test_08_right_model_but_stored_events_do_not_replay(js) -> None:  # type: ignore[no-untyped-def]
    """v4 registered and compatible, but a stored v3 event cannot be upcast: the check says why."""
    registry = await _stored_v3(js)
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
    with pytest.raises(ValueError, match="known: 00, 01, 02"):
        await check("99", js)
    assert list(EXERCISES) == [x.number for x in LESSONS if x.exercise]


async def test_09_ledger_each_entry_once_with_its_msg_id(js) -> None:  # type: ignore[no-untyped-def]
    """Retried without Nats-Msg-Id fails (stored twice); missing entries fail; once each passes."""
    make = EventFactory(prefix="led-")
    entries = [make("ledger.entry", {"n": i}) for i in range(200)]
    await fresh_stream(js, "LEDGER", ["ledger.>"])
    for event in entries[:150]:  # right stream, but the retry has no Nats-Msg-Id
        await js.publish(event.type, event.to_json())
    await js.publish(entries[0].type, entries[0].to_json())
    wrong = await check("09", js)
    assert not wrong.passed and "Nats-Msg-Id" in wrong.message
    await fresh_stream(js, "LEDGER", ["ledger.>"])
    await publish_events(js, entries[:150])
    short = await check("09", js)
    assert not short.passed and "150 of the 200" in short.message
    await publish_events(js, entries)  # all 200 again: the first 150 are duplicates
    result = await check("09", js)
    assert result.passed, result.message


async def test_10_charge_once_across_racing_workers(js) -> None:  # type: ignore[no-untyped-def]
    """A put (bucket right, behaviour wrong) and an in-memory guard fail; record() passes."""
    import asyncio

    from edalab import ProcessedIds

    async def record(event) -> None:  # type: ignore[no-untyped-def]
        await charges.record(event.id, b"1")

    assert "no key-value bucket" in (await check("10", js, record)).message
    charges = await ProcessedIds.open(js, "charges", history=5, fresh=True)

    async def put(event) -> None:  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        await charges.kv.put(event.id, b"1")

    wrong = await check("10", js, put)
    assert not wrong.passed and "3 times" in wrong.message
    done: set[str] = set()

    async def in_memory(event) -> None:  # type: ignore[no-untyped-def]
        if event.id not in done:
            done.add(event.id)
            await charges.kv.put(event.id, b"1")

    local = await check("10", js, in_memory)
    assert not local.passed and "another process had charged" in local.message

    async def raises(event) -> None:  # type: ignore[no-untyped-def]
        await charges.kv.create(event.id, b"1")

    assert "return normally" in (await check("10", js, raises)).message
    result = await check("10", js, record)
    assert result.passed, result.message


async def _payments_with_letters(js):  # type: ignore[no-untyped-def]
    """PAYMENTS with payments and audit consumers; payments rejects a negative amount."""
    from edalab import DeadLetters, PermanentError

    dead = DeadLetters(js)
    await dead.setup(fresh=True)
    await fresh_stream(js, "PAYMENTS", ["payment.>"])
    await publish_events(js, [EventFactory()("payment.captured", {"amount_cents": -1})])
    payments = await EventConsumer.create(js, "PAYMENTS", "payments")
    audit = await EventConsumer.create(js, "PAYMENTS", "audit")

    async def book(event):  # type: ignore[no-untyped-def]
        if event.data["amount_cents"] < 0:
            raise PermanentError("negative")

    async def record(event):  # type: ignore[no-untyped-def]
        pass

    await payments.run(book, timeout=0.3)
    await audit.run(record, timeout=0.3)
    [letter] = await dead.wait_for(1)
    return dead, letter, book, audit, record


async def test_11_fix_replayed_to_payments_only(js) -> None:  # type: ignore[no-untyped-def]
    """Letters left fail; the fix replayed to payments and handled by its reader passes."""
    from edalab import Event

    dead, letter, book, _, _ = await _payments_with_letters(js)
    assert "remain" in (await check("11", js)).message
    original = Event.from_json((await dead.original(letter)).data)
    fixed = original.model_copy(update={"data": {"amount_cents": 100}})
    await dead.replay(letter, data=fixed.to_json())
    replays = await dead.replays("PAYMENTS", "payments")
    unhandled = await check("11", js)
    assert not unhandled.passed and "has not handled the replay" in unhandled.message
    await replays.run(book, timeout=0.3)
    result = await check("11", js)
    assert result.passed, result.message


async def test_11_fix_published_to_the_original_subject_fails(js) -> None:  # type: ignore[no-untyped-def]
    """Reader in place and letter discarded, but the fix went to PAYMENTS: audit got it."""
    from edalab import Event

    dead, letter, _, audit, record = await _payments_with_letters(js)
    await dead.replays("PAYMENTS", "payments")  # the reader exists: the configuration is right
    original = Event.from_json((await dead.original(letter)).data)
    fixed = original.model_copy(update={"data": {"amount_cents": 100}}, deep=True)
    await js.publish("payment.captured", fixed.to_json())
    await dead.discard(letter)
    await audit.run(record, timeout=0.3)
    result = await check("11", js)
    assert not result.passed and "audit too" in result.message


async def _check_12_with(auditor, password: str = "pw"):  # type: ignore[no-untyped-def]
    """Run checker 12 against a fresh server whose users are an admin and ``auditor``."""
    from edalab import (
        NatsServer,
        User,
        authorization_config,
        connect,
        ensure_consumer,
        ensure_stream,
    )

    admin = User("admin", password="admin-pw")
    with NatsServer(config=authorization_config([admin, auditor])) as srv:
        nc = await connect(srv.url, user="admin", password="admin-pw")
        ajs = nc.jetstream()
        await ensure_stream(ajs, "SHOP", ["order.>", "payment.>"])
        await ensure_consumer(ajs, "SHOP", "audit", filter_subject="order.>")
        result = await check("12", ajs, url=srv.url, user="auditor", password=password)
        await nc.close()
    return result


async def test_12_least_privilege_auditor_passes() -> None:
    """An auditor allowed only its consumer's fetch/ack subjects and its own inbox passes."""
    from edalab import User, jetstream_user

    auditor = jetstream_user(
        User("auditor", password="pw", publish=[]), consume=[("SHOP", "audit")]
    )
    result = await _check_12_with(auditor)
    assert result.passed, result.message
    assert (await _check_12_with(auditor, password="nope")).message.endswith(
        "cannot log in with that password"
    )


async def test_12_auditor_with_the_whole_api_fails() -> None:
    """An auditor granted $JS.API.> (it could delete any stream) fails, and the checker says why."""
    from edalab import User

    wide = User(
        "auditor",
        password="pw",
        publish=["$JS.API.>", "$JS.ACK.>"],
        subscribe=["_INBOX_auditor.>"],
    )
    result = await _check_12_with(wide)
    assert not result.passed and "may delete streams" in result.message


async def test_12_fetch_allowed_but_ack_refused_fails() -> None:
    """Configured to fetch but with the ack subject of another consumer: it fetches, the
    server refuses the ack, and the checker reports the refused ack it observed."""
    from edalab import User

    typo = User(
        "auditor",
        password="pw",
        publish=["$JS.API.CONSUMER.MSG.NEXT.SHOP.audit", "$JS.ACK.SHOP.audits.>"],
        subscribe=["_INBOX_auditor.>"],
    )
    result = await _check_12_with(typo)
    assert not result.passed
    assert "refused its ack" in result.message and "$JS.ACK.SHOP.audit.>" in result.message


async def test_12_shared_inbox_fails() -> None:
    """An auditor who may subscribe to the shared _INBOX.> could read others' replies: fails."""
    from edalab import User, consumer_permissions

    shared = User(
        "auditor",
        password="pw",
        publish=consumer_permissions("SHOP", "audit"),
        subscribe=["_INBOX_auditor.>", "_INBOX.>"],
    )
    result = await _check_12_with(shared)
    assert not result.passed and "may subscribe to _INBOX.>" in result.message


async def test_13_r3_audit_stream(js) -> None:  # type: ignore[no-untyped-def]
    """R1 fails; R3 with a follower still down fails (configuration right, behaviour not);
    events stored twice fail; R3, 200 distinct events, every follower current, passes."""
    from edalab import connect, ensure_stream
    from edalab.cluster import NatsCluster, stream_leader, wait_until_current

    await fresh_stream(js, "AUDIT", ["audit.>"])
    assert "1 replica" in (await check("13", js)).message
    with NatsCluster(3) as cluster:
        nc = await connect(cluster.urls, max_reconnect_attempts=-1)
        cjs = nc.jetstream()
        await ensure_stream(cjs, "AUDIT", ["audit.>"], num_replicas=3)
        make = EventFactory()
        await publish_events(cjs, [make("audit.note") for _ in range(100)])
        leader = await stream_leader(cjs, "AUDIT")
        follower = next(n for n in cluster.running_nodes() if n != leader)
        cluster.kill(follower)
        await publish_events(cjs, [make("audit.note") for _ in range(100)], retry_for=30)
        down = await check("13", cjs)
        assert not down.passed and f"caught up: {follower} (" in down.message, down.message
        cluster.start_node(follower)
        await wait_until_current(cjs, "AUDIT", timeout=60)
        result = await check("13", cjs)
        assert result.passed, result.message

        await cjs.purge_stream("AUDIT")
        twice = [make("audit.note") for _ in range(100)]
        for event in twice + twice:  # no Nats-Msg-Id: the server cannot drop the copies
            await cjs.publish("audit.note", event.to_json())
        await wait_until_current(cjs, "AUDIT", timeout=60)
        dup = await check("13", cjs)
        assert not dup.passed and "100 distinct event ids" in dup.message, dup.message
        await nc.close()


async def _paid_shop(js):  # type: ignore[no-untyped-def]
    """A capstone shop with two users and three paid orders, services stopped."""
    from edalab.course.shop import Shop

    shop = Shop(js)
    shop.payments_bug = False
    async with shop.running():
        await shop.register_user("u1", "ann@example.com")
        await shop.register_user("u2", "bo@example.com")
        for order, user, cents in (("o1", "u1", 1250), ("o2", "u2", 990), ("o3", "u1", 500)):
            await shop.place_order(order, user, cents)
        await shop.settle()
    return shop


def _award_handler(js, *, derived: bool):  # type: ignore[no-untyped-def]
    """A loyalty handler; with ``derived`` its event id comes from the payment's id."""
    from edalab import Event
    from edalab.course.shop import PaymentCaptured, PointsAwarded

    async def award(event: Event) -> None:
        pay = event.payload(PaymentCaptured)
        points = PointsAwarded(
            user_id=pay.user_id, payment_id=event.id, points=pay.amount_cents // 100
        )
        award_id = f"points-for-{event.id}" if derived else None
        await publish_event(js, Event.create("shop.points.awarded", points, id=award_id))

    return award


async def _run_loyalty(js, handler) -> None:  # type: ignore[no-untyped-def]
    loyalty = await EventConsumer.create(
        js, "SHOP", "shop-loyalty", filter_subject="shop.payment.captured", recreate=True
    )
    await loyalty.run(handler, timeout=0.5, double_ack=True)


async def test_17_loyalty_awarded_once_even_when_redelivered(js) -> None:  # type: ignore[no-untyped-def]
    """A handler deriving the award's id passes, also run twice; without a handler or a
    loyalty run the checker says what is missing."""
    await _paid_shop(js)
    award = _award_handler(js, derived=True)
    assert "pass your handler" in (await check("17", js)).message
    assert "no consumer 'shop-loyalty'" in (await check("17", js, handler=award)).message
    await _run_loyalty(js, award)
    await _run_loyalty(js, award)  # reset and run again: a redelivery of everything
    result = await check("17", js, handler=award)
    assert result.passed, result.message
    assert "each of the 3 payments is awarded once" in result.message


async def test_17_random_award_ids_fail_on_redelivery(js) -> None:  # type: ignore[no-untyped-def]
    """Configuration right (shop-loyalty drained, one award per payment so far) but awards
    with fresh ids: the checker's redelivery stores second awards, and it says so."""
    await _paid_shop(js)
    award = _award_handler(js, derived=False)
    await _run_loyalty(js, award)
    result = await check("17", js, handler=award)
    assert not result.passed
    assert "3 payment(s) now have more than one award" in result.message, result.message


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


async def _audit_from_3(js):  # type: ignore[no-untyped-def]
    """Exercise 07's consumer, configured right: durable audit from stream sequence 3."""
    return await EventConsumer.create(
        js,
        "USERS",
        "audit",
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=3,
        recreate=True,
    )


async def _greet_right(nc, name):  # type: ignore[no-untyped-def]
    """A right answer written unlike the solution: a callback and a future."""
    import asyncio

    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_msg(msg):  # type: ignore[no-untyped-def]
        if not got.done():
            got.set_result(msg.data)

    sub = await nc.subscribe(f"hello.{name}", cb=on_msg)
    await nc.publish(f"hello.{name}", b"hello there")
    try:
        return await asyncio.wait_for(got, timeout=2)
    finally:
        await sub.unsubscribe()


async def _greet_publish_first(nc, name):  # type: ignore[no-untyped-def]
    """Wrong: publishes before subscribing, so the greeting is gone."""
    await nc.publish(f"hello.{name}", b"hi")
    sub = await nc.subscribe(f"hello.{name}")
    return await sub.next_msg(timeout=0.5)


async def _greet_fixed_name(nc, name):  # type: ignore[no-untyped-def]
    """Wrong: always greets Ann, whatever name it is given."""
    sub = await nc.subscribe("hello.ann")
    await nc.publish("hello.ann", b"hi")
    return await sub.next_msg(timeout=1)


async def _greet_not_awaited(nc, name):  # type: ignore[no-untyped-def]
    """Wrong: returns the coroutine of next_msg instead of the message."""
    sub = await nc.subscribe(f"hello.{name}")
    await nc.publish(f"hello.{name}", b"hi")
    return sub.next_msg(timeout=1)


async def test_00_greet_right_answers_pass(nc) -> None:  # type: ignore[no-untyped-def]
    """00 passes the solution's shape and a callback-and-future greet alike."""
    result = await check("00", nc, _greet_right, report=False)
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("greet", "said"),
    [
        (_greet_publish_first, "subscribe before you publish"),
        (_greet_fixed_name, "published nothing on hello.checker"),
        (_greet_not_awaited, "returned an awaitable"),
        (None, "greet is still None"),
    ],
    ids=["publish-first", "fixed-name", "not-awaited", "empty"],
)
async def test_00_greet_wrong_answers_say_why(nc, greet, said) -> None:  # type: ignore[no-untyped-def]
    """Wrong greets (and the empty answer cell's None) get "not yet" saying what to change."""
    result = await check("00", nc, greet, report=False)
    assert not result.passed and said in result.message, result.message


class _OrderRight(BaseModel):
    """Right, written differently: the fields in the other order."""

    amount_cents: int
    order_id: str


class _OrderStrAmount(BaseModel):
    order_id: str
    amount_cents: str


class _OrderFloatAmount(BaseModel):
    order_id: str
    amount_cents: float


class _OrderCamel(BaseModel):
    orderId: str  # the Go struct's names: a wrong answer
    amountCents: int


async def test_01_order_placed_right_answer_passes() -> None:
    """01 passes a model with the two fields, declared in another order."""
    result = await check("01", _OrderRight, report=False)  # type: ignore[arg-type]
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("model", "said"),
    [
        (_OrderStrAmount, "amount_cents: Input should be a valid string"),
        (_OrderFloatAmount, "accepted amount_cents 12.5"),
        (_OrderCamel, "declare the fields order_id: str and amount_cents: int"),
        (None, "is still None"),
    ],
    ids=["str-amount", "float-amount", "camel-case", "empty"],
)
async def test_01_order_placed_wrong_answers_say_why(model, said) -> None:  # type: ignore[no-untyped-def]
    """Models that accept bad payloads, or miss the fields, get "not yet" naming the case."""
    result = await check("01", model, report=False)
    assert not result.passed and said in result.message, result.message


async def test_none_answers_say_what_to_write(js) -> None:  # type: ignore[no-untyped-def]
    """A check cell passing its answer cell's placeholder (None) names it and the task."""
    for key, args, kwargs, name in [
        ("06", (None,), {}, "log"),
        ("10", (None,), {}, "charge"),
        ("17", (), {"handler": None}, "handler"),
    ]:
        result = await check(key, js, *args, report=False, **kwargs)
        assert not result.passed
        assert result.message.startswith(f"{name} is still None: write your answer"), result.message
        assert EXERCISES[key].task in result.message
    result = await check("12", None, url="nats://x", user="auditor", report=False)
    assert result.message.startswith("js is still None"), result.message
