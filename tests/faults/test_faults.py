"""Fault tests: real server processes, kill -9 and restarts. Each prints its figures.

Run alone with ``pytest tests/faults/test_faults.py -s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from nats.js.api import AckPolicy
from nats.js.client import JetStreamContext
from pydantic import BaseModel

from edalab import (
    DeadLetters,
    EventConsumer,
    EventFactory,
    NatsServer,
    PermanentError,
    SchemaRegistry,
    connect,
    ensure_stream,
    ingest_events,
    publish_events,
    stored_event_ids,
    wait_for,
)

pytestmark = pytest.mark.slow


async def _dead_letters(js) -> DeadLetters:
    """The session's dead-letter stream, emptied (one stream may capture the advisories)."""
    dead = DeadLetters(js)
    await dead.setup()
    await js.purge_stream(dead.stream)
    return dead


def report(name: str, **figures: int) -> None:
    """Print a test's figures on one line."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


async def _kill_9_and_restart(
    srv: NatsServer, publishing: asyncio.Task[None], js: JetStreamContext, stream: str
) -> tuple[Counter[str], int]:
    """SIGKILL the server (no chance to flush or say goodbye), start it again on the same
    port and store, let the publisher finish; the stored event ids and the duplicates."""
    srv.kill()
    await asyncio.to_thread(srv.start)
    await asyncio.wait_for(publishing, 120)
    ids = await stored_event_ids(js, stream)
    return ids, sum(c - 1 for c in ids.values() if c > 1)


async def test_kill_9_while_publishing_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """kill -9 mid-stream, restart on the same store: every acknowledged event is there once."""
    total = 10_000
    with NatsServer(store_dir=tmp_path / "store") as srv:
        nc = await connect(srv.url, max_reconnect_attempts=-1)
        js = nc.jetstream()
        await ensure_stream(js, "FAULT", ["fault.>"])
        make = EventFactory()
        events = [make("fault.event", {"n": i}) for i in range(total)]
        acked: list[int] = []
        halfway = asyncio.Event()

        async def publisher() -> None:
            for start in range(0, total, 500):
                chunk = events[start : start + 500]
                acks = await publish_events(js, chunk, window=128, timeout=2, retry_for=60)
                acked.extend(a.seq for a in acks)
                if len(acked) >= total // 3:
                    halfway.set()

        task = asyncio.create_task(publisher())
        await asyncio.wait_for(halfway.wait(), 60)
        killed_at = len(acked)
        ids, duplicates = await _kill_9_and_restart(srv, task, js, "FAULT")
        report(
            "kill -9 publisher",
            published=total,
            acknowledged=len(acked),
            acked_before_kill=killed_at,
            found=len(ids),
            duplicates=duplicates,
        )
        assert len(acked) == total
        assert set(ids) == {e.id for e in events}
        assert duplicates == 0
        await nc.close()


async def test_kill_9_while_fast_ingesting_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """kill -9 in the middle of an ingest_events batch, restart: every event stored once."""
    total, chunk = 30_000, 10_000
    with NatsServer(store_dir=tmp_path / "store") as srv:
        nc = await connect(srv.url, max_reconnect_attempts=-1)
        js = nc.jetstream()
        await ensure_stream(js, "FASTFAULT", ["fast.>"], allow_batched=True)
        make = EventFactory()
        events = [make("fast.event", {"n": i}) for i in range(total)]
        reports = []

        async def publisher() -> None:
            for start in range(0, total, chunk):
                batch = events[start : start + chunk]
                reports.append(await ingest_events(js, batch, timeout=2, retry_for=60))

        async def into_second_batch() -> bool:
            return (await js.stream_info("FASTFAULT")).state.messages >= chunk + 2_000

        task = asyncio.create_task(publisher())
        await wait_for(into_second_batch, timeout=60, what="the second batch", interval=0.005)
        # SIGKILL while the second batch is on its way
        ids, duplicates = await _kill_9_and_restart(srv, task, js, "FASTFAULT")
        report(
            "kill -9 fast ingest",
            published=total,
            batches=sum(r.batches for r in reports),
            resent=sum(r.resent for r in reports),
            found=len(ids),
            duplicates=duplicates,
        )
        assert sum(r.events for r in reports) == total
        assert sum(r.batches for r in reports) > total // chunk  # a batch had to start again
        assert set(ids) == {e.id for e in events}
        assert duplicates == 0
        await nc.close()


CONSUMER_SCRIPT = """
import asyncio, sys
from edalab import connect

async def main(url):
    nc = await connect(url)
    sub = await nc.jetstream().pull_subscribe_bind("crashy", "CRASH")
    msgs = await sub.fetch(20, timeout=5)
    print(f"fetched {len(msgs)}", flush=True)
    await asyncio.Event().wait()  # hold them, never ack, until killed

