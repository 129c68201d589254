"""Fault test of lesson 19: the pinned worker's process is killed with kill -9.

The standby (in this process) must take over within priority_timeout + 1 s of the kill,
and no job may be handled by the two workers at the same time. Prints its figures; run
alone with ``pytest tests/faults/test_faults_pinned.py -s`` to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import nats.js.errors
import pytest

from edalab import PriorityPuller, connect, ensure_priority_consumer, ensure_stream, wait_for

pytestmark = pytest.mark.slow

PRIORITY_TIMEOUT = 1.0
ACK_WAIT = 2.0

#: The pinned worker: prints "start <job> <t>" and "done <job> <t>" (system-wide
#: monotonic clock) around each job; it never finishes job 10, and is killed holding it.
WORKER_SCRIPT = """
import asyncio, sys, time
from edalab import PriorityPuller, connect

async def main(url):
    nc = await connect(url)
    puller = PriorityPuller(nc.jetstream(), "PINFAULT", "pinned", "g")
    while True:
        for msg in await puller.fetch(batch=5, timeout=0.25):
            n = int(msg.data)
            print(f"start {n} {time.monotonic()}", flush=True)
            if n == 10:
                await asyncio.Event().wait()  # stuck on job 10 until killed
            await asyncio.sleep(0.01)
            await msg.ack()
            print(f"done {n} {time.monotonic()}", flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_pinned_worker_killed_the_standby_takes_over_in_time(
    nats_url: str, tmp_path: Path
) -> None:
    """kill -9 of the pinned worker mid-job: the standby gets the next job within
    priority_timeout + 1 s, the killed worker's unacked jobs come back after ack_wait,
    every job is handled, and no two handlings by different workers overlap in time."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("PINFAULT")
    await ensure_stream(js, "PINFAULT", ["pinfault.>"])
    await ensure_priority_consumer(
        js, "PINFAULT", "pinned", group="g", priority_timeout=PRIORITY_TIMEOUT, ack_wait=ACK_WAIT
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), nats_url, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    killed: dict[int, list[float]] = {}  # job: [start, end] in the killed worker
    standby: dict[int, list[list[float]]] = {}  # job: [[start, end], ...] in the standby

    async def publish(numbers: range) -> None:
        for n in numbers:
            await js.publish("pinfault.job", str(n).encode())

    await publish(range(1, 2))
    first = (await asyncio.wait_for(proc.stdout.readline(), 20)).split()
    assert first[:2] == [b"start", b"1"]  # the subprocess holds the pin
    killed[1] = [float(first[2]), float("inf")]
    puller = PriorityPuller(js, "PINFAULT", "pinned", "g")
    took_over = asyncio.Event()
    first_standby_job = [0.0]

    async def run_standby() -> None:
        while True:
            for msg in await puller.fetch(batch=5, timeout=0.25):
                started = time.monotonic()
                if not took_over.is_set():
                    first_standby_job[0] = started
                    took_over.set()
                await asyncio.sleep(0.01)
                await msg.ack()
                standby.setdefault(int(msg.data), []).append([started, time.monotonic()])

    standby_task = asyncio.create_task(run_standby())
    await publish(range(2, 21))
    while True:  # read the pinned worker until it is stuck on job 10
        word, job, at = (await asyncio.wait_for(proc.stdout.readline(), 20)).split()
        n = int(job)
        if word == b"start":
            killed[n] = [float(at), float("inf")]
        else:
            killed[n][1] = float(at)
        if word == b"start" and n == 10:
            break
    os.kill(proc.pid, signal.SIGKILL)
    kill_at = time.monotonic()
    await proc.wait()
    for span in killed.values():  # what it had not finished ended with it
        span[1] = min(span[1], kill_at)
    await asyncio.wait_for(took_over.wait(), PRIORITY_TIMEOUT + 3)
    takeover = first_standby_job[0] - kill_at
    done_by_killed = {n for n, (_, end) in killed.items() if end < kill_at}

    async def all_handled() -> bool:
        return done_by_killed | set(standby) >= set(range(1, 21))

    await wait_for(all_handled, timeout=ACK_WAIT + 5, what="every job handled")
    standby_task.cancel()
    unfinished = sorted(set(killed) - done_by_killed)
    overlaps = sum(
        1
        for s1, e1 in killed.values()
        for spans in standby.values()
        for s2, e2 in spans
        if s1 < e2 and s2 < e1
    )
    print(
        f"\n[pinned worker killed] jobs=20, done_by_killed={len(done_by_killed)}, "
        f"unfinished_at_kill={unfinished}, handled_by_standby={len(standby)}, "
        f"standby_before_kill={sum(1 for v in standby.values() if v[0][0] < kill_at)}, "
        f"takeover_s={takeover:.2f} (priority_timeout {PRIORITY_TIMEOUT:g} s), "
        f"overlaps={overlaps}"
    )
    assert not [n for n, spans in standby.items() if spans[0][0] < kill_at]
    assert takeover <= PRIORITY_TIMEOUT + 1.0
    assert 10 in unfinished and set(unfinished) <= set(standby)  # redelivered after ack_wait
    assert overlaps == 0
    assert all(len(spans) == 1 for spans in standby.values())  # no job twice in the standby
    await nc.close()
