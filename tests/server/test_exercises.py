"""Each exercise checker accepts a correct solution and rejects a wrong one, on the live server."""

from __future__ import annotations

import contextlib

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy, SubjectTransform
from pydantic import BaseModel

from edalab import (
    EventConsumer,
    EventFactory,
    SchemaRegistry,
    TransientError,
    publish_event,
    publish_events,
)
from edalab.course import fresh_stream
from edalab.course._checkers import _core as exercises
from edalab.course.charts.redelivery import DeliveryLog
from edalab.course.exercises import EXERCISES, Exercise, check
from edalab.course.manifest import LESSONS

#: check()'s own answer to an unforeseen error, kept before the fixture below replaces it.
_ONE_LINE = exercises._unexpected


@pytest.fixture(autouse=True)
def _unforeseen_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """In these tests a checker that trips on an error it did not foresee fails loudly:
    the cases here are known, so each must get its own answer, not the safety net's."""

    def reraise(exercise: str, err: Exception) -> None:
        raise err

    monkeypatch.setattr(exercises, "_unexpected", reraise)


def _all_of_says(*conditions: tuple[bool, str], stop: str = "") -> str:
    """What ``_all_of`` reports for ``conditions`` (then a ``_require`` failing on ``stop``)."""
    try:
        with exercises._all_of() as want:
            for ok, hint in conditions:
                want(ok, hint)
            if stop:
                exercises._require(False, stop)
                want(False, "not reached")
    except exercises._NotYet as said:
        return str(said)
    return ""


def test_all_of_reports_every_failing_condition() -> None:
    """Independent conditions are all reported, numbered, in one line; one alone is as is."""
    config = (False, "max_deliver is 3; set 4"), (True, "never shown")
    backoff = (False, "backoff is []; give three delays")
    assert _all_of_says(*config, backoff) == (
        "2 things to fix: (1) max_deliver is 3; set 4; (2) backoff is []; give three delays"
    )
    assert _all_of_says((True, "never shown"), backoff) == "backoff is []; give three delays"
    assert _all_of_says((True, "never shown")) == ""


def test_all_of_joins_a_condition_that_stops_the_block() -> None:
    """A _require failing inside the block ends it, and its hint joins those collected."""
    assert _all_of_says((False, "a"), stop="b") == "2 things to fix: (1) a; (2) b"
    assert _all_of_says((True, "a"), stop="b") == "b"


async def test_unforeseen_nats_error_is_one_line(js, monkeypatch) -> None:
    """A nats-py error no checker foresaw becomes one "not yet" line naming it, no traceback."""
    import nats.js.errors

    async def trips(js):
        raise nats.js.errors.NoStreamResponseError

    monkeypatch.setattr(exercises, "_unexpected", _ONE_LINE)
    spec = EXERCISES["05"]
    monkeypatch.setitem(EXERCISES, "05", Exercise("05", spec.notebook, spec.task, trips))
    result = await check("05", js)
    assert not result.passed and "\n" not in result.message
    assert result.message.startswith(
        "the check stopped at an error it did not expect (NoStreamResponseError: nats: no "
        "response from stream)"
    ), result.message


async def test_03_dedup_needs_a_dropped_resend(js) -> None:
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


async def test_03_right_window_but_resend_stored_fails(js) -> None:
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


async def test_03_window_in_minutes_fails(js) -> None:
    """duplicate_window=5 (minutes meant, seconds given): the resend was still dropped, and
    the check names the window it found and the one asked for."""
    make = EventFactory()
    orders = [make("order.placed") for _ in range(3)]
    await fresh_stream(js, "ORDERS", ["order.>"], duplicate_window=5)
    acks = await publish_events(js, orders)
    acks.append(await publish_event(js, orders[0]))
    assert acks[-1].duplicate
    result = await check("03", js, acks)
    assert result.message == "the duplicate window is 5s; set it to 300 seconds"


async def test_03_default_window_and_a_new_event_fail_together(js) -> None:
    """Default window, and the "resend" made again with make() (a new id, so it is stored):
    both are reported, the stored publishes by their sequences."""
    make = EventFactory()
    await fresh_stream(js, "ORDERS", ["order.>"])
    acks = await publish_events(js, [make("order.placed") for _ in range(3)])
    acks.append(await publish_event(js, make("order.placed")))
    result = await check("03", js, acks)
    assert result.message.startswith(
        "2 things to fix: (1) the duplicate window is 120s; set it to 300 seconds; (2) none "
        "of your 4 PubAcks says duplicate=True: the server stored every publish (sequences "
        "1, 2, 3, 4)"
    ), result.message
    assert "again with the same Nats-Msg-Id" in result.message


async def test_03_raw_publishes_with_msg_id_pass(js) -> None:
    """Written differently from the solution (raw add_stream and js.publish with a
    Nats-Msg-Id header, the resend in the middle): passes."""
    import contextlib

    import nats.js.errors

    make = EventFactory(prefix="raw-")
    orders = [make("order.placed") for _ in range(3)]
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("ORDERS")
    await js.add_stream(name="ORDERS", subjects=["order.>"], duplicate_window=300)

    async def send(event):
        return await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})

    acks = [await send(orders[0]), await send(orders[1]), await send(orders[0])]
    acks.append(await send(orders[2]))
    result = await check("03", js, acks)
    assert result.passed, result.message
    assert "the resend of raw-0001 was answered duplicate=True with sequence 1" in result.message


async def test_05_billing_must_deliver_and_ack(js) -> None:
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

    async def ok(event):
        return None

    await billing.run(ok, timeout=0.3)
    result = await check("05", js)
    assert result.passed, result.message
    assert "all 2 order.placed events (up to sequence 3)" in result.message, result.message


async def test_05_billing_wrong_filter(js) -> None:
    """A billing consumer that reads every order subject fails, naming its filter."""
    make = EventFactory()
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed")])
    await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.*")
    result = await check("05", js)
    assert not result.passed and "order.*" in result.message


async def test_05_half_delivered_and_unacked_reports_both(js) -> None:
    """One of two order.placed fetched and never acked: what is undelivered and what is
    unacknowledged are both reported, with what the server counted."""
    make = EventFactory(prefix="t05b-")
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed"), make("order.shipped"), make("order.placed")])
    billing = await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.placed")
    assert [d.seq for d in await billing.fetch(1, timeout=1)] == [1]
    result = await check("05", js)
    assert result.message == (
        "2 things to fix: (1) billing has delivered up to sequence 1 and acknowledged up to "
        "0; 1 order.placed events (up to sequence 3) were never delivered: process them all; "
        "(2) billing has delivered up to sequence 1 and acknowledged up to 0; 1 delivered "
        "events are not acknowledged: ack each one (run acks when the handler returns)"
    )


async def test_05_deliver_new_skips_the_stored_orders(js) -> None:
    """billing created with deliver policy new, after the orders: it has nothing to deliver,
    and the check says why instead of asking to run a handler that has nothing to do."""
    make = EventFactory(prefix="t05c-")
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed"), make("order.placed")])
    billing = await EventConsumer.create(
        js, "ORDERS", "billing", filter_subject="order.placed", deliver_policy=DeliverPolicy.NEW
    )

    async def ok(event):
        return None

    await billing.run(ok, timeout=0.3)
    result = await check("05", js)
    assert result.message == (
        "ORDERS holds 2 order.placed events, and billing has none to deliver: its deliver "
        "policy new starts after them; create billing with the default deliver policy all"
    )


