"""When the server redelivers: EventConsumer.run's on_transient choice, and the timeline chart."""

from __future__ import annotations

import pytest
from matplotlib.ticker import ScalarFormatter

from edalab import ConsumerError, EventConsumer, EventFactory, TransientError, publish_events
from edalab.course import fresh_stream
from edalab.course.charts.redelivery import DeliveryLog, on_time, timeline, window

BACKOFF = [0.2, 0.5]


async def _consumer(js, stream_name: str, token: str) -> EventConsumer:
    await fresh_stream(js, stream_name, [f"{token}.>"])
    await publish_events(js, [EventFactory(prefix=token)(f"{token}.created")])
    return await EventConsumer.create(js, stream_name, "worker", max_deliver=3, backoff=BACKOFF)


async def _fail_twice(event, delivery):
    if delivery.num_delivered < 3:
        raise TransientError("busy")


async def test_let_expire_follows_the_backoff(js, stream_name: str, token: str) -> None:
    """With on_transient='let_expire' nothing is sent, so redeliveries follow the backoff steps."""
    consumer = await _consumer(js, stream_name, token)
    log = DeliveryLog()
    report = await consumer.run(
        _fail_twice, timeout=2, on_transient="let_expire", observer=log.observe
    )
    assert (report.retried, report.acked) == (2, 1)
    gaps = log.gaps()
    assert len(gaps) == 2
    assert all(on_time(g, want) for g, want in zip(gaps, BACKOFF, strict=True)), gaps


async def test_nak_ignores_the_backoff(js, stream_name: str, token: str) -> None:
    """By default a transient failure is nak'ed (retry_delay), and the backoff does not time it."""
    consumer = await _consumer(js, stream_name, token)
    log = DeliveryLog()
    await consumer.run(_fail_twice, timeout=2, retry_delay=0.0, observer=log.observe)
    gaps = log.gaps()
    assert len(gaps) == 2
    assert gaps[0] < window(BACKOFF[0])[0], gaps  # back at once, before the first step


async def test_let_expire_keeps_an_explicit_delay(js, stream_name: str, token: str) -> None:
    """A TransientError naming its own delay is still nak'ed with it under let_expire."""
    consumer = await _consumer(js, stream_name, token)
    log = DeliveryLog()

    async def fail_with_delay(event, delivery):
        if delivery.num_delivered < 2:
            raise TransientError("busy", delay=0.0)

    await consumer.run(fail_with_delay, timeout=2, on_transient="let_expire", observer=log.observe)
    assert len(log.gaps()) == 1
    assert log.gaps()[0] < window(BACKOFF[0])[0]


async def test_bad_on_transient_is_a_typed_error(js, stream_name: str, token: str) -> None:
    """An unknown on_transient value is refused before anything is consumed."""
    consumer = await _consumer(js, stream_name, token)
    with pytest.raises(ConsumerError, match="on_transient"):
        await consumer.run(_fail_twice, on_transient="ignore")
    assert (await consumer.info()).num_pending == 1


def test_timeline_has_a_lane_per_scenario_in_plain_numbers() -> None:
    """The chart draws one labelled lane per scenario, with plain-number ticks."""
    fig = timeline({"ack_wait": [0, 1.0], "backoff": [0, 0.2, 0.8]}, expected={"backoff": [0, 0.2]})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["backoff", "ack_wait"]
    assert isinstance(ax.xaxis.get_major_formatter(), ScalarFormatter)
    assert not ax.xaxis.get_major_formatter().get_useOffset()


def test_log_table_marks_late_gaps() -> None:
    """A gap far beyond its expected step is marked as not on time."""
    log = DeliveryLog()
    for delivery, at in ((1, 0.0), (2, 0.21), (3, 3.0)):
        log.add(seq=7, delivery=delivery, at=at)
    assert [row[-1] for row in log.table(expected=[0.2, 0.5]).rows] == [True, False]


@pytest.mark.parametrize("delay", [0.0, 0.1, 1.0])
def test_a_nak_delay_does_not_pass_for_the_backoff(delay: float) -> None:
    """The gaps a nak(delay) makes on a backoff consumer are not on time unless delay = step 1."""
    backoff = [0.5, 1.0, 2.0]
    # what the server does (server/consumer.go): delay + backoff[n] - backoff[0]
    gaps = [delay + step - backoff[0] for step in backoff]
    assert not all(on_time(g, want) for g, want in zip(gaps, backoff, strict=True))
    assert all(on_time(g, want) for g, want in zip(backoff, backoff, strict=True))
