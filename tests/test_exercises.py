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
from edalab.course import exercises
from edalab.course.charts.redelivery import DeliveryLog
from edalab.course.exercises import EXERCISES, Exercise, check
from edalab.course.manifest import LESSONS
from edalab.factories import EventFactory

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


async def test_unforeseen_nats_error_is_one_line(js, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A nats-py error no checker foresaw becomes one "not yet" line naming it, no traceback."""
    import nats.js.errors

    async def trips(js):  # type: ignore[no-untyped-def]
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


async def test_03_window_in_minutes_fails(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_03_default_window_and_a_new_event_fail_together(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_03_raw_publishes_with_msg_id_pass(js) -> None:  # type: ignore[no-untyped-def]
    """Written differently from the solution (raw add_stream and js.publish with a
    Nats-Msg-Id header, the resend in the middle): passes."""
    import contextlib

    import nats.js.errors

    make = EventFactory(prefix="raw-")
    orders = [make("order.placed") for _ in range(3)]
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("ORDERS")
    await js.add_stream(name="ORDERS", subjects=["order.>"], duplicate_window=300)

    async def send(event):  # type: ignore[no-untyped-def]
        return await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})

    acks = [await send(orders[0]), await send(orders[1]), await send(orders[0])]
    acks.append(await send(orders[2]))
    result = await check("03", js, acks)
    assert result.passed, result.message
    assert "the resend of raw-0001 was answered duplicate=True with sequence 1" in result.message


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


async def test_05_half_delivered_and_unacked_reports_both(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_05_deliver_new_skips_the_stored_orders(js) -> None:  # type: ignore[no-untyped-def]
    """billing created with deliver policy new, after the orders: it has nothing to deliver,
    and the check says why instead of asking to run a handler that has nothing to do."""
    make = EventFactory(prefix="t05c-")
    await fresh_stream(js, "ORDERS", ["order.>"])
    await publish_events(js, [make("order.placed"), make("order.placed")])
    billing = await EventConsumer.create(
        js, "ORDERS", "billing", filter_subject="order.placed", deliver_policy=DeliverPolicy.NEW
    )

    async def ok(event):  # type: ignore[no-untyped-def]
        return None

    await billing.run(ok, timeout=0.3)
    result = await check("05", js)
    assert result.message == (
        "ORDERS holds 2 order.placed events, and billing has none to deliver: its deliver "
        "policy new starts after them; create billing with the default deliver policy all"
    )


async def test_05_raw_pull_subscription_passes(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_06_right_config_but_default_naks_fail(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_06_right_config_but_plain_naks_fail(js) -> None:  # type: ignore[no-untyped-def]
    """A handler asking for a retry at once (a plain nak) is back in milliseconds, not after
    the backoff: the check says so, whatever the machine's load."""
    careful = await _careful(js)
    log = DeliveryLog()

    async def nak_now(event, delivery):  # type: ignore[no-untyped-def]
        if delivery.num_delivered < 4:
            raise TransientError("not yet", delay=0)

    await careful.run(nak_now, timeout=2, observer=log.observe)
    assert [r.delivery for r in log.records] == [1, 2, 3, 4]
    wrong = await check("06", js, log)
    assert not wrong.passed
    assert "sequence 1: delivery 2 came 0.0" in wrong.message, wrong.message
    assert "A nak sets its own delay (and plain nak none)" in wrong.message


async def test_06_wrong_configuration_reports_every_setting(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_06_raw_pull_consumer_left_to_expire_passes(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_07_off_by_one_start_fails(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_07_replay_from_the_start_reports_policy_and_start(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_07_fetched_but_not_acked_reports_both(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_07_raw_consumer_from_sequence_3_passes(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_02_patterns_right(nc) -> None:  # type: ignore[no-untyped-def]
    """The two patterns the mailer needs receive exactly the wanted probes, once each,
    also written the other way round as a tuple."""
    result = await check("02", nc, ["user.*.updated", "user.deleted"])
    assert result.passed, result.message
    assert "exactly the 5 the mailer wants" in result.message
    assert "user.<part>.updated for a part named at random" in result.message
    swapped = await check("02", nc, ("user.deleted", "user.*.updated"))
    assert swapped.passed, swapped.message


async def test_02_listing_the_known_parts_fails(nc) -> None:  # type: ignore[no-untyped-def]
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


async def test_08_v3_model_registered_as_v4_fails(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_08_old_events_without_a_country_fail(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_08_right_answer_written_differently_passes(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_08_a_message_that_is_no_event_is_one_line(js) -> None:  # type: ignore[no-untyped-def]
    """Something published to USERS by hand (not an event) is named by its sequence."""
    registry = await _stored_v3(js)
    registry.register("user.created", 4, V4)
    registry.upcaster("user.created", 3)(lambda data: data)
    await js.publish("user.created", b"hello")
    result = await check("08", js, registry)
    assert result.message.startswith("USERS message 2 is not an event: "), result.message
    assert "\n" not in result.message


async def test_unknown_exercise_is_an_error(js) -> None:  # type: ignore[no-untyped-def]
    """A typo in the exercise key is reported with the known keys."""
    with pytest.raises(ValueError, match="known: 02"):
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
    """A put (bucket right, behaviour wrong) and an in-memory guard fail, each naming every
    step it failed; a handler that raises fails; record() passes."""
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
    assert not wrong.passed and wrong.message.startswith("3 things to fix: (1) two racing")
    assert "and one redelivery charged 'check10-" in wrong.message and "3 times" in wrong.message
    assert "(2) an event another process had charged was charged again (2 writes)" in (
        wrong.message
    )
    assert "(3) when another process charges between your check and your write" in wrong.message
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


async def test_10_a_lock_in_this_process_fails(js) -> None:  # type: ignore[no-untyped-def]
    """Check-then-put under an asyncio.Lock survives the in-process race, but not another
    process charging between its check and its write: the checker shows that deterministically."""
    import asyncio

    import nats.js.errors

    from edalab import ProcessedIds

    charges = await ProcessedIds.open(js, "charges", history=5, fresh=True)
    lock = asyncio.Lock()

    async def locked(event) -> None:  # type: ignore[no-untyped-def]
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


async def test_10_create_written_differently_passes(js) -> None:  # type: ignore[no-untyped-def]
    """Written differently from the solution (kv.create on the raw bucket, a refused create
    caught as KeyWrongLastSequenceError, an asyncio.Lock too): passes."""
    import asyncio
    import contextlib

    import nats.js.errors

    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_key_value("charges")
    kv = await js.create_key_value(bucket="charges", history=5)
    lock = asyncio.Lock()

    async def charge(event) -> None:  # type: ignore[no-untyped-def]
        async with lock:
            try:
                await kv.create(event.id, str(event.data["amount_cents"]).encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                return

    result = await check("10", js, charge)
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


async def test_ex04_listed_symbols_fail_in_one_line(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_ex04_a_total_limit_reports_each_failing_condition(js) -> None:  # type: ignore[no-untyped-def]
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


async def test_ex04_raw_add_stream_on_a_wider_filter_passes(js) -> None:  # type: ignore[no-untyped-def]
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
