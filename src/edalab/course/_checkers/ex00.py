"""The checker of exercise 00 (notebook 00_start_here).

The task: greet(nc, name): subscribe, publish, receive a greeting.
"""

from __future__ import annotations

import contextlib
import inspect
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS

from ._core import _NotYet, _require


async def checker(nc: Any, greet: Any = None) -> str:
    import asyncio

    from nats.aio.msg import Msg

    _require(isinstance(nc, NATS), "pass your connection and function: check('00', nc, greet)")
    _require(not nc.is_closed, "your connection nc is closed: run nc = await connect(server)")
    _require(callable(greet), f"greet is {greet!r}: define async def greet(nc, name)")
    name = "checker" + datetime.now(UTC).strftime("%H%M%S%f")
    subject = f"hello.{name}"
    spy = await nc.subscribe(subject)  # sees what greet publishes there
    try:
        try:
            got = await asyncio.wait_for(greet(nc, name), timeout=5)
        except nats.errors.TimeoutError:  # next_msg's (a subclass of TimeoutError)
            raise _NotYet(
                f"greet(nc, {name!r}) waited for a message that never came (TimeoutError): "
                "subscribe before you publish; core NATS delivers only to subscriptions that "
                "exist when the message arrives"
            ) from None
        except TimeoutError:  # wait_for's
            raise _NotYet(
                f"greet(nc, {name!r}) had not returned after 5 s: give next_msg a timeout"
            ) from None
        except Exception as err:  # the learner's code: any error is feedback, not a crash
            raise _NotYet(f"greet(nc, {name!r}) raised {type(err).__name__}: {err}") from None
        published = []
        with contextlib.suppress(nats.errors.TimeoutError):
            while True:
                published.append((await spy.next_msg(timeout=0.2)).data)
    finally:
        with contextlib.suppress(nats.errors.Error):
            await spy.unsubscribe()
    _require(
        bool(published),
        f"greet(nc, {name!r}) published nothing on {subject}: build the subject from the "
        "name (f'hello.{name}'), not a fixed one",
    )
    if inspect.iscoroutine(got):
        got.close()  # never to be awaited: no "coroutine was never awaited" warning
    _require(not inspect.isawaitable(got), "greet returned an awaitable: await next_msg(...)")
    data = got.data if isinstance(got, Msg) else got
    _require(
        isinstance(data, bytes) and data in published,
        f"greet(nc, {name!r}) returned {got!r}; {subject} carried {published}: return the "
        "message your subscription received (or its data)",
    )
    return "greet published one greeting on hello.<name> (a name of the checker's) and returned it"
