"""Faults in lesson 20's topology: a leaf node's link cut while it takes writes, and a
snapshot taken while a publisher writes, restored into a fresh server.

Each test prints its figures (``pytest tests/faults/test_faults_topology.py -s``).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.js.api import ExternalStream, StreamConfig, StreamSource

from edalab import (
    EventFactory,
    NatsServer,
    connect,
    publish_events,
    restore_stream,
    snapshot_stream,
    stored_event_ids,
    stream_messages,
    wait_for,
    wait_replicated,
)

pytestmark = pytest.mark.slow


def report(name: str, **figures: object) -> None:
    """Print a test's figures on one line."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


async def test_leaf_link_cut_during_publishes_loses_nothing():
    """The leaf's link is cut while a publisher writes 1,000 sales in batches and restored
    before it ends: the leaf acknowledges every one, and the hub's sourcing stream ends with
    every sale once (0 lost, 0 duplicated after reconnection)."""
    make = EventFactory(prefix="leaf-")
    sales = [make("store.sale", {"n": i}) for i in range(1000)]
    with (
        NatsServer(name="fault-hub", domain="hub", leafnode_port=0) as hub,
        NatsServer(name="fault-leaf", domain="leaf", leaf_remotes=(hub.leafnode_url,)) as leaf,
    ):

        async def linked() -> bool:
            return leaf.leaf_connections() == 1

        await wait_for(linked, timeout=10, what="the leaf to connect")
        nc_leaf, nc_hub = await connect(leaf.url), await connect(hub.url)
        try:
            js_leaf, js_hub = nc_leaf.jetstream(), nc_hub.jetstream()
            await js_leaf.add_stream(name="STORE", subjects=["store.>"])
            source = StreamSource(name="STORE", external=ExternalStream(api="$JS.leaf.API"))
            await js_hub.add_stream(StreamConfig(name="STORES", sources=[source]))
            acked, during_cut = 0, 0
            for start in range(0, len(sales), 100):
                if start == 200:
                    await asyncio.to_thread(leaf.cut_leaf_links)
                if start == 700:
                    await asyncio.to_thread(leaf.restore_leaf_links)
                    restored_at = time.monotonic()
                batch = await publish_events(js_leaf, sales[start : start + 100])
                acked += len(batch)
                during_cut += len(batch) if 200 <= start < 700 else 0
            # A cut longer than 10 s (a busy machine) makes the hub's retries back off.
            info = await wait_replicated(js_hub, "STORES", messages=len(sales), timeout=90)
            caught_up = time.monotonic() - restored_at
            stored = await stored_event_ids(js_hub, "STORES")
        finally:
            await nc_leaf.close()
            await nc_hub.close()
    lost = len({e.id for e in sales} - set(stored))
    duplicates = sum(n - 1 for n in stored.values())
    report(
        "leaf link cut",
        published=len(sales),
        published_during_cut=during_cut,
        acked_by_leaf=acked,
        at_hub=info.state.messages,
        lost=lost,
        duplicates=duplicates,
        caught_up_s=f"{caught_up:.2f}",
    )
    assert acked == len(sales) and during_cut == 500
    assert lost == 0 and duplicates == 0 and info.state.messages == len(sales)


async def test_snapshot_during_publishes_restores_every_message(tmp_path):
    """A snapshot taken while 2,000 sales are being published holds a consistent prefix:
    restored into a fresh server, it has every message up to its last sequence, identical,
    and the consumer's ack floor."""
    make = EventFactory(prefix="snap-")
    sales = [make("store.sale", {"n": i}) for i in range(2000)]
    with NatsServer(name="fault-origin") as origin, NatsServer(name="fault-restore") as fresh:
        nc, nc_fresh = await connect(origin.url), await connect(fresh.url)
        try:
            js, js_fresh = nc.jetstream(), nc_fresh.jetstream()
            await js.add_stream(name="LEDGER20", subjects=["store.>"])
            await publish_events(js, sales[:500])
            await js.add_consumer("LEDGER20", durable_name="books", ack_policy="explicit")
            books = await js.pull_subscribe_bind("books", "LEDGER20")
            for msg in await books.fetch(250, timeout=5):
                await msg.ack_sync()
            writing = asyncio.create_task(publish_events(js, sales[500:]))
            taken = await snapshot_stream(js, "LEDGER20", tmp_path / "ledger.snapshot")
            await writing
            restored = await restore_stream(js_fresh, tmp_path / "ledger.snapshot")
            original = {
                seq: (m.subject, m.data) async for seq, m in stream_messages(js, "LEDGER20")
            }
            copy = {
                seq: (m.subject, m.data) async for seq, m in stream_messages(js_fresh, "LEDGER20")
            }
            floor = (await js_fresh.consumer_info("LEDGER20", "books")).ack_floor.stream_seq
        finally:
            await nc.close()
            await nc_fresh.close()
    expected = {seq: v for seq, v in original.items() if seq <= taken.last_seq}
    missing = len(set(expected) - set(copy))
    differing = sum(copy.get(seq) != v for seq, v in expected.items())
    report(
        "snapshot during publishes",
        published=len(sales),
        in_snapshot=taken.messages,
        restored=restored.state.messages,
        missing=missing,
        differing=differing,
        ack_floor=floor,
        snapshot_bytes=taken.bytes,
    )
    assert taken.messages >= 500 and restored.state.messages == taken.messages
    assert set(copy) == set(expected) and missing == 0 and differing == 0
    assert floor == 250