asyncio.run(main(sys.argv[1]))
"""


async def test_consumer_killed_before_acking_gets_everything_redelivered(
    nats_url: str, tmp_path: Path
) -> None:
    """A consumer process killed with unacked events: all are redelivered and processed."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    await ensure_stream(js, "CRASH", ["crash.>"])
    make = EventFactory()
    events = [make("crash.job", {"n": i}) for i in range(50)]
    await publish_events(js, events)
    await EventConsumer.create(js, "CRASH", "crashy", ack_wait=1)
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), nats_url, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert line.strip() == b"fetched 20"
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    consumer = await EventConsumer.create(js, "CRASH", "crashy", ack_wait=1)
    processed: Counter[str] = Counter()
    redelivered = 0

    async def handle(event, delivery) -> None:
        nonlocal redelivered
        processed[event.id] += 1
        redelivered += delivery.num_delivered > 1

    await consumer.run(handle, batch=25, timeout=3, double_ack=True)
    report(
        "consumer killed",
        published=len(events),
        held_by_killed_process=20,
        processed=len(processed),
        redelivered=redelivered,
    )
    assert set(processed) == {e.id for e in events}
    assert redelivered == 20
    await nc.close()


BULK_WORKER_SCRIPT = """
import asyncio, sys
from edalab import EventConsumer, connect

async def main(url):
    nc = await connect(url)
    consumer = await EventConsumer.create(nc.jetstream(), "CRASHBULK", "bulk", ack_wait=1)
    lists = 0
    async for deliveries in consumer.batches(batch=20, timeout=5):
        lists += 1
        if lists == 1:
            await consumer.ack_batch(deliveries)
            await nc.flush()
            print(f"acked {len(deliveries)}", flush=True)
        else:
            print(f"holding {len(deliveries)}", flush=True)
            await asyncio.Event().wait()  # killed mid-batch, never acks these

asyncio.run(main(sys.argv[1]))
"""


