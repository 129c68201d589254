"""Run a real ``nats-server`` with JetStream: the process, started, stopped, killed.

:class:`NatsServer` starts the binary (found by :func:`edalab.find_nats_server`)
on free loopback ports with its own store directory, waits until its ``/healthz``
endpoint reports JetStream ready, and stops it (terminate, then kill). It is a plain
and an async context manager (notebooks ``07`` and ``09`` restart and crash one)::

    with NatsServer() as srv:          # or: async with NatsServer() as srv:
        print(srv.url)                 # nats://127.0.0.1:<port>

Its configuration file is written readable by its owner only (it may hold passwords),
and the server's log and error output quoted in a
:class:`~edalab.ServerStartError` have every password, token and seed masked.

Finding a server for a notebook (:func:`~edalab.ensure_server`), the state
file of ``edalab server`` (``_state``), pids (``_processes``) and
:func:`~edalab.wait_for` are modules of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from ._binary import find_nats_server
from ._confidential import mask_url, redact, secrets_in_config, write_private
from ._errors import ServerError, ServerStartError

__all__ = ["Lifecycle", "NatsServer", "free_port"]

_POLL = 0.02  # seconds between readiness probes


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now (for what must be known before a start, like cluster routes).

    Servers pick their client ports themselves (no race); use this only where a port
    must be named in advance.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _create_private(path: Path) -> None:
    """Create ``path`` (mode 0600) if missing, so the server appends to a private file."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Lifecycle:
    """``with obj:`` calls ``start()`` and, on the way out, ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class NatsServer(Lifecycle):
    """A ``nats-server`` process with JetStream on loopback.

    ``port=0`` picks a free port (the server chooses it itself; no race). With
    ``store_dir=None`` a temporary store is made and removed on :meth:`stop`.
    ``sync_interval`` is JetStream's fsync interval (``"always"`` syncs every
    write; the default is two minutes). ``domain``, ``leafnode_port`` and
    ``leaf_remotes`` make a hub and its leaf nodes (notebook
    ``20_topology_and_recovery``): the hub listens on :attr:`leafnode_url`, a leaf
    connects to it, and each keeps its own JetStream domain. ``config`` is extra
    configuration text appended to the generated file (accounts, authorization,
    ...); it stays out of the repr, and its secrets out of every error.

        >>> with NatsServer() as srv:
        ...     srv.url.startswith("nats://127.0.0.1:")
        True
    """

    port: int = 0
    host: str = "127.0.0.1"
    store_dir: Path | str | None = None
    jetstream: bool = True
    sync_interval: str | None = None
    config: str = ""
    name: str | None = None
    run_dir: Path | str | None = None
    start_timeout: float = 10.0
    detach: bool = False
    #: JetStream domain (``$JS.<domain>.API`` reaches it from across a leaf node link).
    domain: str | None = None
    #: Accept leaf node connections on this port (``0``: a free one, kept across restarts).
    leafnode_port: int | None = None
    #: Hub URLs (``nats-leaf://host:port``) this server connects to as a leaf node.
    leaf_remotes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: list[tempfile.TemporaryDirectory[str]] = []
        self.url = ""
        self.monitor_url = ""
        self.pid: int | None = None
        self._links_on = True
        if self.store_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="edalab-store-")
            self._tmp.append(tmp)
            self.store_dir = tmp.name
        self.store_dir = Path(self.store_dir)
        if self.run_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="edalab-run-")
            self._tmp.append(tmp)
            self.run_dir = tmp.name
        self.run_dir = Path(self.run_dir)

    # -- paths -----------------------------------------------------------------
    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = mask_url(self.url) if self.url else f"port {self.port or 'auto'}"
        return f"<NatsServer {self.name or 'unnamed'} at {where} ({state}, store {self.store_dir})>"

    @property
    def log_file(self) -> Path:
        """The server's log file."""
        return Path(self.run_dir or ".") / "nats-server.log"

    @property
    def error_file(self) -> Path:
        """What the server wrote to stderr (configuration errors come before its log opens)."""
        return Path(self.run_dir or ".") / "nats-server.err"

    @property
    def config_file(self) -> Path:
        """The generated configuration file."""
        return Path(self.run_dir or ".") / "nats-server.conf"

    @property
    def leafnode_url(self) -> str:
        """Where leaf nodes connect (``nats-leaf://127.0.0.1:<port>``); ``""`` without one."""
        if not self.leafnode_port:
            return ""
        return f"nats-leaf://{self.host}:{self.leafnode_port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        lines = []
        if self.name:
            lines.append(f"server_name: {json.dumps(self.name)}")
        if self.jetstream:
            js = [f"store_dir: {json.dumps(str(self.store_dir))}"]
            if self.sync_interval:
                js.append(f"sync_interval: {json.dumps(self.sync_interval)}")
            if self.domain:
                js.append(f"domain: {json.dumps(self.domain)}")
            lines.append("jetstream {\n  " + "\n  ".join(js) + "\n}")
        leaf = []
        if self.leafnode_port is not None:
            if not self.leafnode_port:  # chosen once: leaf nodes must find it after a restart
                self.leafnode_port = free_port(self.host)
            leaf.append(f"listen: {json.dumps(f'{self.host}:{self.leafnode_port}')}")
        if self.leaf_remotes:
            off, remotes = json.dumps(not self._links_on), self.leaf_remotes
            urls = ", ".join(f"{{url: {json.dumps(u)}, disabled: {off}}}" for u in remotes)
            leaf.append(f"remotes: [{urls}]")
        if leaf:
            lines.append("leafnodes {\n  " + "\n  ".join(leaf) + "\n}")
        if self.config:
            lines.append(self.config)
        write_private(self.config_file, "\n".join(lines) + "\n")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's error output and log, with every secret masked."""
        text = "\n".join(
            t for t in (_tail(self.error_file, lines), _tail(self.log_file, lines)) if t
        )
        return redact(text, secrets_in_config(self.config))

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Self:
        """Start the process and block until it is healthy (or raise ServerStartError)."""
        if self.running:
            return self
        self.spawn()
        return self.wait_ready()

    def wait_ready(self) -> Self:
        """Block until the spawned process is healthy; stop it and raise if it is not."""
        try:
            self._wait_ready(self.start_timeout)
        except BaseException:
            self._terminate(timeout=2)
            raise
        return self

    def spawn(self) -> None:
        """Start the process without waiting (a cluster starts every node, then waits)."""
        binary = find_nats_server()
        run_dir = Path(self.run_dir or ".")
        run_dir.mkdir(parents=True, exist_ok=True)
        Path(self.store_dir or ".").mkdir(parents=True, exist_ok=True)
        for old in run_dir.glob("*.ports"):
            old.unlink()
        self.url = self.monitor_url = ""  # a restart must read the new ports
        self._write_config()
        _create_private(self.log_file)
        args = [
            str(binary),
            "-c", str(self.config_file),
            "-a", self.host,
            "-p", str(self.port or -1),
            "-m", "-1",
            "--ports_file_dir", str(run_dir),
            "-l", str(self.log_file),
        ]  # fmt: skip
        self.error_file.unlink(missing_ok=True)
        fd = os.open(self.error_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fd,
                start_new_session=self.detach,
            )
        finally:
            os.close(fd)
        self.pid = self._proc.pid

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        ports_file = Path(self.run_dir or ".") / f"{find_nats_server().name}_{self._proc.pid}.ports"
        last = "no ports file yet"
        while True:
            if self._proc.poll() is not None:
                raise ServerStartError(
                    f"process exited with code {self._proc.returncode}",
                    log_tail=self.log_tail(),
                )
            if not self.url and ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                    self.url = ports["nats"][0]
                    self.monitor_url = ports["monitoring"][0]
                    self.port = int(urlsplit(self.url).port or 0)
                except (ValueError, KeyError, IndexError):
                    last = "ports file not complete yet"
            if self.monitor_url:
                status = self._healthz()
                if status is None:
                    return
                last = status
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"not healthy after {timeout:g}s ({last})", log_tail=self.log_tail()
                )
            # Wait for the next probe on the process itself, so an early exit wakes us.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=_POLL)

    def _healthz(self) -> str | None:
        query = "?js-enabled-only=true" if self.jetstream else ""
        try:
            with urllib.request.urlopen(f"{self.monitor_url}/healthz{query}", timeout=1) as r:
                body = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as err:
            return f"/healthz answered {err.code}"
        except (OSError, ValueError) as err:
            return f"/healthz not reachable ({err})"
        return None if body.get("status") == "ok" else f"/healthz says {body}"

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._proc = None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (kill it after ``timeout``) and remove temporary dirs."""
        self._terminate(timeout)
        self.url = self.monitor_url = ""
        for tmp in self._tmp:
            tmp.cleanup()
        self._tmp.clear()

    def cut_leaf_links(self, timeout: float = 5.0) -> None:
        """Disconnect this leaf node from its hubs, and stay disconnected (the server runs on).

        Marks every remote ``disabled`` (nats-server 2.12+) and reloads the configuration
        (``SIGHUP``); returns once the server reports no leaf connection. The cut outlasts
        a restart, until :meth:`restore_leaf_links`::

            leaf = NatsServer(domain="leaf", leaf_remotes=(hub.leafnode_url,)).start()
            leaf.cut_leaf_links()        # the leaf's JetStream keeps taking writes
            leaf.restore_leaf_links()    # a hub stream sourcing it catches up
        """
        self._set_links(on=False, timeout=timeout)

    def restore_leaf_links(self, timeout: float = 10.0) -> None:
        """Connect this leaf node to its hubs again; returns once every link is up."""
        self._set_links(on=True, timeout=timeout)

    def leaf_connections(self) -> int:
        """How many leaf node connections the server has (its ``/leafz`` endpoint)."""
        with urllib.request.urlopen(f"{self.monitor_url}/leafz", timeout=2) as r:
            return int(json.loads(r.read()).get("leafnodes", 0))

    def _set_links(self, *, on: bool, timeout: float) -> None:
        if not self.leaf_remotes or self._proc is None:
            raise ServerError("only a running server with leaf_remotes has leaf links to set")
        self._links_on = on
        self._write_config()
        self._proc.send_signal(signal.SIGHUP)  # nats-server reloads its configuration
        want = len(self.leaf_remotes) if on else 0
        deadline = time.monotonic() + timeout
        while (seen := self.leaf_connections()) != want:
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name or 'server'} has {seen} leaf connections after {timeout:g}s "
                    f"(expected {want}); last lines of its log:\n{self.log_tail(5)}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=_POLL)  # a reload is not awaitable from outside

    def kill(self) -> None:
        """``kill -9`` the process, as a crash would; the store stays for :meth:`start` again."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=5)
        self._proc = None

    def release(self) -> int:
        """Let the process run on without this object (``edalab server start``); returns its pid.

        After this, :meth:`stop` no longer touches the process: stop it by pid.
        """
        if self._tmp:
            raise ServerStartError("release() needs an explicit store_dir and run_dir")
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            raise ServerStartError("no running process to release")
        # Popen warns when collected while its child still runs; the child is meant to outlive
        # us here (it runs in its own session), so mark it as handed over.
        proc.returncode = 0
        return proc.pid

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port and store directory."""
        if self.running:
            self._terminate(timeout=5)
        return self.start()

    # -- async context manager (the plain one comes from Lifecycle) --------------
    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
