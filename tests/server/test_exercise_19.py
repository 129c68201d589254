"""Exercise 19's checker runs two workers live: one active, a standby taking over in time.

The right answers (the solution, and a raw worker written differently) pass; the wrong
answers learners write (a plain consumer, workers that do not name the group, a long
priority_timeout, the placeholders) each get "not yet" with a next step.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from edalab import PriorityPuller
from edalab.course._checkers import _core as exercises
from edalab.course.exercises import check


@pytest.fixture(autouse=True)
def _unforeseen_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checker tripping on an error it did not foresee fails the test, not quietly."""

    def reraise(exercise: str, err: Exception) -> None:
        raise err

    monkeypatch.setattr(exercises, "_unexpected", reraise)


async def puller_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """The notebook's solution: PriorityPuller in the group, batches of 5."""
    puller = PriorityPuller(js, stream, consumer, "workers")
    while True:
        for msg in await puller.fetch(batch=5, timeout=0.25):
            await handle(msg)
            await msg.ack()


async def raw_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A right answer written differently: raw pull requests, one message each, the pin
    id kept by hand from the Nats-Pin-Id header and dropped on a 423."""
    nc = js.connection
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    pin = None
    while True:
        request = {"batch": 1, "expires": 300_000_000, "group": "solo"}
        if pin:
            request["id"] = pin
        await nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", json.dumps(request).encode(), inbox
        )
        msg = await sub.next_msg(timeout=5)
        status = msg.headers.get("Status") if msg.headers else None
        if status == "423":
            pin = None
        elif status is None:
            pin = msg.headers.get("Nats-Pin-Id", pin) if msg.headers else pin
            await handle(msg)
            await msg.ack()


async def pinless_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A wrong answer: raw pulls in the group that never send the pin id back."""
    nc = js.connection
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    while True:
        request = {"batch": 5, "expires": 250_000_000, "group": "workers"}
        await nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", json.dumps(request).encode(), inbox
        )
        while True:
            msg = await sub.next_msg(timeout=5)
            if msg.headers and "Status" in msg.headers:
                break
            await handle(msg)
            await msg.ack()


async def plain_fetch_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A wrong answer: nats-py's fetch, which sends no group."""
    sub = await js.pull_subscribe_bind(consumer, stream)
    while True:
        try:
            msgs = await sub.fetch(5, timeout=0.25)
        except TimeoutError:
            continue
        for msg in msgs:
            await handle(msg)
            await msg.ack()


PINNED = {"group": "workers", "priority_timeout": 1.0}


async def test_19_the_solution_passes(js) -> None:
    """PriorityPuller workers on a pinned consumer with a 1 s priority_timeout pass."""
    result = await check("19", js, PINNED, puller_worker, report=False)
    assert result.passed, result.message
    assert "standby took over within 3 s" in result.message


async def test_19_a_raw_worker_with_another_group_passes(js) -> None:
    """Raw pull requests, batch 1, group 'solo', priority_timeout 2 s, ack_wait set: passes."""
    config = {"group": "solo", "priority_timeout": 2, "ack_wait": 5}
    result = await check("19", js, config, raw_worker, report=False)
    assert result.passed, result.message


async def test_19_a_plain_consumer_lets_both_workers_work(js) -> None:
    """No group in config: a plain consumer shares the jobs, and the checker says so."""
    result = await check("19", js, {}, puller_worker, report=False)
    assert not result.passed
    assert result.message.startswith("both workers handled jobs (a: ")
    assert "priority_timeout" in result.message and "PriorityPuller" in result.message


async def test_19_max_ack_pending_1_is_not_one_worker(js) -> None:
    """max_ack_pending=1 keeps one job in flight, yet both workers get jobs: not yet."""
    result = await check("19", js, {"max_ack_pending": 1}, plain_fetch_worker, report=False)
    assert not result.passed
    assert result.message.startswith("both workers handled jobs")


async def test_19_workers_that_do_not_name_the_group_get_a_400(js) -> None:
    """A pinned consumer with nats-py's fetch: the server's 400 reaches the learner."""
    result = await check("19", js, PINNED, plain_fetch_worker, report=False)
    assert not result.passed
    assert "Priority Group missing" in result.message, result.message
    assert "every pull must name it: pull with PriorityPuller" in result.message


async def test_19_a_worker_that_forgets_its_pin_loses_it(js) -> None:
    """Pulls in the group without the pin id: the pin moves every priority_timeout, so
    the jobs come under two pins, to one worker or both: not yet, naming the header."""
    result = await check("19", js, PINNED, pinless_worker, report=False)
    assert not result.passed
    assert "the 6 jobs came under 2 different pin ids" in result.message, result.message
    assert "send the id from the Nats-Pin-Id header with every later pull" in result.message


