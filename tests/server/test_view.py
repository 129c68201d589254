"""The live view of a stream (edalab.course.view) on a real server: it follows publishes,
deliveries, naks and redeliveries on its own, pushes a picture only on a change, hears
the advisories, marks a deleted consumer, rides out a server restart, and leaves no task
behind when closed or replaced."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats.errors
import pytest

import edalab
from edalab.course import StreamSnapshot, fresh_stream, view
from tests.internals import open_views

LIVE, CLOSED, UNAVAILABLE = "live", "closed", "server unavailable, retrying"
UPDATES_PER_SECOND = 4  # what the view's docstring and the README promise


def _consumer(state: StreamSnapshot, name: str):  # -> the consumer's ConsumerState
    (found,) = [c for c in state.consumers if c.name == name]
    return found


async def test_the_view_follows_publishes_deliveries_and_a_nak_without_being_asked(
    js, stream_name: str, token: str
) -> None:
    """Positions move and the redelivery after a nak is counted, by the view's own task."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    sub = await js.pull_subscribe(f"{token}.>", durable="worker", stream=stream_name)
    board = await view(js, stream_name)
    try:
        assert board.state.status == LIVE and board.state.last_seq == 0
        for i in range(3):
            await js.publish(f"{token}.placed", str(i).encode())
        state = await board.wait_until(lambda s: s.last_seq == 3)
        assert _consumer(state, "worker").num_pending == 3
        first, *rest = await sub.fetch(3, timeout=2)
        state = await board.wait_until(lambda s: _consumer(s, "worker").delivered == 3)
        assert _consumer(state, "worker").num_ack_pending == 3  # all three in flight
        await first.nak()
        for msg in rest:
            await msg.ack_sync()
        (again,) = await sub.fetch(1, timeout=2)
        assert again.metadata.sequence.stream == 1 and again.metadata.num_delivered == 2
        state = await board.wait_until(lambda s: _consumer(s, "worker").num_redelivered == 1)
        worker = _consumer(state, "worker")
        assert (worker.delivered, worker.ack_floor, worker.num_ack_pending) == (3, 0, 1)
        assert worker.deliveries == 4  # three messages, one of them twice
        await again.ack()
        state = await board.wait_until(lambda s: _consumer(s, "worker").ack_floor == 3)
        assert _consumer(state, "worker").deliveries == 4
        assert 'data-key="worker:ack_floor" data-value="3"' in state.svg()
    finally:
        await board.aclose()


async def test_pictures_only_on_a_change_and_at_most_four_looks_a_second(
    js, stream_name: str, token: str
) -> None:
    """Quiet stream: the view keeps looking (bounded rate) but pushes no new picture."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    board = await view(js, stream_name)
    try:
        await board.wait_until(lambda s: board.looks >= 1)  # one look of the task's own
        pushed, looks, started = board.updates, board.looks, time.monotonic()
        await board.wait_until(lambda s: board.looks >= looks + 4)
        elapsed = time.monotonic() - started
        assert board.updates == pushed, "a picture was pushed with nothing changed"
        assert elapsed >= 3.5 / UPDATES_PER_SECOND, f"4 looks in {elapsed:.2f} s"
        await js.publish(f"{token}.x", b"1")
        await board.wait_until(lambda s: s.last_seq == 1)
        assert board.updates == pushed + 1
    finally:
        await board.aclose()


async def test_a_deleted_consumer_stays_marked_and_the_advisories_show(
    js, stream_name: str, token: str
) -> None:
    """Term a message (MSG_TERMINATED), delete the consumer (DELETED): both on the picture."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    sub = await js.pull_subscribe(f"{token}.>", durable="doomed", stream=stream_name)
    await js.publish(f"{token}.x", b"1")
    board = await view(js, stream_name)
    try:
        (msg,) = await sub.fetch(1, timeout=2)
        await msg.term()
        state = await board.wait_until(lambda s: any(a.kind == "terminated" for a in s.advisories))
        assert str(state.advisories[-1]) == "terminated doomed seq 1 after 1 deliveries"
        await js.delete_consumer(stream_name, "doomed")
        state = await board.wait_until(lambda s: _consumer(s, "doomed").deleted)
        await board.wait_until(lambda s: any(a.kind == "consumer deleted" for a in s.advisories))
        assert state.status == LIVE and board.running
        assert 'data-key="doomed:deleted"' in state.svg()
        assert "doomed (deleted)" in state.text()
    finally:
        await board.aclose()