async def _bulk_worker_killed(nats_url: str, tmp_path: Path, stream: str) -> tuple[int, int]:
    """Run BULK_WORKER_SCRIPT on ``stream`` (100 events) until it holds a list; kill -9 it."""
    script = tmp_path / "worker.py"
    script.write_text(BULK_WORKER_SCRIPT.replace("CRASHBULK", stream))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), nats_url, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    acked = int((await asyncio.wait_for(proc.stdout.readline(), 20)).split()[1])
    held = int((await asyncio.wait_for(proc.stdout.readline(), 20)).split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    return acked, held


async def test_bulk_worker_killed_mid_batch_loses_nothing(nats_url: str, tmp_path: Path) -> None:
    """batches() + ack_batch (explicit acks): a worker killed holding a list loses nothing."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    await ensure_stream(js, "CRASHBULK", ["crashbulk.>"])
    await js.purge_stream("CRASHBULK")
    make = EventFactory()
    events = [make("crashbulk.job", {"n": i}) for i in range(100)]
    await publish_events(js, events)
    await EventConsumer.create(js, "CRASHBULK", "bulk", ack_wait=1)
    acked, held = await _bulk_worker_killed(nats_url, tmp_path, "CRASHBULK")
    consumer = await EventConsumer.create(js, "CRASHBULK", "bulk", ack_wait=1)
    processed: Counter[str] = Counter()
    async for deliveries in consumer.batches(batch=20, timeout=3):
        processed.update(d.event.id for d in deliveries)
        await consumer.ack_batch(deliveries)
    info = await consumer.info()
    report("bulk worker killed", published=len(events), acked=acked, held=held,
           processed_after=len(processed))  # fmt: skip
    assert held > 0
    assert {e.id for e in events[acked:]} <= set(processed)  # the held list came back
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    await nc.close()


async def test_ack_all_lets_a_later_ack_cover_a_killed_workers_messages(nats_url: str) -> None:
    """AckPolicy.ALL: one worker's ack of seq N settles another's unfinished messages below N."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    await ensure_stream(js, "ACKALL", ["ackall.>"])
    await js.purge_stream("ACKALL")
    make = EventFactory()
    await publish_events(js, [make("ackall.job", {"n": i}) for i in range(20)])
    config = {"ack_policy": AckPolicy.ALL, "ack_wait": 1}
    first = await EventConsumer.create(js, "ACKALL", "shared", recreate=True, **config)
    second = await EventConsumer.create(js, "ACKALL", "shared", **config)
    held = await first.fetch(10)  # this worker "dies" holding 1-10
    done = await second.fetch(10)
    await done[-1].ack(sync=True)  # what ack_batch sends under AckPolicy.ALL, confirmed
    info = await second.info()
    report("ack all", held=len(held), acked_by_other=len(done), ack_pending=info.num_ack_pending)
    assert [d.seq for d in held] == list(range(1, 11))
    assert (info.ack_floor.stream_seq, info.num_ack_pending, info.num_pending) == (20, 0, 0)
    assert await second.fetch(10, timeout=2) == []  # 1-10 will never come back
    await nc.close()


async def test_poison_event_goes_to_dead_letters_and_the_rest_flows(nats_url: str) -> None:
    """A poison event exceeds max_deliver and is captured with its reason; others are handled."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    dead = await _dead_letters(js)
    await ensure_stream(js, "POISON", ["poison.>"])
    make = EventFactory()
    events = [make("poison.order", {"n": i, "poison": i == 7}) for i in range(20)]
    await publish_events(js, events)
    consumer = await EventConsumer.create(js, "POISON", "orders", max_deliver=3)
    done: list[int] = []

    async def handle(event) -> None:
        if event.data["poison"]:
            raise ZeroDivisionError("price is zero")
        done.append(event.data["n"])

    run = await consumer.run(handle, timeout=1, retry_delay=0.05, double_ack=True)
    letters = [d for d in await dead.wait_for(1) if d.stream == "POISON"]
    report(
        "poison",
        published=len(events),
        handled=len(done),
        attempts_on_poison=run.retried,
        quarantined=len(letters),
    )
    assert sorted(done) == [n for n in range(20) if n != 7]
    assert [(d.category, d.stream_seq, d.deliveries) for d in letters] == [("max deliveries", 8, 3)]
    await nc.close()


def _malformed(rng: random.Random, i: int) -> bytes:
    kind = i % 4
    if kind == 0:
        return rng.randbytes(rng.randint(1, 64))
    if kind == 1:
        return b'{"id": "x", "type": "m.created", "timestamp": ' + str(i).encode()
    if kind == 2:
        return b'{"id": 5, "type": ["m"], "timestamp": "yesterday"}'
    return (
        b'{"id": "v%d", "type": "m.created", "timestamp": "2024-01-01T00:00:00Z", "version": 9}' % i
    )


async def test_a_thousand_malformed_payloads_are_each_quarantined(nats_url: str) -> None:
    """Random bytes, broken JSON, wrong types, unknown versions: all put aside with a reason."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    dead = await _dead_letters(js)
    await ensure_stream(js, "MALFORMED", ["m.>"])
    rng = random.Random(1234)
    for i in range(1000):
        await js.publish("m.created", _malformed(rng, i))
    good = EventFactory()("m.created", {"ok": True})
    await publish_events(js, [good])

    class M(BaseModel):
        ok: bool

    registry = SchemaRegistry()
    registry.register("m.created", 1, M)
    consumer = await EventConsumer.create(js, "MALFORMED", "reader", registry=registry)
    handled = [d.event.id async for d in consumer.events(batch=200, timeout=1)]
    letters = [d for d in await dead.wait_for(1000, timeout=20) if d.stream == "MALFORMED"]
    reasons = Counter(d.category for d in letters)
    report(
        "malformed",
        published=1001,
        handled=len(handled),
        quarantined=len(consumer.quarantined),
        dead_letters=len(letters),
        undecodable=reasons["undecodable"],
        unknown_version=reasons["unknown version"],
    )
    assert handled == [good.id]
    assert len(consumer.quarantined) == 1000
    assert all(q.reason for q in consumer.quarantined)
    assert reasons == {"undecodable": 750, "unknown version": 250}
    await nc.close()


async def test_publish_async_across_a_server_restart_loses_nothing(tmp_path: Path) -> None:
    """A graceful restart in the middle of a windowed publish: every event stored once."""
    with NatsServer(store_dir=tmp_path / "store") as srv:
        nc = await connect(srv.url, max_reconnect_attempts=-1)
        js = nc.jetstream()
        await ensure_stream(js, "RESTART", ["restart.>"])
        make = EventFactory()
        events = [make("restart.event", {"n": i}) for i in range(3000)]
        started = asyncio.Event()

        async def publish() -> int:
            first = await publish_events(js, events[:500], window=256, timeout=2, retry_for=60)
            started.set()
            rest = await publish_events(js, events[500:], window=256, timeout=2, retry_for=60)
            return len(first) + len(rest)

        task = asyncio.create_task(publish())
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.to_thread(srv.restart)
        acked = await asyncio.wait_for(task, 120)
        ids = await stored_event_ids(js, "RESTART")
        duplicates = sum(c - 1 for c in ids.values() if c > 1)
        report(
            "restart during publish_events",
            published=len(events),
            acknowledged=acked,
            found=len(ids),
            duplicates=duplicates,
        )
        assert acked == len(events)
        assert set(ids) == {e.id for e in events} and duplicates == 0
        await nc.close()


async def test_permanent_errors_never_block_the_stream(nats_url: str) -> None:
    """Half the events fail permanently: the other half is processed, nothing is stuck."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    await ensure_stream(js, "HALF", ["half.>"])
    make = EventFactory()
    await publish_events(js, [make("half.e", {"n": i}) for i in range(200)])
    consumer = await EventConsumer.create(js, "HALF", "c")

    async def handle(event) -> None:
        if event.data["n"] % 2:
            raise PermanentError("odd")

    run = await consumer.run(handle, batch=50, timeout=0.5, double_ack=True)
    info = await consumer.info()
    report("permanent errors", published=200, acked=run.acked, terminated=run.terminated)
    assert (run.acked, run.terminated) == (100, 100)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    await nc.close()