async def test_19_a_long_priority_timeout_takes_over_too_late(js) -> None:
    """priority_timeout=30: the standby gets nothing within 3 s; the message names 30 s."""
    config = {"group": "workers", "priority_timeout": 30}
    result = await check("19", js, config, puller_worker, report=False)
    assert not result.passed
    assert "the standby handled nothing within 3 s (priority_timeout is 30 s)" in result.message
    assert "set priority_timeout to 1 or 2 seconds" in result.message


async def test_19_the_placeholders_say_still_none(js) -> None:
    """The student copy's `config = worker = None`: write your answer."""
    result = await check("19", js, None, None, report=False)
    assert not result.passed
    assert result.message.startswith("config and worker is still None")


async def ack_first_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A wrong answer: acks each message, then handles it (a crash mid-job loses it)."""
    puller = PriorityPuller(js, stream, consumer, "workers")
    while True:
        for msg in await puller.fetch(batch=5, timeout=0.25):
            await msg.ack()
            await handle(msg)


async def no_ack_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A wrong answer: handles each message and never acks it."""
    puller = PriorityPuller(js, stream, consumer, "workers")
    while True:
        for msg in await puller.fetch(batch=5, timeout=0.25):
            await handle(msg)


async def slow_pull_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A wrong answer: one message per pull, each pull waiting 1.5 s, longer than the
    1 s priority_timeout: busy, it keeps its pin; idle, it loses it."""
    puller = PriorityPuller(js, stream, consumer, "workers")
    while True:
        for msg in await puller.fetch(batch=1, timeout=1.5):
            await handle(msg)
            await msg.ack()


#: While set, catch_all_worker swallows cancellation too (as a bare ``except:`` does).
SWALLOW = {"cancel": True}


async def catch_all_worker(js: Any, stream: str, consumer: str, handle: Any) -> None:
    """A wrong answer: catches every exception, cancellation included, and loops."""
    puller = PriorityPuller(js, stream, consumer, "workers")
    while True:
        try:
            for msg in await puller.fetch(batch=5, timeout=0.25):
                await handle(msg)
                await msg.ack()
        except BaseException:
            if not SWALLOW["cancel"]:
                raise
            await asyncio.sleep(0.05)


async def test_19_a_worker_that_acks_before_handling_is_not_yet(js) -> None:
    """The server saw job 1's ack while handle(msg) ran: not yet, ack after handle."""
    result = await check("19", js, PINNED, ack_first_worker, report=False)
    assert not result.passed
    assert result.message.startswith("job 1 was acknowledged before handle(msg) ran")


async def test_19_a_worker_that_never_acks_is_not_yet(js) -> None:
    """Every job handled, none acked: not yet, naming msg.ack()."""
    result = await check("19", js, PINNED, no_ack_worker, report=False)
    assert not result.passed
    assert result.message.startswith("6 of the 6 jobs handled are still unacknowledged")


async def test_19_pulls_waiting_longer_than_priority_timeout_lose_the_pin(js) -> None:
    """A pull expiry above priority_timeout: the pin is dropped while idle: not yet."""
    result = await check("19", js, PINNED, slow_pull_worker, report=False)
    assert not result.passed
    assert "the pin was dropped although both workers kept pulling" in result.message
    assert "keep each pull's expiry well below it" in result.message


async def test_19_a_worker_that_swallows_cancellation_does_not_hang_the_check(js) -> None:
    """A bare except keeps the cancelled worker alive: not yet within seconds, no hang."""
    try:
        result = await asyncio.wait_for(check("19", js, PINNED, catch_all_worker, report=False), 15)
    finally:
        SWALLOW["cancel"] = False  # the leftover workers may now stop
    assert not result.passed
    assert "kept running 2 s after it was cancelled: it catches asyncio.CancelledError" in (
        result.message
    )


async def test_19_a_worker_that_is_not_a_coroutine_function_is_not_yet(js) -> None:
    """A plain def, or the wrong parameters: not yet, naming the signature."""

    def plain(js: Any, stream: str, consumer: str, handle: Any) -> None:
        return None

    async def two_params(js: Any, handle: Any) -> None:
        return None

    result = await check("19", js, PINNED, plain, report=False)
    assert not result.passed and "returned NoneType, not a coroutine" in result.message
    result = await check("19", js, PINNED, two_params, report=False)
    assert not result.passed and "could not be called (" in result.message


async def test_19_a_worker_pulling_another_group_is_told_to_match_config(js) -> None:
    """config says group 'jobs', the workers pull in 'workers': the 400 and what to do."""
    config = {"group": "jobs", "priority_timeout": 1.0}
    result = await check("19", js, config, puller_worker, report=False)
    assert not result.passed
    assert "Invalid Priority Group" in result.message
    assert "use the same group in config and in the worker" in result.message
