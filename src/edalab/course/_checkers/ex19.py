"""The checker of exercise 19 (notebook 19_one_active_worker).

The task: a consumer ``config`` and a ``worker(js, stream, consumer, handle)`` such that,
with two workers running, exactly one handles the jobs, and when it stops pulling the
other takes over within :data:`TAKEOVER` seconds, never both at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from edalab import ConsumerError, ensure_consumer, ensure_priority_consumer, ensure_stream

from ._common import pin_id_of
from ._core import _NotYet, _require

STREAM, CONSUMER = "PINCHECK", "pincheck"
#: How long after the active worker stops the standby must have handled a job (seconds).
TAKEOVER = 3.0
#: How long the first jobs may take to be handled (seconds).
_FIRST = 3.0
_FIX = (
    "give config a group and priority_timeout, e.g. {'group': 'workers', "
    "'priority_timeout': 1.0} (policy pinned_client), and pull in that group: "
    "PriorityPuller(js, stream, consumer, 'workers')"
)


#: The learner's ``async def worker(js, stream, consumer, handle)``.
Worker = Callable[..., Coroutine[Any, Any, Any]]


class _Run:
    """The two workers under test: what each handled, and when."""

    def __init__(self, js: JetStreamContext, worker: Worker) -> None:
        self.js = js
        self.worker = worker
        self.handled: dict[str, list[int]] = {"a": [], "b": []}
        self.pins: dict[str, set[str | None]] = {"a": set(), "b": set()}  # Nats-Pin-Id seen
        self.spans: list[tuple[str, float, float]] = []  # (worker, start, end)
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def start(self, name: str) -> None:
        async def handle(msg: Msg) -> None:
            started = time.monotonic()
            try:
                self.handled[name].append(int(msg.data))
                self.pins[name].add(pin_id_of(msg))
                await asyncio.sleep(0.01)  # the job's work
            finally:
                self.spans.append((name, started, time.monotonic()))

        self.tasks[name] = asyncio.create_task(self.worker(self.js, STREAM, CONSUMER, handle))

    async def stop(self, name: str) -> None:
        task = self.tasks.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def stop_all(self) -> None:
        for name in list(self.tasks):
            await self.stop(name)

    def failed(self) -> None:
        """A worker that ended on its own: say how (a 400 from the server, usually)."""
        for name, task in self.tasks.items():
            if not task.done():
                continue
            err = None if task.cancelled() else task.exception()
            said = f"{type(err).__name__}: {err}" if err else "it returned"
            hint = (
                "the consumer has a priority group, so every pull must name it: pull with "
                "PriorityPuller(js, stream, consumer, <the group in config>), or put "
                '"group" in each raw pull request'
                if "Priority Group missing" in str(err)
                else "a worker keeps pulling until it is cancelled"
            )
            raise _NotYet(f"worker {name} stopped by itself ({said}); {hint}")

    async def until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            self.failed()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def until_waiting(self, count: int, timeout: float) -> bool:
        """Both workers have a pull request waiting on the server (then jobs go out)."""
        deadline = time.monotonic() + timeout
        while (await self.js.consumer_info(STREAM, CONSUMER)).num_waiting < count:
            self.failed()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def total(self) -> int:
        return sum(len(jobs) for jobs in self.handled.values())


async def _publish(js: JetStreamContext, numbers: range) -> None:
    for n in numbers:
        await js.publish(f"pincheck.job.{n}", str(n).encode(), stream=STREAM)


async def _setup(js: JetStreamContext, config: dict[str, Any]) -> float | None:
    """A fresh stream and the learner's consumer; the priority_timeout asked for."""
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(STREAM)
    await ensure_stream(js, STREAM, ["pincheck.>"])
    settings = dict(config)
    group = settings.pop("group", None)
    timeout = settings.get("priority_timeout")
    try:
        if group is None:
            await ensure_consumer(js, STREAM, CONSUMER, **settings)
        else:
            await ensure_priority_consumer(js, STREAM, CONSUMER, group=group, **settings)
    except (TypeError, ConsumerError) as err:
        raise _NotYet(f"the checker could not create the consumer from config ({err})") from None
    return float(timeout) if timeout is not None else None