async def test_05_raw_pull_subscription_passes(js) -> None:
    """Written differently from the solution (raw pull_subscribe, fetch in batches, ack_sync
    each): passes."""
    import nats.errors

    make = EventFactory(prefix="t05d-")
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed"), make("order.shipped"), make("order.placed")])
    sub = await js.pull_subscribe("order.placed", durable="billing", stream="ORDERS")
    while True:
        try:
            msgs = await sub.fetch(5, timeout=0.5)
        except nats.errors.TimeoutError:
            break
        for msg in msgs:
            await msg.ack_sync()
    result = await check("05", js)
    assert result.passed, result.message
    assert "all 2 order.placed events (up to sequence 3) in 2 deliveries" in result.message


async def _careful(js):
    """TASKS with one task and a fresh consumer careful configured as the exercise asks."""
    await fresh_stream(js, "TASKS", ["task.>"])
    await publish_events(js, [EventFactory()("task.created")])
    return await EventConsumer.create(
        js, "TASKS", "careful", max_deliver=4, backoff=[0.2, 0.4, 0.8], recreate=True
    )


async def _fail_three_times(event, delivery):
    if delivery.num_delivered < 4:
        raise TransientError("not yet")


async def test_06_backoff_observed_passes(js) -> None:
    """Three failures left to expire come back on the backoff's schedule, and the check passes."""
    careful = await _careful(js)
    log = DeliveryLog()
    await careful.run(_fail_three_times, timeout=2, on_transient="let_expire", observer=log.observe)
    assert [r.delivery for r in log.records] == [1, 2, 3, 4]
    result = await check("06", js, log)
    assert result.passed, result.message
    assert "0.2, 0.4, 0.8" in result.message


async def test_06_without_log_or_redeliveries_fails(js) -> None:
    """No log, or a handler that never fails, is not the exercise; the check says why."""
    careful = await _careful(js)
    assert "pass the DeliveryLog" in (await check("06", js)).message

    async def ok(event):
        return None

    log = DeliveryLog()
    await careful.run(ok, timeout=0.5, observer=log.observe)
    wrong = await check("06", js, log)
    assert not wrong.passed and "all four deliveries" in wrong.message


async def test_06_right_config_but_default_naks_fail(js) -> None:
    """Backoff configured, but run without on_transient='let_expire': each failure is nak'ed
    after run()'s retry_delay (1 s), far outside every backoff step, and each gap is shown."""
    careful = await _careful(js)
    log = DeliveryLog()
    await careful.run(_fail_three_times, timeout=2.5, observer=log.observe)
    assert [r.delivery for r in log.records] == [1, 2, 3, 4]
    wrong = await check("06", js, log)
    assert not wrong.passed
    assert wrong.message.startswith("sequence 1: delivery 2 came 1."), wrong.message
    assert "after delivery 1, where your backoff says 0.2 s (accepted 0.11..0.5 s)" in (
        wrong.message
    )
    assert "; sequence 1: delivery 3 came" in wrong.message
    assert "where your backoff says 0.8 s (accepted 0.59..1.25 s). A nak sets" in wrong.message
    assert "on_transient='let_expire'" in wrong.message


async def test_06_right_config_but_plain_naks_fail(js) -> None:
    """A handler asking for a retry at once (a plain nak) is back in milliseconds, not after
    the backoff: the check says so, whatever the machine's load."""
    careful = await _careful(js)
    log = DeliveryLog()

    async def nak_now(event, delivery):
        if delivery.num_delivered < 4:
            raise TransientError("not yet", delay=0)

    await careful.run(nak_now, timeout=2, observer=log.observe)
    assert [r.delivery for r in log.records] == [1, 2, 3, 4]
    wrong = await check("06", js, log)
    assert not wrong.passed
    assert "sequence 1: delivery 2 came 0.0" in wrong.message, wrong.message
    assert "A nak sets its own delay (and plain nak none)" in wrong.message


async def test_06_wrong_configuration_reports_every_setting(js) -> None:
    """max_deliver=3 with two delays (the learner counted retries, not deliveries): both
    settings are named in one answer, with what to set."""
    await fresh_stream(js, "TASKS", ["task.>"])
    await EventConsumer.create(
        js, "TASKS", "careful", max_deliver=3, backoff=[0.2, 0.4], recreate=True
    )
    wrong = await check("06", js, DeliveryLog())
    assert wrong.message == (
        "2 things to fix: (1) max_deliver is 3; set 4; (2) backoff is [0.2, 0.4]; give three delays"
    )
    await js.delete_consumer("TASKS", "careful")
    await js.add_consumer("TASKS", durable_name="careful")  # no backoff at all
    bare = await check("06", js, DeliveryLog())
    assert bare.message == (
        "2 things to fix: (1) max_deliver is -1; set 4; (2) backoff is []; give three delays"
    )


async def test_06_raw_pull_consumer_left_to_expire_passes(js) -> None:
    """Written differently from the solution (raw pull_subscribe, a ConsumerConfig with
    other delays, log.record on each message, unacked messages left to expire): passes."""
    await fresh_stream(js, "TASKS", ["task.>"])
    await publish_events(js, [EventFactory()("task.created")])
    config = ConsumerConfig(max_deliver=4, backoff=[0.15, 0.3, 0.6])
    sub = await js.pull_subscribe("task.>", durable="careful", stream="TASKS", config=config)
    log = DeliveryLog()
    while True:
        [msg] = await sub.fetch(1, timeout=5)
        log.record(msg)
        if msg.metadata.num_delivered == 4:
            await msg.ack_sync()
            break
    result = await check("06", js, log)
    assert result.passed, result.message
    assert "after 0.15, 0.3, 0.6 s" in result.message


async def test_06_stale_log_fails(js) -> None:
    """A log from an earlier run does not pass once careful has delivered more since."""
    careful = await _careful(js)
    log = DeliveryLog()
    await careful.run(_fail_three_times, timeout=2, on_transient="let_expire", observer=log.observe)
    await publish_events(js, [EventFactory(prefix="again-")("task.created")])
    await careful.run(_fail_three_times, timeout=2, on_transient="let_expire")
    stale = await check("06", js, log)
    assert not stale.passed and "fresh DeliveryLog" in stale.message


async def test_05_audit_from_sequence_3(js) -> None:
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


async def test_07_right_config_but_redelivered_fails(js) -> None:
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


async def test_07_off_by_one_start_fails(js) -> None:
    """audit from sequence 2 (counted from 0, or one too early): the start it found and
    the one asked for."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_events(js, [make("user.created") for _ in range(5)])
    await EventConsumer.create(
        js, "USERS", "audit", deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=2
    )
    result = await check("07", js)
    assert result.message == "audit starts at sequence 2; use opt_start_seq=3"


async def test_07_replay_from_the_start_reports_policy_and_start(js) -> None:
    """A durable replaying everything: both the policy and the missing start are named."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_events(js, [make("user.created") for _ in range(5)])
    await EventConsumer.create(js, "USERS", "audit")
    result = await check("07", js)
    assert result.message == (
        "2 things to fix: (1) audit's deliver policy is all; use by_start_sequence; (2) "
        "audit starts at sequence (none); use opt_start_seq=3"
    )


