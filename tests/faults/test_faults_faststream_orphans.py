"""A kernel killed with its FastStream apps running: the next start stops the orphan.

``start_service`` stops its apps at exit, but a kernel killed with ``kill -9`` (or one a
restart kills when its exit handlers take too long) runs no exit handler: the app lives
on, pulling from the same durable as the app the notebook starts next.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from edalab import NatsServer, connect
from edalab.course.services_faststream import start_service

KERNEL = textwrap.dedent(
    """
    import asyncio, os, sys
    from edalab import connect
    from edalab.course.services_faststream import start_service

    async def main():
        nc = await connect(sys.argv[1])
        app = await start_service("emails", sys.argv[1], nc.jetstream())
        print(app.pid, flush=True)
        os.kill(os.getpid(), 9)  # the kernel dies: no exit handler runs

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def test_an_app_orphaned_by_a_killed_kernel_is_stopped_by_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead kernel's emails app is stopped when the emails app is started again."""
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path / "state"))
    with NatsServer(store_dir=tmp_path / "store", name="faststream-orphans") as server:
        kernel = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            KERNEL,
            server.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "EDALAB_STATE_DIR": str(tmp_path / "state")},
        )
        out, err = await asyncio.wait_for(kernel.communicate(), timeout=60)
        assert kernel.returncode == -signal.SIGKILL, err.decode()
        orphan = int(out.split()[0])
        try:
            assert _alive(orphan), "the app died with its kernel: nothing to test"
            nc = await connect(server.url)
            app = await start_service("emails", server.url, nc.jetstream())
            try:
                assert not _alive(orphan), "the orphaned app still runs next to the new one"
            finally:
                app.stop()
                await nc.close()
        finally:
            if _alive(orphan):
                os.kill(orphan, signal.SIGKILL)
