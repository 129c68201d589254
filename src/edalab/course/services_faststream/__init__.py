"""Two of the capstone's services as FastStream apps, and a runner for them (notebook 22).

``payments`` and ``emails`` are ordinary FastStream applications, one file each, run
with FastStream's own CLI (``faststream run edalab.course.services_faststream.payments:app``
with ``NATS_URL`` set). :func:`start_service` runs one as a subprocess, the way a
deployment would, and returns once its consumers are pulling; running it again for the
same service stops the previous process first, so a notebook cell can be re-run, and an
app left running by a kernel that died (``kill -9``, a crash: no exit handlers ran) is
stopped by the next start of that app on this machine::

    payments = await start_service("payments", server.url, js)
    ...
    payments.stop()          # SIGTERM: FastStream drains and exits
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats.js.errors
from nats.js.client import JetStreamContext

from edalab import wait_for

from ..._processes import pid_alive, wait_pid_gone
from ..._state import state_dir

__all__ = ["DURABLES", "ServiceProcess", "settled", "start_service", "stop_all"]

#: The durable consumers each app pulls from (stream, durable): ready when all are pulling.
DURABLES: dict[str, list[tuple[str, str]]] = {
    "payments": [("SHOP", "shop-payments"), ("DEAD_LETTERS", "replay-SHOP-shop-payments")],
    "emails": [("SHOP", "shop-email")],
}


@dataclass
class ServiceProcess:
    """A FastStream app running as ``faststream run <module>:app`` in its own process."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (FastStream stops its subscribers and exits), then SIGKILL after ``timeout``."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._forget()
        return self.process.returncode

    def kill(self) -> None:
        """``kill -9``: no goodbye, no ack for what it holds (a crash)."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._forget()

    def _forget(self) -> None:
        if _running.get(self.name) is self:
            del _running[self.name]
        _record(self.name).unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        """The end of what the process printed (its start-up and its errors)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


_running: dict[str, ServiceProcess] = {}


def _module(name: str) -> str:
    return f"edalab.course.services_faststream.{name}:app"


def _record(name: str, owner: int | None = None) -> Path:
    """Where this kernel notes the app it runs: ``<state>/faststream/<name>-<kernel pid>.json``."""
    return state_dir() / "faststream" / f"{name}-{os.getpid() if owner is None else owner}.json"


def _command_line(pid: int) -> str:
    """What process ``pid`` runs ("" if unknown): a pid reused by another program is left alone."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.exists():
        with contextlib.suppress(OSError):
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return ""
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout


def _stop_orphans(name: str) -> list[int]:
    """Stop app ``name`` processes whose kernel died without stopping them; their pids.

    An app whose kernel is alive belongs to another notebook (or test) and is left alone.
    """
    stopped = []
    for path in (state_dir() / "faststream").glob(f"{name}-*.json"):
        try:
            noted = json.loads(path.read_text())
            pid, owner = int(noted["pid"]), int(noted["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if owner != os.getpid() and pid_alive(owner):
            continue
        if pid_alive(pid) and _module(name) in _command_line(pid):
            os.kill(pid, signal.SIGTERM)
            if not wait_pid_gone(pid, 5.0):  # not our child: a pidfd, no polling
                os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
        path.unlink(missing_ok=True)
    return stopped


async def _pulling(js: JetStreamContext, stream: str, durable: str) -> bool:
    try:
        info = await js.consumer_info(stream, durable)
    except nats.js.errors.NotFoundError:
        return False
    return bool(info.num_waiting)


async def start_service(
    name: str,
    url: str,
    js: JetStreamContext,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """Run app ``name`` (``payments``, ``emails``) with FastStream's CLI; return when ready.

    Ready means each of its durables (:data:`DURABLES`) has a pull request waiting on
    the server: the app connected, created its consumers and asks for messages. A
    previous process of the same name is stopped first. ``env`` adds variables
    (``SHOP_PAYMENTS_FIXED=1``, ``SHOP_ACK_WAIT=1``).
    """
    if name in _running:
        _running[name].stop()
    _stop_orphans(name)
    log = Path(tempfile.gettempdir()) / f"edalab-faststream-{name}-{os.getpid()}.log"
    extra = dict(env or {})
    command = [
        sys.executable,
        "-m",
        "faststream",
        "run",
        _module(name),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; waiting below is async
            command,
            env={**os.environ, "NATS_URL": url, **extra},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the kernel does not reach it
        )
    service = ServiceProcess(name, process, log, extra)
    _running[name] = service
    record = _record(name)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"pid": process.pid, "owner": os.getpid(), "app": _module(name)}))
    # Registered again at each start: exit handlers run last-registered first, so the apps
    # stop before a lesson server started earlier does (an app whose server is gone
    # first can take its whole stop timeout to give up on it).
    atexit.unregister(stop_all)
    atexit.register(stop_all)

    async def ready() -> bool:
        if not service.running:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
        for stream, durable in DURABLES[name]:
            if not await _pulling(js, stream, durable):
                return False
        return True

    try:
        await wait_for(ready, timeout=timeout, what=f"the {name} app's consumers to pull")
    except TimeoutError:
        service.stop()
        raise
    return service


async def settled(js: JetStreamContext, *names: str, timeout: float = 20.0) -> None:
    """Wait until every durable of the apps ``names`` has nothing pending or unacknowledged."""

    async def quiet() -> bool:
        for name in names:
            for stream, durable in DURABLES[name]:
                try:
                    info = await js.consumer_info(stream, durable)
                except nats.js.errors.NotFoundError:
                    return False
                if info.num_pending or info.num_ack_pending:
                    return False
        return True

    await wait_for(quiet, timeout=timeout, what=f"the apps {', '.join(names)} to settle")


def stop_all(timeout: float = 3.0) -> None:
    """Stop every app started here (also when Python exits): SIGTERM all, then SIGKILL.

    All are signalled at once and share ``timeout``: a kernel restart gives its exit
    handlers a few seconds before it is killed, and an app not stopped then is left running.
    """
    services = list(_running.values())
    for service in services:
        if service.running:
            with contextlib.suppress(OSError):
                service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for service in services:
        with contextlib.suppress(Exception):
            service.stop(timeout=max(0.1, deadline - time.monotonic()))


atexit.register(stop_all)
