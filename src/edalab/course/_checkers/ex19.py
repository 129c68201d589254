"""The checker of exercise 19 (notebook 19_one_active_worker).

The task: a consumer ``config`` and a ``worker(js, stream, consumer, handle)`` such that,
with two workers running, exactly one handles the jobs, and when it stops pulling the
other takes over within :data:`TAKEOVER` seconds, never both at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from edalab import (
    ConsumerError,
    ensure_consumer,
    ensure_priority_consumer,
    ensure_stream,
    pinned_client,
)

from ._common import pin_id_of
from ._core import _NotYet, _require

STREAM, CONSUMER = "PINCHECK", "pincheck"
#: How long after the active worker stops the standby must have handled a job (seconds).
TAKEOVER = 3.0
#: How long the first jobs may take to be handled (seconds).
_FIRST = 3.0
#: How long a cancelled worker may take to stop (seconds).
_STOP = 2.0
#: How long the checker watches, inside handle(msg), for an ack that came before it (seconds).
_EARLY_ACK = 0.2
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
        self.tasks: dict[str, asyncio.Future[Any]] = {}
        self.acked_early: int | None = None  # a job acked before handle(msg) ran

    def start(self, name: str) -> None:
        async def handle(msg: Msg) -> None:
            started = time.monotonic()
            try:
                self.handled[name].append(int(msg.data))
                self.pins[name].add(pin_id_of(msg))
                if self.total() == 1:
                    await self._acked_already(msg)
                await asyncio.sleep(0.01)  # the job's work
            finally:
                self.spans.append((name, started, time.monotonic()))

        try:
            running = self.worker(self.js, STREAM, CONSUMER, handle)
        except TypeError as err:
            raise _NotYet(
                f"worker(js, stream, consumer, handle) could not be called ({err}): write "
                "async def worker(js, stream, consumer, handle)"
            ) from None
        if not inspect.isawaitable(running):
            raise _NotYet(
                f"worker(js, stream, consumer, handle) returned {type(running).__name__}, not "
                "a coroutine: write it with async def, pulling in a loop that never returns"
            )
        self.tasks[name] = asyncio.ensure_future(running)

    async def _acked_already(self, msg: Msg) -> None:
        """Note (in :attr:`acked_early`) when the server saw ``msg``'s ack before handle."""
        seq = msg.metadata.sequence.stream
        deadline = time.monotonic() + _EARLY_ACK
        while time.monotonic() < deadline:
            if (await self.js.consumer_info(STREAM, CONSUMER)).ack_floor.stream_seq >= seq:
                self.acked_early = int(msg.data)
                return
            await asyncio.sleep(0.02)

    async def stop(self, name: str) -> bool:
        """Cancel a worker; ``False`` when it is still running :data:`_STOP` s later.

        The cancel is repeated until the task ends: on Python 3.11, ``asyncio.wait_for``
        (inside nats-py's ``next_msg``) can lose a cancel that meets a reply arriving at the
        same moment, and a right answer must not fail on that. A worker that catches
        ``CancelledError`` swallows every repeat too, so it is still caught.
        """
        task = self.tasks.pop(name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STOP
        while not task.done() and loop.time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if not task.done():
            return False
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
        return True

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
                else "its pulls name a group the consumer does not have: use the same group "
                "in config and in the worker"
                if "Invalid Priority Group" in str(err)
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


async def _all_acked(js: JetStreamContext, run: _Run) -> None:
    """Every handled job is acknowledged within a second."""
    deadline = time.monotonic() + 1.0
    while (unacked := (await js.consumer_info(STREAM, CONSUMER)).num_ack_pending) > 0:
        run.failed()
        _require(
            time.monotonic() < deadline,
            f"{unacked} of the 6 jobs handled are still unacknowledged: after "
            "`await handle(msg)`, `await msg.ack()`; an unacknowledged job comes back "
            "after ack_wait, to a worker that may not expect it",
        )
        await asyncio.sleep(0.05)


async def _pin_kept(js: JetStreamContext, run: _Run, group: str, priority_timeout: float) -> None:
    """With no jobs, both workers pulling, the pin stays put for 1.5 priority_timeouts."""
    before = await pinned_client(js, STREAM, CONSUMER, group)
    _require(
        before is not None,
        "no worker holds a pin: give config the pinned_client policy (the default of "
        "ensure_priority_consumer); overflow has no pin and no standby",
    )
    await run.until(lambda: False, 1.5 * priority_timeout)
    after = await pinned_client(js, STREAM, CONSUMER, group)
    _require(
        after == before,
        f"with no jobs for {1.5 * priority_timeout:g} s the pin "
        f"{'was dropped' if after is None else 'moved'} although both workers kept pulling: "
        "the pinned worker must pull again before priority_timeout runs out; keep each "
        "pull's expiry well below it (the timer restarts when a pull arrives, not while "
        "it waits)",
    )


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
    must handle them all, under one pin, acking each after ``handle`` (not before). With
    no jobs for 1.5 ``priority_timeout`` the pin must stay put. Then the active worker
    is cancelled (it must stop pulling) and jobs 7..9 go out: the standby must handle
    them within :data:`TAKEOVER` seconds. No job may be handled by both, and no two
    jobs by different workers at once.
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
        return await _scenario(js, run, config.get("group"), priority_timeout)
    finally:
        await run.stop_all()
        with contextlib.suppress(nats.errors.Error):
            await js.delete_stream(STREAM)


async def _scenario(
    js: JetStreamContext, run: _Run, group: Any, priority_timeout: float | None
) -> str:
    grouped = group is not None
    run.start("a")
    await _publish(js, range(1, 2))
    _require(
        await run.until(lambda: run.total() >= 1, _FIRST),
        f"worker a handled no job within {_FIRST:g} s: pull from the consumer in a loop "
        "and call `await handle(msg)` for each message, then ack it; a fetch returns when "
        "its batch is full or its expiry ends, so keep the expiry short (e.g. 0.25 s); "
        "and do not hide errors: a pull the server refuses raises ConsumerError",
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
        f"{counts['b']}): the server moved the pin although the workers kept pulling: "
        "send the id from the Nats-Pin-Id header with every later pull (as PriorityPuller "
        "does), and pull again well within priority_timeout (keep each pull's expiry "
        "well below it: the timer restarts when a pull arrives, not while it waits)",
    )
    _require(
        min(counts.values()) == 0,
        f"both workers handled jobs (a: {counts['a']}, b: {counts['b']}); expected one "
        f"active worker and one idle standby: {_FIX}",
    )
    await _all_acked(js, run)
    _require(
        run.acked_early is None,
        f"job {run.acked_early} was acknowledged before handle(msg) ran: ack after handle "
        "returns, so that a job whose worker dies halfway is redelivered, not lost",
    )
    if grouped and priority_timeout is not None and priority_timeout <= TAKEOVER:
        await _pin_kept(js, run, str(group), priority_timeout)
    active, standby = ("a", "b") if counts["a"] else ("b", "a")
    _require(
        await run.stop(active),
        f"worker {active} kept running {_STOP:g} s after it was cancelled: it catches "
        "asyncio.CancelledError (a bare `except:` or `except BaseException:`); catch only "
        "the errors you expect, and restart the kernel to stop the one still running",
    )
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