async def test_07_fetched_but_not_acked_reports_both(js) -> None:
    """audit right, one event fetched and never acked, two never fetched: both counts."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_events(js, [make("user.created") for _ in range(5)])
    audit = await _audit_from_3(js)
    assert [d.seq for d in await audit.fetch(1, timeout=1)] == [3]
    result = await check("07", js)
    assert result.message == (
        "2 things to fix: (1) consumer 'audit' still has 2 events to deliver: process them "
        "all; (2) consumer 'audit' has 1 unacknowledged events: ack them"
    )


async def test_07_raw_consumer_from_sequence_3_passes(js) -> None:
    """Written differently from the solution (raw pull_subscribe with a ConsumerConfig,
    one batch, acks without waiting for the server): passes once the acks land."""
    make = EventFactory()
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_events(js, [make("user.created") for _ in range(5)])
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=3)
    sub = await js.pull_subscribe("user.>", durable="audit", stream="USERS", config=config)
    msgs = await sub.fetch(10, timeout=0.5)
    assert [m.metadata.sequence.stream for m in msgs] == [3, 4, 5]
    for msg in msgs:
        await msg.ack()
    result = await check("07", js)
    assert result.passed, result.message
    assert "sequences 3..5, each delivered once and acknowledged" in result.message


async def test_02_patterns_right(nc) -> None:
    """The two patterns the mailer needs receive exactly the wanted probes, once each,
    also written the other way round as a tuple."""
    result = await check("02", nc, ["user.*.updated", "user.deleted"])
    assert result.passed, result.message
    assert "exactly the 5 the mailer wants" in result.message
    assert "user.<part>.updated for a part named at random" in result.message
    swapped = await check("02", nc, ("user.deleted", "user.*.updated"))
    assert swapped.passed, swapped.message


async def test_02_listing_the_known_parts_fails(nc) -> None:
    """Listing exactly the parts the exercise names is not a wildcard design: a part drawn
    at random for each check is missing, and the message says what arrived and why."""
    import re

    listed = ["user.profile.updated", "user.email.updated", "user.address.updated", "user.deleted"]
    made_up = []
    for _ in range(2):
        result = await check("02", nc, listed)
        assert not result.passed
        assert "the server delivered: user.profile.updated, user.email.updated" in result.message
        found = re.search(r"missing (user\.[a-z]{8}\.updated) \(a '\*' token", result.message)
        assert found, result.message
        assert f"{found[1]} is a part this check made up just now" in result.message
        made_up.append(found[1])
    assert made_up[0] != made_up[1], "each check draws a new part"


async def test_02_patterns_wrong(nc) -> None:
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


async def test_closed_connection_is_one_line(nats_url) -> None:
    """A check on a closed connection says so and how to reconnect, without a traceback."""
    from edalab import connect

    nc = await connect(nats_url)
    js = nc.jetstream()
    await nc.close()
    result = await check("05", js)
    assert not result.passed and "connection is closed" in result.message
    assert "nc = await connect(server)" in result.message


async def test_02_needs_a_live_connection(nats_url) -> None:
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


async def _stored_v3(js) -> SchemaRegistry:
    """A USERS stream holding one v3 user.created, and a registry that knows v3."""
    await fresh_stream(js, "USERS", ["user.>"])
    await publish_event(js, EventFactory()("user.created", {"user_id": "a"}, version=3))
    registry = SchemaRegistry()
    registry.register("user.created", 3, V3)
    return registry


async def test_07_v4_registry(js) -> None:
    """v4 must exist, be compatible with v3, and upcast every stored event."""
    registry = await _stored_v3(js)
    assert "add version 4" in (await check("08", js, registry)).message
    registry.register("user.created", 4, V4Breaking)
    registry.upcaster("user.created", 3)(lambda d: {**d, "country": "nl"})
    assert "breaks" in (await check("08", js, registry)).message
    registry.register("user.created", 4, V4)
    assert (await check("08", js, registry)).passed
    assert not (await check("08", js)).passed


async def test_08_right_model_but_stored_events_do_not_replay(js) -> None:
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


async def test_08_v3_model_registered_as_v4_fails(js) -> None:
    """ "Version 4" with version 3's model and an identity upcaster is compatible and replays,
    but has no new field: the check names the fields it found and the one to add."""
    registry = await _stored_v3(js)
    registry.register("user.created", 4, V3)
    registry.upcaster("user.created", 3)(lambda data: data)
    result = await check("08", js, registry)
    assert not result.passed
    assert result.message == (
        "version 4's model adds no field to version 3's (user_id): declare the new field, "
        "country: str = 'unknown'"
    )
    forgot = SchemaRegistry()  # the same mistake, and no upcaster: both are reported
    forgot.register("user.created", 3, V3)
    forgot.register("user.created", 4, V3)
    both = await check("08", js, forgot)
    assert both.message.startswith("2 things to fix: (1) version 4's model adds no field")
    assert "(2) sequence 1 (version 3) does not replay as version 4" in both.message
    fresh = SchemaRegistry()  # a new registry with only the new version
    fresh.register("user.created", 4, V4)
    lost = await check("08", js, fresh)
    assert lost.message.startswith("user.created versions are [4], without version 3"), lost


class V4Optional(V3):
    country: str | None = None


async def test_08_old_events_without_a_country_fail(js) -> None:
    """country optional as None (like v3's email) and an identity upcaster: old events come
    out with no country, and the check shows the value it observed and the default to use."""
    registry = await _stored_v3(js)
    registry.register("user.created", 4, V4Optional)
    registry.upcaster("user.created", 3)(lambda data: data)
    result = await check("08", js, registry)
    assert not result.passed
    assert result.message == (
        "sequence 1 (version 3) came out as version 4 with country None: an old event does "
        "not know its country, so give it the exercise's default, country: str = 'unknown'"
    )


async def test_08_right_answer_written_differently_passes(js) -> None:
    """A v4 model written out in full with Field(default=...), a dict-union upcaster, and a
    newer v5 event in the stream that the check leaves aside: passes."""
    from pydantic import Field

    class UserV4(BaseModel):
        user_id: str
        country: str = Field(default="unknown", description="ISO code once known")

    registry = await _stored_v3(js)
    await publish_event(js, EventFactory(prefix="v5-")("user.created", {"id": "b"}, version=5))
    registry.register("user.created", 4, UserV4)
    registry.upcaster("user.created", 3)(lambda data: data | {"country": "unknown"})
    result = await check("08", js, registry)
    assert result.passed, result.message
    assert result.message == "all 1 known-version user.created events replay as version 4"


async def test_08_a_message_that_is_no_event_is_one_line(js) -> None:
    """Something published to USERS by hand (not an event) is named by its sequence."""
    registry = await _stored_v3(js)
    registry.register("user.created", 4, V4)
    registry.upcaster("user.created", 3)(lambda data: data)
    await js.publish("user.created", b"hello")
    result = await check("08", js, registry)
    assert result.message.startswith("USERS message 2 is not an event: "), result.message
    assert "\n" not in result.message


async def test_unknown_exercise_is_an_error(js) -> None:
    """A typo in the exercise key is reported with the known keys."""
    with pytest.raises(ValueError, match="known: 00, 01, 02"):
        await check("99", js)
    assert list(EXERCISES) == [x.number for x in LESSONS if x.exercise]


async def test_09_ledger_each_entry_once_with_its_msg_id(js) -> None:
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


async def test_09_memory_storage_and_new_ids_on_resend_fail(js) -> None:
    """Two mistakes learners make: a memory stream (lost in a crash), and a resend that makes
    the events anew (new ids, so Nats-Msg-Id drops nothing); each message says what it saw."""
    from nats.js.api import StorageType

    make = EventFactory(prefix="led-")
    entries = [make("ledger.entry", {"n": i}) for i in range(200)]
    await fresh_stream(js, "LEDGER", ["ledger.>"], storage=StorageType.MEMORY)
    await publish_events(js, entries)
    memory = await check("09", js)
    assert not memory.passed
    assert "LEDGER uses memory storage; expected file storage" in memory.message
    await fresh_stream(js, "LEDGER", ["ledger.>"])
    await publish_events(js, entries[:100])
    again = EventFactory(prefix="new-")
    await publish_events(js, [again("ledger.entry", {"n": i}) for i in range(200)])
    renamed = await check("09", js)
    assert not renamed.passed
    assert "ledger entry n=0 is stored under 2 event ids (100 entries like it)" in renamed.message
    assert "resend the same Event objects" in renamed.message


async def test_09_raw_publishes_with_msg_id_pass(js) -> None:
    """Written differently: the stream made with add_stream and explicit file storage, and
    raw js.publish with the Nats-Msg-Id header, every entry sent twice."""
    import nats.js.errors
    from nats.js.api import StorageType, StreamConfig

    make = EventFactory(prefix="raw-")
    entries = [make("ledger.entry", {"n": i}) for i in range(200)]
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("LEDGER")
    await js.add_stream(
        StreamConfig(name="LEDGER", subjects=["ledger.>"], storage=StorageType.FILE)
    )
    for event in entries + entries:
        await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})
    result = await check("09", js)
    assert result.passed, result.message


async def test_10_charge_once_across_racing_workers(js) -> None:
    """A put (bucket right, behaviour wrong) and an in-memory guard fail, each naming every
    step it failed; a handler that raises fails; record() passes."""
    import asyncio

    from edalab import ProcessedIds

    async def record(event) -> None:
        await charges.record(event.id, b"1")

    assert "no key-value bucket" in (await check("10", js, record)).message
    charges = await ProcessedIds.open(js, "charges", history=5, fresh=True)

    async def put(event) -> None:
        await asyncio.sleep(0)
        await charges.kv.put(event.id, b"1")

    wrong = await check("10", js, put)
    assert not wrong.passed and wrong.message.startswith("3 things to fix: (1) two racing")
    assert "and one redelivery charged 'check10-" in wrong.message and "3 times" in wrong.message
    assert "(2) an event another process had charged was charged again (2 writes)" in (
        wrong.message
    )
    assert "(3) when another process charges between your check and your write" in wrong.message
    done: set[str] = set()

    async def in_memory(event) -> None:
        if event.id not in done:
            done.add(event.id)
            await charges.kv.put(event.id, b"1")

    local = await check("10", js, in_memory)
    assert not local.passed and "another process had charged" in local.message

    async def raises(event) -> None:
        await charges.kv.create(event.id, b"1")

    assert "return normally" in (await check("10", js, raises)).message
    result = await check("10", js, record)
    assert result.passed, result.message


async def test_10_a_lock_in_this_process_fails(js) -> None:
    """Check-then-put under an asyncio.Lock survives the in-process race, but not another
    process charging between its check and its write: the checker shows that deterministically."""
    import asyncio

    import nats.js.errors

    from edalab import ProcessedIds

    charges = await ProcessedIds.open(js, "charges", history=5, fresh=True)
    lock = asyncio.Lock()

    async def locked(event) -> None:
        async with lock:
            try:
                await charges.kv.get(event.id)
            except nats.js.errors.KeyNotFoundError:
                await charges.kv.put(event.id, str(event.data["amount_cents"]).encode())

    for _ in range(3):  # the same verdict every time: nothing here is timing
        result = await check("10", js, locked)
        assert not result.passed
        assert result.message.startswith(
            "when another process charges between your check and your write, yours is charged "
            "again: the checker charged 'check10-"
        ), result.message
        assert (
            "(with no condition: no Nats-Expected-Last-Subject-Sequence header) under that id, "
            "and the server stored it as charge number 2"
        ) in result.message
        assert "kv.create (or ProcessedIds.record), which the server refuses" in result.message


async def test_10_create_written_differently_passes(js) -> None:
    """Written differently from the solution (kv.create on the raw bucket, a refused create
    caught as KeyWrongLastSequenceError, an asyncio.Lock too): passes."""
    import asyncio
    import contextlib

    import nats.js.errors

    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_key_value("charges")
    kv = await js.create_key_value(bucket="charges", history=5)
    lock = asyncio.Lock()

    async def charge(event) -> None:
        async with lock:
            try:
                await kv.create(event.id, str(event.data["amount_cents"]).encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                return

    result = await check("10", js, charge)
    assert result.passed, result.message


async def _payments_with_letters(js):
    """PAYMENTS with payments and audit consumers; payments rejects a negative amount."""
    from edalab import DeadLetters, PermanentError

    dead = DeadLetters(js)
    await dead.setup(fresh=True)
    await fresh_stream(js, "PAYMENTS", ["payment.>"])
    await publish_events(js, [EventFactory()("payment.captured", {"amount_cents": -1})])
    payments = await EventConsumer.create(js, "PAYMENTS", "payments")
    audit = await EventConsumer.create(js, "PAYMENTS", "audit")

    async def book(event):
        if event.data["amount_cents"] < 0:
            raise PermanentError("negative")

    async def record(event):
        pass

    await payments.run(book, timeout=0.3)
    await audit.run(record, timeout=0.3)
    [letter] = await dead.wait_for(1)
    return dead, letter, book, audit, record


async def test_11_fix_replayed_to_payments_only(js) -> None:
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


async def test_11_fix_published_to_the_original_subject_fails(js) -> None:
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


async def _three_letters(js):
    """Lesson 11's state before its exercise: a negative amount rejected by payments, and a
    message that is not an event, terminated by payments and by audit."""
    from edalab import DeadLetters, PermanentError

    dead = DeadLetters(js)
    await dead.setup(fresh=True)
    await fresh_stream(js, "PAYMENTS", ["payment.>"])
    await publish_events(js, [EventFactory()("payment.captured", {"amount_cents": -1})])
    await js.publish("payment.captured", b"\x00 not an event")

    async def book(event):
        if event.data["amount_cents"] < 0:
            raise PermanentError("negative")

    async def record(event):
        pass

    for name, handler in (("payments", book), ("audit", record)):
        consumer = await EventConsumer.create(js, "PAYMENTS", name)
        await consumer.run(handler, timeout=0.3)
    await dead.wait_for(3)
    return dead, book


async def test_11_replayed_unfixed_or_all_discarded_fails(js) -> None:
    """Two learners' mistakes: replaying the negative amount unfixed (payments rejects it
    again) and discarding every letter; each message says what it found and expected."""
    from edalab import Reason

    dead, book = await _three_letters(js)
    for letter in await dead.letters(stream="PAYMENTS"):
        if letter.category is Reason.UNDECODABLE:
            await dead.discard(letter)
        else:
            await dead.replay(letter)  # not fixed
    await (await dead.replays("PAYMENTS", "payments")).run(book, timeout=0.3)
    await dead.wait_for(1)
    unfixed = await check("11", js)
    assert not unfixed.passed
    assert "1 dead letters remain (consumer, reason)" in unfixed.message, unfixed.message
    assert "expected none" in unfixed.message
    dead, _ = await _three_letters(js)
    for letter in await dead.letters(stream="PAYMENTS"):
        await dead.discard(letter)
    gave_up = await check("11", js)
    assert not gave_up.passed
    assert "holds no replay with amount_cents 100; expected one for payments" in gave_up.message


async def test_11_fix_by_editing_the_json_passes(js) -> None:
    """Written differently: letters chosen by reason over all streams, the payload fixed by
    editing its JSON, the replay read by a reader with a handler of its own."""
    import json

    from edalab import Reason

    dead, _ = await _three_letters(js)
    for letter in await dead.letters():
        if letter.category is not Reason.UNDECODABLE:
            payload = json.loads((await dead.original(letter)).data)
            payload["data"]["amount_cents"] = 100
            await dead.replay(letter, data=json.dumps(payload).encode())
        else:
            await dead.discard(letter)
    booked = []

    async def book_fixed(event):
        booked.append(event.data["amount_cents"])

    await (await dead.replays("PAYMENTS", "payments")).run(book_fixed, timeout=0.3)
    assert booked == [100]
    result = await check("11", js)
    assert result.passed, result.message


async def _check_12_with(auditor, password: str = "pw", *, state: list | None = None):
    """Run checker 12 against a fresh server whose users are an admin and ``auditor``.

    With ``state``, append what SHOP looked like after the check: its messages and consumers.
    """
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
        for subject in ("order.placed", "payment.captured", "order.placed"):
            await ajs.publish(subject, b"{}")
        result = await check("12", ajs, url=srv.url, user="auditor", password=password)
        if state is not None:
            info = await ajs.stream_info("SHOP")
            names = sorted(c.name for c in await ajs.consumers_info("SHOP"))
            state.append(
                (info.state.messages, names, [s.config.name for s in await ajs.streams_info()])
            )
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
    state: list = []
    result = await _check_12_with(wide, state=state)
    assert not result.passed
    assert "delete streams ($JS.API.STREAM.DELETE.SHOP)" in result.message, result.message
    assert "and 14 more kinds of change" in result.message
    assert state == [(3, ["audit"], ["SHOP"])], "probing the whole API must change nothing"


async def test_12_purge_and_consumer_create_grants_fail_and_change_nothing() -> None:
    """The auditor of issue 18, also granted purge and consumer creation, fails naming both;
    the check's own probes purged nothing and created nothing."""
    from edalab import User, consumer_permissions

    over = User(
        "auditor",
        password="pw",
        publish=[
            *consumer_permissions("SHOP", "audit"),
            "$JS.API.STREAM.PURGE.>",
            "$JS.API.CONSUMER.CREATE.>",
        ],
        subscribe=["_INBOX_auditor.>"],
    )
    state: list = []
    result = await _check_12_with(over, state=state)
    assert not result.passed
    assert "may purge streams ($JS.API.STREAM.PURGE.SHOP)" in result.message, result.message
    assert "create consumers ($JS.API.CONSUMER.CREATE.SHOP)" in result.message
    assert "delete streams" not in result.message  # only what was granted is named
    assert "permissions violation was expected" in result.message
    assert state == [(3, ["audit"], ["SHOP"])], "the probes must purge and create nothing"


