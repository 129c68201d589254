"""The state files of ``edalab server`` and ``edalab cluster``: which servers they left running.

``edalab server start`` starts a server that outlives the command and records its pid,
URL, store and log in ``server.json``; notebooks (:func:`edalab.ensure_server`) and later
commands read it back. ``edalab cluster start`` records its nodes in ``cluster.json``.
Both live in :func:`state_dir` and are written readable by their owner only (mode 0600:
a URL may carry credentials). Notebook ``00_start_here`` tells how they are found.

    >>> state_dir().name != ""
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._confidential import write_private
from ._processes import pid_alive
from ._urls import probe

__all__ = [
    "ServerState",
    "read_cluster_state",
    "read_state",
    "remove_cluster_state",
    "save_cluster_state",
    "state_dir",
]


def state_dir() -> Path:
    """Where ``edalab server`` keeps its state: ``$EDALAB_STATE_DIR`` or XDG state home."""
    env = os.environ.get("EDALAB_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edalab"


@dataclass
class ServerState:
    """What ``edalab server start`` recorded about the server it started."""

    pid: int
    url: str
    monitor_url: str
    store_dir: str
    log_file: str
    started_at: str
    #: ``--config`` the server was started with (a class's accounts.conf), and its digest.
    config_file: str = ""
    config_sha256: str = ""

    @property
    def path(self) -> Path:
        """The state file."""
        return state_dir() / "server.json"

    def save(self) -> None:
        """Write the state file (mode 0600)."""
        write_private(self.path, json.dumps(asdict(self), indent=2) + "\n")

    def alive(self) -> bool:
        """Whether the recorded process exists and answers at its URL."""
        return pid_alive(self.pid) and probe(self.url) is None


def read_state() -> ServerState | None:
    """The recorded ``edalab server``, or ``None`` when there is no (readable) state file."""
    path = state_dir() / "server.json"
    try:
        return ServerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _cluster_file() -> Path:
    return state_dir() / "cluster.json"


def save_cluster_state(nodes: dict[str, dict[str, Any]]) -> Path:
    """Record ``edalab cluster start``'s nodes (pid, URLs, store per node), mode 0600."""
    return write_private(_cluster_file(), json.dumps(nodes, indent=2) + "\n")


def read_cluster_state() -> dict[str, dict[str, Any]] | None:
    """The recorded cluster's nodes, or ``None`` when there is no (readable) state file."""
    try:
        data: dict[str, dict[str, Any]] = json.loads(_cluster_file().read_text())
    except (OSError, ValueError):
        return None
    return data


def remove_cluster_state() -> None:
    """Forget the recorded cluster."""
    _cluster_file().unlink(missing_ok=True)
