"""Wait for a condition that can only be asked about, with a deadline and a clear failure.

Prefer awaiting a message or an ack. Some states the server shows only when asked (a
consumer's pending count, a leader election, a replica catching up): :func:`wait_for`
asks again every ``interval`` until ``timeout``, and then raises ``TimeoutError``
naming what it waited for. The dead-letter and cluster helpers of notebooks
``09_reliability`` and ``13_clustering`` wait with it::

    async def drained() -> bool:
        return (await js.consumer_info("ORDERS", "billing")).num_pending == 0

    await wait_for(drained, timeout=10, what="billing to drain ORDERS")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["wait_for"]


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