async def test_12_grants_on_the_real_names_only_fail() -> None:
    """Grants naming SHOP and audit exactly (no wildcard) are found too: delete the stream,
    delete the auditor's own consumer, delete a message; the stream survives the probes."""
    from edalab import User, consumer_permissions

    exact = User(
        "auditor",
        password="pw",
        publish=[
            *consumer_permissions("SHOP", "audit"),
            "$JS.API.STREAM.DELETE.SHOP",
            "$JS.API.CONSUMER.DELETE.SHOP.audit",
            "$JS.API.STREAM.MSG.DELETE.SHOP",
        ],
        subscribe=["_INBOX_auditor.>"],
    )
    state: list = []
    result = await _check_12_with(exact, state=state)
    assert not result.passed
    for named in (
        "delete streams ($JS.API.STREAM.DELETE.SHOP)",
        "delete stream messages ($JS.API.STREAM.MSG.DELETE.SHOP)",
        "delete consumers ($JS.API.CONSUMER.DELETE.SHOP.audit)",
    ):
        assert named in result.message, result.message
    assert state == [(3, ["audit"], ["SHOP"])]


async def test_12_other_consumers_acks_and_publishing_fail() -> None:
    """Acks for every consumer ($JS.ACK.>) and a publish grant on payments each fail,
    saying what the server accepted."""
    from edalab import User

    acks = User(
        "auditor",
        password="pw",
        publish=["$JS.API.CONSUMER.MSG.NEXT.SHOP.audit", "$JS.ACK.>"],
        subscribe=["_INBOX_auditor.>"],
    )
    result = await _check_12_with(acks)
    assert not result.passed and "may ack for other consumers ($JS.ACK.SHOP.probe-" in (
        result.message
    ), result.message
    payer = User(
        "auditor",
        password="pw",
        publish=["$JS.API.CONSUMER.MSG.NEXT.SHOP.audit", "$JS.ACK.SHOP.audit.>", "payment.>"],
        subscribe=["_INBOX_auditor.>"],
    )
    state: list = []
    result = await _check_12_with(payer, state=state)
    assert not result.passed and "may publish to payment.probe (not refused" in result.message
    assert state == [(3, ["audit"], ["SHOP"])], "the probe publish must not be stored"


