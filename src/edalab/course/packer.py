"""Notebook 05's worker as a program: pack whatever waits for ``packer``, then exit.

Run from a terminal with ``python -m edalab.course.packer`` (or the file's path); the
notebook runs it with ``%run`` to show why ``asyncio.run`` fails inside a kernel.
"""

import asyncio

from edalab import connect


async def main() -> None:
    """Ack every order waiting for the ``packer`` consumer, then say how many."""
    nc = await connect()  # the course's server, as in every notebook
    js = nc.jetstream()
    packer = await js.pull_subscribe("order.placed", durable="packer", stream="ORDERS")
    packed = 0
    while True:
        try:
            msgs = await packer.fetch(10, timeout=0.5)
        except TimeoutError:  # nats-py's, or asyncio's own (nats-py 2.16's fetch raises both)
            break  # nothing waiting: done
        for msg in msgs:
            await msg.ack()
            packed += 1
    await nc.close()
    print(f"packed {packed} orders")


if __name__ == "__main__":
    asyncio.run(main())
