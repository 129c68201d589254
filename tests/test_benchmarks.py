"""The benchmark script runs end to end and writes every scenario (speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_json_with_every_scenario_and_a_plot(tmp_path: Path) -> None:
    """A scaled-down run produces all six scenarios with rates, ratios and targets, and a PNG."""
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--rounds", "1",
         "--scale", "0.02", "--json", str(out), "--plot", str(png), "--no-progress"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["results"]]
    assert names == [
        "sync publish",
        "async publish",
        "pull consume",
        "encode+decode",
        "bulk vs naive publish",
        "batch vs naive consume",
    ]
    for r in data["results"]:
        assert r["raw_per_s"] > 0 and r["edalab_per_s"] > 0
        assert abs(r["ratio"] - r["edalab_per_s"] / r["raw_per_s"]) < 1e-3
    assert {t["scenario"] for t in data["targets"]} == set(names)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