def _overlaps(spans: list[tuple[str, float, float]]) -> int:
    """How many pairs of jobs two different workers were handling at the same time."""
    return sum(
        1
        for i, (w1, s1, e1) in enumerate(spans)
        for w2, s2, e2 in spans[i + 1 :]
        if w1 != w2 and s1 < e2 and s2 < e1
    )


async def checker(js: JetStreamContext, config: Any = None, worker: Any = None) -> str:
    """Two instances of the worker on a fresh stream ``PINCHECK``, run live.

    a starts first and handles job 1, then b starts and jobs 2..6 go out: one worker
    must handle them all. Then the active worker is cancelled (it stops pulling) and
    jobs 7..9 go out: the standby must handle them within :data:`TAKEOVER` seconds.
    No job may be handled by both, and no two jobs by different workers at once.
    """
    _require(
        isinstance(config, dict),
        f"config is {type(config).__name__}; expected a dict of consumer settings: " + _FIX,
    )
    _require(
        callable(worker),
        "worker is not a function: write async def worker(js, stream, consumer, handle)",
    )
    priority_timeout = await _setup(js, config)
    run = _Run(js, worker)
    try:
        return await _scenario(js, run, "group" in config, priority_timeout)
    finally:
        await run.stop_all()
        with contextlib.suppress(nats.errors.Error):
            await js.delete_stream(STREAM)


async def _scenario(
    js: JetStreamContext, run: _Run, grouped: bool, priority_timeout: float | None
) -> str:
    run.start("a")
    await _publish(js, range(1, 2))
    _require(
        await run.until(lambda: run.total() >= 1, _FIRST),
        f"worker a handled no job within {_FIRST:g} s: pull from the consumer in a loop "
        "and call `await handle(msg)` for each message, then ack it",
    )
    run.start("b")
    _require(
        await run.until_waiting(2, _FIRST),
        f"the consumer never had pulls from both workers waiting within {_FIRST:g} s: "
        "each worker keeps one pull request open (pull again as soon as one ends)",
    )
    await _publish(js, range(2, 7))
    _require(
        await run.until(lambda: run.total() >= 6, _FIRST),
        f"of 6 jobs only {run.total()} were handled within {_FIRST:g} s: keep pulling, and "
        "ack each job after handle(msg)",
    )
    counts = {name: len(jobs) for name, jobs in run.handled.items()}
    pins = {pin for seen in run.pins.values() for pin in seen}
    _require(
        not (grouped and len(pins) > 1),
        f"the 6 jobs came under {len(pins)} different pin ids (a handled {counts['a']}, b "
        f"{counts['b']}): the server moved the pin although the workers kept pulling, so "
        "their pulls did not carry it: send the id from the Nats-Pin-Id header with every "
        "later pull (as PriorityPuller does); a pull without it waits like a standby's",
    )
    _require(
        min(counts.values()) == 0,
        f"both workers handled jobs (a: {counts['a']}, b: {counts['b']}); expected one "
        f"active worker and one idle standby: {_FIX}",
    )
    active, standby = ("a", "b") if counts["a"] else ("b", "a")
    await run.stop(active)
    await _publish(js, range(7, 10))
    took_over = await run.until(lambda: len(run.handled[standby]) >= 1, TAKEOVER)
    said = "the server's default, 120 s" if priority_timeout is None else f"{priority_timeout:g} s"
    _require(
        took_over,
        f"after the active worker stopped, the standby handled nothing within {TAKEOVER:g} s "
        f"(priority_timeout is {said}); expected a takeover within {TAKEOVER:g} s: set "
        "priority_timeout to 1 or 2 seconds, and keep each pull's expiry below it",
    )
    both = set(run.handled["a"]) & set(run.handled["b"])
    _require(not both, f"jobs {sorted(both)} were handled by both workers; expected each once")
    clash = _overlaps(run.spans)
    _require(
        not clash,
        f"{clash} time(s) the two workers were handling jobs at once; expected only one "
        "active at a time",
    )
    return (
        f"one worker handled all 6 jobs while the other stood by; when it stopped, the "
        f"standby took over within {TAKEOVER:g} s; no job handled by both, none at once"
    )