async def test_max_deliveries_advisory_names_the_message(js, stream_name: str, token: str) -> None:
    """A message nak'ed up to max_deliver: the MAX_DELIVERIES advisory is on the picture."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    from nats.js.api import ConsumerConfig

    await js.add_consumer(stream_name, ConsumerConfig(durable_name="tries", max_deliver=2))
    sub = await js.pull_subscribe_bind("tries", stream=stream_name)
    await js.publish(f"{token}.x", b"1")
    board = await view(js, stream_name)
    try:
        for _ in range(2):
            (msg,) = await sub.fetch(1, timeout=2)
            await msg.nak()
        # The server notices the limit when it would deliver a third time: a pull waiting.
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.5)
        state = await board.wait_until(
            lambda s: any(a.kind == "max deliveries" for a in s.advisories)
        )
        assert "max deliveries tries seq 1 after 2 deliveries" in [str(a) for a in state.advisories]
    finally:
        await board.aclose()


async def test_the_view_rides_out_a_server_restart(tmp_path: Path) -> None:
    """Server down: "server unavailable, retrying"; back: live again, the same task."""
    srv = edalab.NatsServer(store_dir=tmp_path / "store")
    await asyncio.to_thread(srv.start)
    nc = await edalab.connect(srv.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="RESTART", subjects=["restart.>"])
        await js.publish("restart.x", b"1")
        board = await view(js, "RESTART")
        task_before = board.task
        try:
            await asyncio.to_thread(srv.stop)
            state = await board.wait_until(lambda s: s.status == UNAVAILABLE, timeout=8)
            assert state.last_seq == 1, "the last known state stays on the picture"
            assert "server unavailable, retrying" in state.svg()
            await asyncio.to_thread(srv.start)
            state = await board.wait_until(lambda s: s.status == LIVE, timeout=15)
            assert state.last_seq == 1 and board.task is task_before and board.running
        finally:
            await board.aclose()
    finally:
        await nc.close()
        await asyncio.to_thread(srv.stop)


async def test_close_stops_and_reopening_replaces_the_old_view(
    js, stream_name: str, token: str
) -> None:
    """Re-running the cell replaces the view (its task ends); close() stops the new one."""
    await fresh_stream(js, stream_name, [f"{token}.>"])
    first = await view(js, stream_name)
    second = await view(js, stream_name)
    try:
        assert first.task is not None and first.task.done()
        assert not first.running and first.state.status == CLOSED
        assert [v for v in open_views() if v.stream == stream_name] == [second]
        bundle = second._repr_mimebundle_()
        assert set(bundle) == {
            "text/plain",
            "image/svg+xml",
            "application/vnd.jupyter.widget-view+json",
        }
        assert (await second.snapshot())._repr_mimebundle_()["image/svg+xml"].startswith("<svg")
    finally:
        await second.aclose()
    assert not second.running and second not in open_views()
    assert second.state.status == CLOSED


def test_the_view_cost_benchmark_runs_and_reports_a_ratio(tmp_path: Path) -> None:
    """benchmarks/view_cost.py, tiny: both sides measured in one run, a ratio written."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "view.json"
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "view_cost.py"), "--messages", "2000",
         "--rounds", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["closed_msgs_per_s"] > 0 and result["open_msgs_per_s"] > 0
    assert 0 < result["ratio_open_closed"] < 10
    assert result["open_looks_per_s"] <= UPDATES_PER_SECOND + 0.5
    assert "ratio" in done.stdout
