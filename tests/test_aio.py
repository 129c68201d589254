"""edalab.aio.run: coroutines from synchronous code, also inside a running loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from edalab.aio import run
from edalab.connection import connect


def test_run_outside_a_loop_talks_to_the_server(nats_url: str) -> None:
    """A plain function can run an edalab coroutine (a real round trip)."""

    async def rtt() -> bool:
        nc = await connect(nats_url)
        await nc.flush()
        await nc.close()
        return True

    assert run(rtt()) is True


def test_run_inside_a_running_loop() -> None:
    """A synchronous callback inside a running loop (as in a notebook) still gets a result.

    Run in a child process: nest_asyncio patches asyncio for the whole process, which
    is what a notebook kernel accepts but a test session should not.
    """
    code = textwrap.dedent(
        """
        import asyncio
        from edalab.aio import run

        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        def sync_callback():
            return run(double(21))

        async def cell():
            return sync_callback()

        print(asyncio.run(cell()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"