async def test_12_hand_written_least_privilege_passes() -> None:
    """Written out by hand, without jetstream_user and without the info subject: passes, and
    the check leaves SHOP as it was (its probe event deleted)."""
    from edalab import User

    auditor = User(
        "auditor",
        password="pw",
        publish=["$JS.API.CONSUMER.MSG.NEXT.SHOP.audit", "$JS.ACK.SHOP.audit.>"],
        subscribe=["_INBOX_auditor.>"],
    )
    state: list = []
    result = await _check_12_with(auditor, state=state)
    assert result.passed, result.message
    assert state == [(3, ["audit"], ["SHOP"])]


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
    assert not result.passed and "may subscribe to _INBOX." in result.message


async def test_13_r3_audit_stream(js) -> None:
    """R1 fails; R3 with a follower still down fails (configuration right, behaviour not);
    events stored twice fail; R3, 200 distinct events, every follower current, passes."""
    from nats.js.api import StreamConfig

    from edalab import NatsCluster, connect, stream_leader, wait_until_current

    await fresh_stream(js, "AUDIT", ["audit.>"])
    single = (await check("13", js)).message
    assert "AUDIT has 1 replica(s); expected 3" in single, single
    with NatsCluster(3) as cluster:
        nc = await connect(cluster.urls, max_reconnect_attempts=-1)
        cjs = nc.jetstream()
        # Written differently from the solution: the raw nats-py call, not ensure_stream.
        await cjs.add_stream(StreamConfig(name="AUDIT", subjects=["audit.>"], num_replicas=3))
        make = EventFactory()
        await publish_events(cjs, [make("audit.note") for _ in range(100)])
        await wait_until_current(cjs, "AUDIT", timeout=60)
        half = await check("13", cjs)  # forgot the 100 published while a follower is down
        assert not half.passed and "AUDIT holds 100 messages; expected 200" in half.message
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


async def _ex16(js):
    """Lesson 16's exercise cell: ORDERS, order ex16 placed, its reserved id and its trace."""
    from edalab import TraceContext, derived_id
    from edalab.course import saga

    await saga.setup(js)
    placed = await saga.place_order(js, "ex16", amount_cents=700)
    trace = TraceContext.from_headers((await js.get_msg("ORDERS", 1)).headers)
    return placed, derived_id(placed.id, "stock.reserved"), trace


