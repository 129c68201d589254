"""edalab.aio.run: coroutines from synchronous code, also inside a running loop."""

from __future__ import annotations

import asyncio

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
    """A synchronous callback inside a running loop (as in a notebook) still gets a result."""

    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    def sync_callback() -> int:
        return run(double(21))

    async def cell() -> int:
        return sync_callback()

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(cell()) == 42
    finally:
        loop.close()
