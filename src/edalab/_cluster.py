"""A JetStream cluster of real nats-server processes on loopback (notebook ``13_clustering``).

Three nodes (or more) with their own client ports, route ports and store
directories, routed to each other, JetStream on. :meth:`NatsCluster.start` returns
once a JetStream *meta leader* has been elected (asked of the servers' ``/jsz``
endpoints, not slept for)::

    with NatsCluster(nodes=3) as cluster:
        nc = await connect(cluster.urls)          # a client knows every node
        cluster.kill("n2")                        # kill -9 one node
        cluster.start_node("n2")                  # it rejoins and catches up
"""

from __future__ import annotations

import atexit
import contextlib
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

import nats.errors
from nats.js.client import JetStreamContext

from ._errors import ServerStartError
from ._server import Lifecycle, NatsServer, free_port
from ._waiting import wait_for

__all__ = ["NatsCluster", "stream_leader", "wait_until_current"]


class NatsCluster(Lifecycle):
    """``nodes`` nats-servers named n1, n2, ... forming one JetStream cluster."""

    def __init__(
        self,
        nodes: int = 3,
        *,
        name: str = "edalab",
        base_dir: Path | str | None = None,
        start_timeout: float = 30.0,
        sync_interval: str | None = None,
        detach: bool = False,
        config: str = "",
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.name = name
        self.detach = detach
        self.start_timeout = start_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if base_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="edalab-cluster-")
            base_dir = self._tmp.name
        self.base_dir = Path(base_dir)
        self.route_ports = {f"n{i}": free_port() for i in range(1, nodes + 1)}
        routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in self.route_ports.values())
        self.servers: dict[str, NatsServer] = {}
        for node, port in self.route_ports.items():
            node_config = (
                f"cluster {{\n  name: {json.dumps(name)}\n  listen: 127.0.0.1:{port}\n"
                f"  routes: [{routes}]\n}}"
            )
            if config:  # the same extra configuration on every node (a class's accounts)
                node_config += "\n" + config
            self.servers[node] = NatsServer(
                name=node,
                store_dir=self.base_dir / node / "store",
                run_dir=self.base_dir / node,
                config=node_config,
                start_timeout=start_timeout,
                sync_interval=sync_interval,
                detach=detach,
            )

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Self:
        """Start every node, wait until each is healthy and a meta leader is elected."""
        for srv in self.servers.values():
            if not srv.running:
                srv.spawn()
        try:
            for srv in self.servers.values():
                srv.wait_ready()
            self.wait_for_meta_leader()
        except BaseException:
            self.stop()
            raise
        if not self.detach:
            atexit.register(self.stop)  # a notebook kernel that exits takes its cluster along
        return self

    def start_node(self, node: str) -> NatsServer:
        """Start (again) one node on its port and store; it rejoins the cluster."""
        srv = self.servers[node]
        srv.spawn()
        return srv.wait_ready()

    def kill(self, node: str) -> None:
        """``kill -9`` one node."""
        self.servers[node].kill()

    def release(self) -> dict[str, dict[str, Any]]:
        """Let every node run on without this object (``edalab cluster start``).

        Returns, per node, what is needed to find it again: pid, URLs, store directory.
        """
        if self._tmp is not None:
            raise ServerStartError("release() needs an explicit base_dir")
        out = {}
        for node, srv in self.servers.items():
            url, monitor, store = srv.url, srv.monitor_url, str(srv.store_dir)
            out[node] = {"pid": srv.release(), "url": url, "monitor_url": monitor, "store": store}
        return out

    def stop(self) -> None:
        """Stop every node and remove temporary directories."""
        for srv in self.servers.values():
            srv.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- what clients and lessons need ------------------------------------------
    @property
    def urls(self) -> str:
        """Every running node's URL, comma separated (what ``connect`` takes)."""
        return ",".join(s.url for s in self.servers.values() if s.running)

    def running_nodes(self) -> list[str]:
        """Names of the nodes whose process is alive."""
        return [n for n, s in self.servers.items() if s.running]

    def jsz(self, node: str) -> dict[str, Any]:
        """A node's ``/jsz`` monitoring document (JetStream state)."""
        url = f"{self.servers[node].monitor_url}/jsz"
        with urllib.request.urlopen(url, timeout=2) as r:
            data: dict[str, Any] = json.loads(r.read())
        return data

    def meta_leader(self) -> str | None:
        """The node that leads JetStream's metadata, as the running nodes see it."""
        for node in self.running_nodes():
            with contextlib.suppress(OSError, ValueError):
                leader = self.jsz(node).get("meta_cluster", {}).get("leader")
                if leader:
                    return str(leader)
        return None

    def _ready_leader(self) -> tuple[str | None, str]:
        """The meta leader if the cluster is ready for new streams, else why not."""
        running = self.running_nodes()
        seen = set()
        for node in running:
            with contextlib.suppress(OSError, ValueError):
                seen.add(self.jsz(node).get("meta_cluster", {}).get("leader"))
        if len(seen) != 1 or not next(iter(seen)):
            return None, f"leaders seen: {seen}"
        leader = str(seen.pop())
        if leader not in running:
            return None, f"leader {leader} is not running"
        # Every running follower must be current in the leader's meta group; before that,
        # creating a replicated stream can time out while the followers catch up.
        try:
            replicas = self.jsz(leader).get("meta_cluster", {}).get("replicas") or []
        except (OSError, ValueError) as err:
            return None, f"leader {leader} did not answer ({err})"
        # A restarted node can be current yet still marked offline by the leader until its
        # first statistics arrive; placement of a new stream skips offline peers.
        current = {r.get("name") for r in replicas if r.get("current") and not r.get("offline")}
        lagging = set(running) - {leader} - current
        if lagging:
            return None, f"followers not current (or seen offline) yet: {sorted(lagging)}"
        return leader, ""

    def wait_for_meta_leader(self, timeout: float | None = None) -> str:
        """Block until a meta leader is elected, known to every running node, and every
        follower is current (the cluster then takes new replicated streams at once)."""
        limit = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            leader, why = self._ready_leader()
            if leader is not None:
                return leader
            if time.monotonic() > deadline:
                raise ServerStartError(f"JetStream cluster not ready after {limit:g}s ({why})")
            # An election cannot be awaited from outside: ask /jsz again shortly (bounded).
            threading.Event().wait(0.05)


async def stream_leader(
    js: JetStreamContext, stream: str, *, other_than: str | None = None, timeout: float = 30.0
) -> str:
    """The node leading ``stream``, waiting through an election (and for a new leader when
    ``other_than`` names the one that just died)."""
    found: list[str] = []

    async def elected() -> bool:
        try:
            info = await js.stream_info(stream, subjects_filter=None)
        except (nats.errors.Error, TimeoutError):
            return False  # no leader to answer yet, or the client is reconnecting
        leader = info.cluster.leader if info.cluster else None
        if leader and leader != other_than:
            found.append(leader)
            return True
        return False

    await wait_for(elected, timeout=timeout, what=f"a leader for stream {stream}")
    return found[-1]


async def wait_until_current(js: JetStreamContext, stream: str, *, timeout: float = 30.0) -> None:
    """Wait until every replica of ``stream`` has caught up with its leader."""

    async def current() -> bool:
        try:
            info = await js.stream_info(stream)
        except (nats.errors.Error, TimeoutError):
            return False
        replicas = info.cluster.replicas if info.cluster else None
        return bool(replicas) and all(r.current for r in replicas or [])

    await wait_for(current, timeout=timeout, what=f"every replica of {stream} to catch up")