def _on_reserved(js, placed, trace, *, event_id=None, flow=True):
    """The solution's handler, charging in ``trace``; ``event_id(cause)`` replaces the
    derived id, and ``flow=False`` leaves the flow headers out."""
    from edalab import Event, derived_id, flow_headers

    async def on_reserved(cause_id):
        ident = event_id(cause_id) if event_id else derived_id(cause_id, "billing.charged")
        event = Event.create("billing.charged", {"order_id": "ex16"}, id=ident)
        headers = flow_headers(
            trace.child("billing"), correlation_id=placed.id, causation_id=cause_id
        )
        await publish_event(js, event, headers=headers if flow else None)

    return on_reserved


async def test_16_fresh_ids_missing_headers_or_new_trace_fail(js) -> None:
    """Three mistakes: a new id per call (stored twice), no flow headers, a trace of its own;
    each message names what the stream holds and what was expected."""
    from edalab import TraceContext

    placed, reserved_id, trace = await _ex16(js)
    fresh = _on_reserved(js, placed, trace, event_id=lambda cause: None)
    for _ in range(2):
        await fresh(reserved_id)
    twice = await check("16", js)
    assert not twice.passed
    assert "ORDERS holds 2 billing.charged events for ex16" in twice.message
    assert "expected one" in twice.message

    placed, reserved_id, trace = await _ex16(js)
    await _on_reserved(js, placed, trace, flow=False)(reserved_id)
    bare = await check("16", js)
    assert not bare.passed
    assert f"Causation-Id is None; expected '{reserved_id}'" in bare.message, bare.message

    placed, reserved_id, trace = await _ex16(js)
    await _on_reserved(js, placed, TraceContext.new())(reserved_id)
    apart = await check("16", js)
    assert not apart.passed
    assert f"expected one in the order's trace, '{trace.trace_id}'" in apart.message
    await js.publish("billing.junk", b"not an event")
    junk = await check("16", js)  # one line, not a traceback
    assert not junk.passed and "ORDERS message 3: " in junk.message, junk.message


async def test_16_hand_made_headers_and_raw_publish_pass(js) -> None:
    """Written differently: headers as a dict by hand, a random span id, and a raw
    js.publish with Nats-Msg-Id, called twice."""
    import secrets

    from edalab import Event, derived_id

    placed, reserved_id, trace = await _ex16(js)

    async def on_reserved(cause_id):
        charged = Event.create(
            "billing.charged", {"order_id": "ex16"}, id=derived_id(cause_id, "billing.charged")
        )
        headers = {
            "Nats-Msg-Id": charged.id,
            "traceparent": f"00-{trace.trace_id}-{secrets.token_hex(8)}-01",
            "Correlation-Id": placed.id,
            "Causation-Id": cause_id,
        }
        await js.publish(charged.type, charged.to_json(), headers=headers)

    await on_reserved(reserved_id)
    await on_reserved(reserved_id)
    result = await check("16", js)
    assert result.passed, result.message


async def _paid_shop(js):
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


def _award_handler(js, *, derived: bool):
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


async def _run_loyalty(js, handler) -> None:
    """Run shop-loyalty over the whole stream, from the start (a consumer made anew)."""
    import nats.js.errors

    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_consumer("SHOP", "shop-loyalty")
    loyalty = await EventConsumer.create(
        js, "SHOP", "shop-loyalty", filter_subject="shop.payment.captured", recreate=True
    )
    await loyalty.run(handler, timeout=0.5, double_ack=True)


async def test_17_loyalty_awarded_once_even_when_redelivered(js) -> None:
    """A handler deriving the award's id passes, also run twice; without a handler or a
    loyalty run the checker says what is missing."""
    await _paid_shop(js)
    award = _award_handler(js, derived=True)
    assert "pass your handler" in (await check("17", js)).message
    assert "no consumer 'shop-loyalty'" in (await check("17", js, award=award)).message
    await _run_loyalty(js, award)
    await _run_loyalty(js, award)  # reset and run again: a redelivery of everything
    result = await check("17", js, award=award)
    assert result.passed, result.message
    assert "each of the 3 payments is awarded once" in result.message


async def test_17_random_award_ids_fail_on_redelivery(js) -> None:
    """Configuration right (shop-loyalty drained, one award per payment so far) but awards
    with fresh ids: the checker's redelivery stores second awards, and it says so."""
    await _paid_shop(js)
    award = _award_handler(js, derived=False)
    await _run_loyalty(js, award)
    before = await _shop_state(js)
    result = await check("17", js, award=award)
    assert not result.passed
    assert "your handler published an award with id" in result.message, result.message
    assert "expected the same id" in result.message
    assert await _shop_state(js) == before, "the check deletes the copies it caused"


async def _forget_message_ids(js) -> None:
    """Make SHOP forget every Nats-Msg-Id it has seen, as 120 s later would, without waiting
    120 s: shrink its duplicate window to the server's minimum, 0.1 s (an update runs the
    purge at once, server/stream.go), and wait until a marker published after everything
    else is stored again; ids leave the window in the order they came."""
    from edalab import Event, wait_for

    config = (await js.stream_info("SHOP")).config
    config.duplicate_window = 0.1
    await js.update_stream(config)
    marker = Event.create("shop.test.marker", {}, id="window-marker")
    await publish_event(js, marker)

    async def forgotten() -> bool:
        return not (await publish_event(js, marker)).duplicate

    await wait_for(forgotten, timeout=10, what="SHOP to forget the marker's Nats-Msg-Id")
    await js.purge_stream("SHOP", subject="shop.test.marker")


async def _shop_state(js):
    """How many awards SHOP holds, and its consumers: what a check must leave as it was."""
    from edalab.course.shop import Shop

    awards = await Shop(js).stored("shop.points.awarded")
    return len(awards), sorted(c.name for c in await js.consumers_info("SHOP"))


async def test_17_right_answer_passes_after_the_duplicate_window(js) -> None:
    """The solution's handler, checked after SHOP forgot its message ids (as 120 s after the
    run would): passes, stores no second award, and a second check passes too."""
    await _paid_shop(js)
    award = _award_handler(js, derived=True)
    await _run_loyalty(js, award)
    before = await _shop_state(js)
    assert before[0] == 3
    await _forget_message_ids(js)
    first = await check("17", js, award=award)
    assert first.passed, first.message
    assert await _shop_state(js) == before, "the check must leave SHOP as it was"
    await _forget_message_ids(js)
    second = await check("17", js, award=award)
    assert second.passed, second.message
    assert await _shop_state(js) == before


async def test_17_raw_publish_with_uuid5_ids_passes(js) -> None:
    """Written differently from the solution: a (event, delivery) handler, derived_id's UUIDv5
    and a raw js.publish with its own Nats-Msg-Id header."""
    from edalab import Event, derived_id
    from edalab.course.shop import PaymentCaptured, PointsAwarded

    await _paid_shop(js)

    async def award(event, delivery) -> None:
        pay = event.payload(PaymentCaptured)
        points = PointsAwarded(
            user_id=pay.user_id, payment_id=event.id, points=pay.amount_cents // 100
        )
        awarded = Event.create("shop.points.awarded", points, id=derived_id(event.id, "points"))
        await js.publish(awarded.type, awarded.to_json(), headers={"Nats-Msg-Id": awarded.id})

    await _run_loyalty(js, award)
    result = await check("17", js, award=award)
    assert result.passed, result.message


