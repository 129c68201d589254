"""Run edalab's coroutines from synchronous code.

In a notebook, ``await`` directly: IPython runs cells in its event loop. Plain
functions cannot ``await`` though: a widget callback, a pandas ``apply``, a library
hook. :func:`run` serves those. Outside any loop it is ``asyncio.run``; inside a
running loop (a notebook kernel) it needs ``nest_asyncio``, which it applies to that
loop only, on first use, never at import time.

    >>> async def answer() -> int:
    ...     return 42
    >>> run(answer())
    42
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, with or without a running loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import nest_asyncio

    nest_asyncio.apply(loop)
    return loop.run_until_complete(coro)
