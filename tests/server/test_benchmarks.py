"""The benchmark script runs end to end and writes every scenario (speed is not asserted)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from edalab.course.bench import SCENARIOS, Result, _timed, read_go_reference, summary

ROOT = Path(__file__).resolve().parents[2]

GO_OUTPUT = """\
 23:12:12 up 14 min,  0 user,  load average: 6.30, 4.22, 1.93
go_sync_publish_msgs_per_s 15713
go_async_publish_msgs_per_s 163261
go_fetch_ack_msgs_per_s 200173
"""


def test_quick_run_writes_json_with_every_scenario_and_a_plot(tmp_path: Path) -> None:
    """A scaled-down run with a Go reference file produces every scenario, both ratios, a PNG."""
    out, png, go = tmp_path / "out.json", tmp_path / "out.png", tmp_path / "go.txt"
    go.write_text(GO_OUTPUT)
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--rounds", "1",
         "--scale", "0.02", "--json", str(out), "--plot", str(png), "--no-progress",
         "--go-reference", str(go)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["results"]]
    assert names == [s.name for s in SCENARIOS]
    assert {"fast ingest", "batch consume", "batch consume, ack all"} <= set(names)
    for r in data["results"]:
        assert r["raw_per_s"] > 0 and r["edalab_per_s"] > 0
        assert abs(r["ratio"] - r["edalab_per_s"] / r["raw_per_s"]) < 1e-3
    by_name = {r["name"]: r for r in data["results"]}
    assert by_name["fast ingest"]["go_per_s"] == 163261
    assert by_name["batch consume"]["go_ratio"] == round(
        by_name["batch consume"]["edalab_per_s"] / 200173, 4
    )
    assert by_name["encode+decode"]["go_ratio"] is None
    assert {t["target"] for t in data["targets"] if t["scenario"] == "fast ingest"} == {
        "edalab/raw >= 0.95",
        "edalab/Go >= 0.6",
    }
    assert {t["target"] for t in data["targets"] if t["scenario"] == "batch consume, ack all"} == {
        "edalab/raw >= 0.95",
        "edalab/Go >= 0.4",
    }
    # FastStream runs as a peer on per-event publish, bulk publish and consume, plain and
    # with edalab's middlewares, in the same rounds; each has its target edalab/FastStream.
    with_fs = {r["name"] for r in data["results"] if r["faststream_per_s"]}
    assert with_fs == {"sync publish", "async publish", "pull consume"}
    for name in with_fs:
        r = by_name[name]
        assert r["faststream_edalab_per_s"] > 0 and r["faststream"]
        assert abs(r["faststream_ratio"] - r["edalab_per_s"] / r["faststream_per_s"]) < 1e-3
        assert (
            abs(r["middleware_ratio"] - r["faststream_edalab_per_s"] / r["faststream_per_s"]) < 1e-3
        )
        assert "edalab/FastStream >= 1.0" in {
            t["target"] for t in data["targets"] if t["scenario"] == name
        }
    assert by_name["encode+decode"]["faststream_ratio"] is None
    assert data["environment"]["faststream"]
    assert "edalab/FastStream" in run.stdout and "FS+edalab/FS" in run.stdout
    assert len(data["environment"]["load_before"]) == 3
    assert "edalab/Go" in run.stdout and "load average" in run.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_go_reference_lines_are_read_and_the_table_shows_them() -> None:
    """Only `go_*` lines count, and the summary gains Go columns only when a figure is known."""
    figures = read_go_reference(GO_OUTPUT + "garbage line here\ngo_broken x y\n")
    assert figures == {
        "go_sync_publish_msgs_per_s": 15713.0,
        "go_async_publish_msgs_per_s": 163261.0,
        "go_fetch_ack_msgs_per_s": 200173.0,
    }
    plain = Result("fast ingest", "raw", "ours", 10, 50_000.0, 100_000.0)
    assert "edalab/Go" not in summary([plain])
    plain.go_per_s = 200_000.0
    table = summary([plain])
    assert "edalab/Go" in table and table.splitlines()[1].endswith("0.50")
    assert "FastStream" not in table
    plain.faststream_per_s, plain.faststream_edalab_per_s = 25_000.0, 20_000.0
    row = summary([plain]).splitlines()[1].split()
    assert row[-4:] == ["25,000", "4.00", "20,000", "0.80"]


async def test_each_side_runs_with_the_harness_heap_frozen_and_it_is_undone() -> None:
    """A side runs with what existed before it frozen out of the collector; after it, nothing is."""
    seen: list[int] = []

    async def side(bench: object, events: list[object]) -> int:
        seen.append(gc.get_freeze_count())
        return len(events)

    before = gc.get_freeze_count()
    rate = await _timed(side, None, [object()] * 10)
    assert seen[0] > 0 and rate > 0
    assert gc.get_freeze_count() == before == 0
