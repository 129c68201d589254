"""A three-node JetStream cluster: election, leader loss, catch-up, and the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edalab import (
    EventFactory,
    NatsCluster,
    connect,
    ensure_stream,
    publish_events,
    stored_event_ids,
    stream_leader,
    wait_until_current,
)
from edalab.course.cli import main as cli
from tests.internals import probe

pytestmark = pytest.mark.slow


async def test_killing_the_stream_leader_loses_and_duplicates_nothing() -> None:
    """An R3 stream keeps taking publishes when its leader dies; the node catches up after."""
    with NatsCluster(3) as cluster:
        assert cluster.meta_leader() in {"n1", "n2", "n3"}
        nc = await connect(cluster.urls, max_reconnect_attempts=-1)
        js = nc.jetstream()
        await ensure_stream(js, "R3", ["r3.>"], num_replicas=3)
        leader = (await js.stream_info("R3")).cluster.leader
        make = EventFactory()
        events = [make("r3.event", {"n": i}) for i in range(2000)]
        acked = []
        quarter = asyncio.Event()

        async def publisher() -> None:
            for start in range(0, len(events), 250):
                chunk = events[start : start + 250]
                acked.extend(await publish_events(js, chunk, timeout=2, retry_for=60))
                if len(acked) >= 500:
                    quarter.set()

        task = asyncio.create_task(publisher())
        await asyncio.wait_for(quarter.wait(), 60)
        cluster.kill(leader)
        await asyncio.wait_for(task, 120)
        new_leader = await stream_leader(js, "R3", other_than=leader)
        await asyncio.to_thread(cluster.start_node, leader)
        await wait_until_current(js, "R3", timeout=60)
        ids = await stored_event_ids(js, "R3", timeout=5)
        duplicates = sum(c - 1 for c in ids.values() if c > 1)
        print(
            f"\n[cluster leader killed] published={len(events)}, acknowledged={len(acked)}, "
            f"found={len(ids)}, duplicates={duplicates}, old_leader={leader}, "
            f"new_leader={new_leader}"
        )
        assert new_leader != leader
        assert len(acked) == len(events)
        assert set(ids) == {e.id for e in events} and duplicates == 0
        await nc.close()


def test_cli_cluster_start_status_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`edalab cluster start` leaves three live nodes; status sees them; stop ends them."""
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    assert cli(["cluster", "status"]) == 1
    assert cli(["cluster", "start", "--nodes", "3"]) == 0
    try:
        assert cli(["cluster", "status"]) == 0
        assert (tmp_path / "cluster.json").stat().st_mode & 0o777 == 0o600
        urls = [
            line for line in (tmp_path / "cluster.json").read_text().split('"') if "nats://" in line
        ]
        assert len(urls) == 3 and all(probe(u) is None for u in urls)
    finally:
        assert cli(["cluster", "stop"]) == 0
    assert all(probe(u) is not None for u in urls)
