"""Processes known only by their pid: is one alive, stop it, wait until it is gone.

``edalab server start`` and ``edalab cluster start`` leave servers running after the
command exits; later commands find them again by the pid recorded in the state file
(``_state``) and stop them with :func:`stop_pid`.

    >>> import os
    >>> pid_alive(os.getpid())
    True
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from pathlib import Path

__all__ = ["pid_alive", "stop_pid", "wait_pid_gone"]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (ours or not; an exited one not reaped yet, a
    zombie, does not)."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just is not ours to signal
    stat = Path(f"/proc/{pid}/stat")  # Linux; elsewhere a zombie counts as alive
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Wait (without polling) until a process that is not our child exits; whether it did."""
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
    if wait_pid_gone(pid, timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return wait_pid_gone(pid, timeout)