async def test_17_in_memory_guard_with_fresh_ids_fails(js) -> None:
    """A handler that skips payments it remembers in memory, with random award ids: one award
    each so far, but on redelivery it publishes nothing, and the check says so."""
    seen: set[str] = set()
    random_ids = _award_handler(js, derived=False)

    async def award(event) -> None:
        if event.id not in seen:
            seen.add(event.id)
            await random_ids(event)

    await _paid_shop(js)
    await _run_loyalty(js, award)
    result = await check("17", js, award=award)
    assert not result.passed
    assert "your handler published no shop.points.awarded; expected the award again" in (
        result.message
    ), result.message


async def test_17_learner_run_twice_beyond_the_window_fails(js) -> None:
    """Loyalty run again after SHOP forgot the ids: two awards with the same id per payment;
    the check names the window, not the id derivation."""
    await _paid_shop(js)
    award = _award_handler(js, derived=True)
    await _run_loyalty(js, award)
    await _forget_message_ids(js)
    await _run_loyalty(js, award)
    result = await check("17", js, award=award)
    assert not result.passed
    assert "has 2 awards, all with id points-for-" in result.message, result.message
    assert "duplicate window" in result.message


async def test_18_translated_subscription(js) -> None:
    """Forgetting MaxInflight fails; the full translation as a pull consumer (written
    differently from the solution's callback), drained, passes."""
    from edalab import Event, publish_event

    await fresh_stream(js, "MIGRATION", ["events"])
    for i in range(3):
        await publish_event(js, Event.create("user.created", "{}", id=f"m{i}"), subject="events")
    opts = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": 2, "ack_wait": 10}
    await EventConsumer.create(js, "MIGRATION", "billing", **opts)
    forgot = (await check("18", js)).message
    assert "billing has max_ack_pending=1000; expected 5" in forgot, forgot
    billing = await EventConsumer.create(
        js, "MIGRATION", "billing", max_ack_pending=5, recreate=True, **opts
    )
    async for delivery in billing.events(timeout=0.3):
        await delivery.ack(sync=True)
    result = await check("18", js)
    assert result.passed and "2..3, each delivered once" in result.message


async def test_18_go_durations_and_deliver_all_fail(js) -> None:
    """AckWait copied as Go's milliseconds, and StartAtSequence(2) left out (deliver all):
    each fails, naming the value it found and the one expected."""
    await fresh_stream(js, "MIGRATION", ["events"])
    opts = {"max_ack_pending": 5, "recreate": True}
    start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": 2}
    await EventConsumer.create(js, "MIGRATION", "billing", ack_wait=10_000, **start, **opts)
    millis = (await check("18", js)).message
    assert "billing has ack_wait=10000.0 s; expected 10" in millis, millis
    await EventConsumer.create(js, "MIGRATION", "billing", ack_wait=10, **opts)
    everything = (await check("18", js)).message
    assert "billing has deliver_policy=all, opt_start_seq=None; expected" in everything, everything


async def _stan_translation(js, cb):
    """MIGRATION with 3 messages and billing as a manual-ack callback subscription."""
    import asyncio

    from nats.js.api import ConsumerConfig

    from edalab import Event, publish_event

    await fresh_stream(js, "MIGRATION", ["events"])
    for i in range(3):
        await publish_event(js, Event.create("user.created", "{}", id=f"m{i}"), subject="events")
    got: asyncio.Queue[int] = asyncio.Queue()

    async def handler(msg):
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


async def test_18_manual_ack_callback_passes(js) -> None:
    """SetManualAckMode as manual_ack=True with a callback that acks passes."""

    async def ack(msg):
        await msg.ack()

    sub, seqs = await _stan_translation(js, ack)
    assert seqs == [2, 3]
    result = await check("18", js)
    await sub.unsubscribe()
    assert result.passed, result.message


async def test_18_right_config_but_no_ack_fails(js) -> None:
    """Config right, manual_ack=True, but the callback never acks: the check says so."""

    async def forget(msg):
        return None

    sub, seqs = await _stan_translation(js, forget)
    assert seqs == [2, 3]
    wrong = await check("18", js)
    await sub.unsubscribe()
    assert not wrong.passed
    assert "delivered 2 message(s) that nobody acknowledged" in wrong.message
    assert "await msg.ack()" in wrong.message


async def _prices(js, per_symbol: int, **config) -> None:
    await fresh_stream(js, "PRICES", ["price.*"], **config)
    for symbol in ("AAPL", "MSFT", "NVDA"):
        for price in range(per_symbol):
            await js.publish(f"price.{symbol}", str(price).encode())


async def test_ex04_last_value_per_key_passes(js) -> None:
    """A max_msgs_per_subject=1 stream with two updates per symbol passes, probe cleaned up."""
    await _prices(js, 2, max_msgs_per_subject=1)
    result = await check("04", js)
    assert result.passed, result.message
    info = await js.stream_info("PRICES")
    assert info.state.messages == 3, "the checker's probe key must be purged"


async def test_ex04_plain_stream_keeps_every_price(js) -> None:
    """A stream without a per-subject limit keeps old prices, and the check names them."""
    await _prices(js, 2)
    result = await check("04", js)
    assert not result.passed and "max_msgs_per_subject=1" in result.message


async def test_ex04_no_update_replaced_anything(js) -> None:
    """The right limit but a single price per symbol: nothing was replaced, and it says so."""
    await _prices(js, 1, max_msgs_per_subject=1)
    result = await check("04", js)
    assert not result.passed and "at least two per symbol" in result.message


async def test_ex04_refusing_updates_is_not_last_value(js) -> None:
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


async def test_ex04_listed_symbols_fail_in_one_line(js) -> None:
    """A stream on the three symbols listed (not price.*) would store no new symbol: one
    line says what it captures and what to capture, where the probe used to hit no stream."""
    await fresh_stream(
        js, "PRICES", ["price.AAPL", "price.MSFT", "price.NVDA"], max_msgs_per_subject=1
    )
    for symbol in ("AAPL", "MSFT", "NVDA") * 2:
        await js.publish(f"price.{symbol}", b"1")
    result = await check("04", js)
    assert not result.passed
    assert result.message.startswith(
        "stream PRICES captures ['price.AAPL', 'price.MSFT', 'price.NVDA'], so a price for a "
        "new symbol such as price.CHECK"
    ), result.message
    assert "capture price.* (one token, any symbol)" in result.message


async def test_ex04_a_total_limit_reports_each_failing_condition(js) -> None:
    """max_msgs=3 (a limit on the whole stream, not per symbol) loses AAPL and keeps two
    NVDA prices: both observations are reported, with what to set."""
    await _prices(js, 2, max_msgs=3)
    result = await check("04", js)
    assert not result.passed
    assert result.message == (
        "2 things to fix: (1) PRICES has no price for ['AAPL']: publish on price.<symbol>; "
        "(2) PRICES keeps several prices per symbol {'price.NVDA': 2}: keep only the latest "
        "(max_msgs_per_subject=1)"
    )


async def test_ex04_raw_add_stream_on_a_wider_filter_passes(js) -> None:
    """Written differently from the solution (raw add_stream on price.>, prices in rounds,
    checked twice): passes, and the checker's probes leave nothing behind."""
    import contextlib

    import nats.js.errors

    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("PRICES")
    await js.add_stream(name="PRICES", subjects=["price.>"], max_msgs_per_subject=1)
    for price in (10, 11, 12):
        for symbol in ("NVDA", "AAPL", "MSFT"):
            await js.publish(f"price.{symbol}", str(price).encode())
    for _ in range(2):
        result = await check("04", js)
        assert result.passed, result.message
        assert result.message == (
            "PRICES keeps one price per symbol, older prices were replaced, and a symbol of "
            "the check's own kept only its update"
        )
    assert (await js.stream_info("PRICES")).state.messages == 3


