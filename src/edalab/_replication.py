"""Waiting for a mirror or a sourcing stream to catch up (notebook ``20_topology_and_recovery``).

A mirror or a stream with sources copies messages in the background: its info says,
for each origin, how many messages it still has to copy (``lag``) and when it last
heard from it (``active``). :func:`wait_replicated` waits until the copy holds what
was expected and reports no lag::

    info = await wait_replicated(js, "SALES_READ", messages=6)
    info.mirror.lag            # 0
"""

from __future__ import annotations

from nats.js.api import StreamInfo
from nats.js.client import JetStreamContext

from ._errors import StreamError
from ._waiting import wait_for

__all__ = ["wait_replicated"]


async def wait_replicated(
    js: JetStreamContext, stream: str, *, messages: int, timeout: float = 10.0
) -> StreamInfo:
    """The info of ``stream`` once it holds ``messages`` messages and its mirror or every
    source reports a lag of 0; ``TimeoutError`` naming what was missing otherwise, and
    :class:`~edalab.StreamError` at once for a stream that copies nothing (no mirror, no
    sources: say, a mirror promoted since).

    ``messages`` counts what the copy should hold (the origin's messages, or the sum of
    the sources'); a copy that holds more is reported at once, not waited on.

        await js.add_stream(StreamConfig(name="SALES_READ", mirror=StreamSource(name="SALES")))
        info = await wait_replicated(js, "SALES_READ", messages=6)
        info.mirror.lag            # 0
    """
    latest: list[StreamInfo] = []

    async def caught_up() -> bool:
        info = await js.stream_info(stream)
        latest.append(info)
        origins = [info.mirror] if info.mirror else list(info.sources or [])
        if not origins:
            raise StreamError(
                f"{stream} is neither a mirror nor has sources (promoted, or created without "
                "them?): there is no copy to wait for"
            )
        lagging = any(o.lag for o in origins)
        return info.state.messages >= messages and not lagging

    try:
        await wait_for(caught_up, timeout=timeout, what=f"{stream} to catch up")
    except TimeoutError as err:
        held = latest[-1].state.messages if latest else "?"
        raise TimeoutError(f"{err}: it holds {held} of {messages} messages") from err
    return latest[-1]