async def _shipments(
    js,
    partitions: int = 4,
    *,
    ack: bool = True,
    dest: str = "",
    keys: tuple[str, ...] = ("s1", "s2", "s3", "s4", "s5", "s6"),
    filters: tuple[str, ...] = ("shipment.0.*", "shipment.1.*", "shipment.2.*", "shipment.3.*"),
) -> None:
    """SHIPMENTS partitioned by ``dest``, ``keys`` published, ship-N on ``filters[N]``."""
    dest = dest or f"shipment.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}"
    transform = SubjectTransform(src="shipment.*", dest=dest)
    await fresh_stream(js, "SHIPMENTS", ["shipment.*"], subject_transform=transform)
    for key in keys:
        await js.publish(f"shipment.{key}", b"{}")
    for p, subject in enumerate(filters):
        config = ConsumerConfig(max_ack_pending=1)
        sub = await js.pull_subscribe(
            subject, durable=f"ship-{p}", stream="SHIPMENTS", config=config
        )
        while ack and (await sub.consumer_info()).num_pending:
            [msg] = await sub.fetch(1, timeout=5)
            await msg.ack_sync()


async def test_ex14_four_partitions_pass_twice(js) -> None:
    """Four partitions, one in-order consumer each, all acked: passes, and again after probes."""
    await _shipments(js, 4)
    first = await check("14", js)
    assert first.passed, first.message
    second = await check("14", js)
    assert second.passed, second.message


async def test_ex14_keys_leaving_a_partition_empty_pass(js) -> None:
    """The learner's keys s1, s2, s5, s6 all hash to partitions 0 and 1: ship-2 and ship-3
    have nothing to acknowledge, and the partitioning is still right."""
    await _shipments(js, keys=("s1", "s2", "s5", "s6"))
    info = await js.consumer_info("SHIPMENTS", "ship-2")
    assert info.delivered.stream_seq == 0, "s1, s2, s5, s6 must leave partition 2 empty"
    result = await check("14", js)
    assert result.passed, result.message
    assert (await js.stream_info("SHIPMENTS")).state.messages == 4, "probes must be deleted"


async def test_ex14_transforms_written_differently_pass(js) -> None:
    """The server reads [pP]artition with spaces (server/subject_transform.go), and
    partition(4) hashes the whole subject: both partition by key, and both pass."""
    for dest in (
        "shipment.{{Partition(4,1)}}.{{wildcard(1)}}",
        "shipment.{{ partition(4) }}.{{ Wildcard(1) }}",
    ):
        await _shipments(js, dest=dest)
        result = await check("14", js)
        assert result.passed, (dest, result.message)


async def test_ex14_three_partitions_for_four_consumers_fail(js) -> None:
    """partition(3,1) with four consumers: ship-3 never gets a key, and the check shows where
    the probes were stored."""
    await _shipments(js, 3)
    result = await check("14", js)
    assert not result.passed
    assert "none of the 8 probe keys reached ship-3" in result.message, result.message
    assert "stored as shipment.0.<key>, shipment.1.<key>, shipment.2.<key>" in result.message


async def test_ex14_random_partition_fails(js) -> None:
    """{{random(4)}} spreads shipments over four partitions but not by key: the same key
    lands on two subjects, and the check names them."""
    await _shipments(js, dest="shipment.{{random(4)}}.{{wildcard(1)}}")
    result = await check("14", js)
    assert not result.passed
    assert "the same key was stored on different subjects" in result.message, result.message


async def test_ex14_consumers_on_the_whole_stream_fail(js) -> None:
    """Partitioned right, but every consumer reads shipment.*.*: each key reaches four."""
    await _shipments(js, filters=("shipment.*.*",) * 4)
    result = await check("14", js)
    assert not result.passed
    assert "4 consumers ['ship-0', 'ship-1', 'ship-2', 'ship-3'] receive" in result.message


async def test_ex14_unprocessed_partitions_fail(js) -> None:
    """The right stream and consumers, but nothing processed: the check says what is left."""
    await _shipments(js, 4, ack=False)
    result = await check("14", js)
    assert not result.passed and "events to deliver" in result.message


async def test_ex14_unpartitioned_stream_fails(js) -> None:
    """A stream without the partition transform fails, naming the destination to use."""
    await fresh_stream(js, "SHIPMENTS", ["shipment.*"])
    result = await check("14", js)
    assert not result.passed and "partition(4,1)" in result.message
    assert "stored shipment.edalab-probe-00 unchanged" in result.message
    assert (await js.stream_info("SHIPMENTS")).state.messages == 0


async def test_ex14_overlapping_consumers_fail(js) -> None:
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


async def _audit_from_3(js):
    """Exercise 07's consumer, configured right: durable audit from stream sequence 3."""
    return await EventConsumer.create(
        js,
        "USERS",
        "audit",
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=3,
        recreate=True,
    )


async def _greet_right(nc, name):
    """A right answer written unlike the solution: a callback and a future."""
    import asyncio

    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_msg(msg):
        if not got.done():
            got.set_result(msg.data)

    sub = await nc.subscribe(f"hello.{name}", cb=on_msg)
    await nc.publish(f"hello.{name}", b"hello there")
    try:
        return await asyncio.wait_for(got, timeout=2)
    finally:
        await sub.unsubscribe()


async def _greet_publish_first(nc, name):
    """Wrong: publishes before subscribing, so the greeting is gone."""
    await nc.publish(f"hello.{name}", b"hi")
    sub = await nc.subscribe(f"hello.{name}")
    return await sub.next_msg(timeout=0.5)


async def _greet_fixed_name(nc, name):
    """Wrong: always greets Ann, whatever name it is given."""
    sub = await nc.subscribe("hello.ann")
    await nc.publish("hello.ann", b"hi")
    return await sub.next_msg(timeout=1)


async def _greet_not_awaited(nc, name):
    """Wrong: returns the coroutine of next_msg instead of the message."""
    sub = await nc.subscribe(f"hello.{name}")
    await nc.publish(f"hello.{name}", b"hi")
    return sub.next_msg(timeout=1)


async def test_00_greet_right_answers_pass(nc) -> None:
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
async def test_00_greet_wrong_answers_say_why(nc, greet, said) -> None:
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
    result = await check("01", _OrderRight, report=False)
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
async def test_01_order_placed_wrong_answers_say_why(model, said) -> None:
    """Models that accept bad payloads, or miss the fields, get "not yet" naming the case."""
    result = await check("01", model, report=False)
    assert not result.passed and said in result.message, result.message


async def test_none_answers_say_what_to_write(nc, js) -> None:
    """A check cell passing its answer cell's placeholder (None) names it and the task."""
    for key, args, kwargs, name in [
        ("06", (None,), {}, "log"),
        ("10", (None,), {}, "charge"),
        ("17", (), {"award": None}, "award"),
        ("02", (None,), {}, "patterns"),
        ("03", (None,), {}, "acks"),
        ("08", (None,), {}, "registry"),
    ]:
        first = nc if key == "02" else js  # 02 comes before JetStream: it takes nc
        result = await check(key, first, *args, report=False, **kwargs)
        assert not result.passed
        assert result.message.startswith(f"{name} is still None: write your answer"), result.message
        assert EXERCISES[key].task in result.message
    result = await check("12", None, url="nats://x", user="auditor", report=False)
    assert result.message.startswith("js is still None"), result.message
