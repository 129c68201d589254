"""What the live view (edalab.course.view) costs a busy stream: throughput with it open / closed.

    python benchmarks/view_cost.py --json view.json          # about half a minute
    python benchmarks/view_cost.py --messages 50000 --rounds 5

One embedded nats-server, one event loop (as in a notebook kernel, where the view's task
shares the loop with the learner's cells). Each round publishes ``--messages`` messages
(``publish_async``, acks awaited in windows) while a pull consumer fetches and acks them,
and times until the last ack; rounds alternate view closed / view open on a fresh stream
each, best of ``--rounds`` kept for each side. Prints both rates, the ratio open / closed,
and how often the open view looked at the server and pushed a picture. A separate script
from run.py (whose scenarios compare edalab with raw nats-py), so the two change apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig

from edalab import NatsServer
from edalab.course import view

STREAM, SUBJECT = "VIEWBENCH", "viewbench.x"


async def _round(url: str, messages: int, with_view: bool) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(STREAM)
    await js.add_stream(name=STREAM, subjects=[SUBJECT])
    await js.add_consumer(STREAM, ConsumerConfig(durable_name="busy", max_ack_pending=5000))
    sub = await js.pull_subscribe_bind("busy", STREAM)
    opened = time.perf_counter()
    board = await view(js, STREAM, server=url) if with_view else None
    payload = b"x" * 128

    async def publish() -> None:
        window = []
        for _ in range(messages):
            window.append(await js.publish_async(SUBJECT, payload))
            if len(window) == 1000:
                await asyncio.gather(*window)
                window.clear()
        await asyncio.gather(*window)

    async def consume() -> None:
        done = 0
        while done < messages:
            try:
                batch = await sub.fetch(500, timeout=2)
            except TimeoutError:  # nats-py 2.16's fetch: its own, or asyncio's
                continue
            for msg in batch:
                await msg.ack()
            done += len(batch)
        await nc.flush()

    started = time.perf_counter()
    await asyncio.gather(publish(), consume())
    elapsed = time.perf_counter() - started
    out = {"rate": messages / elapsed, "seconds": elapsed}
    if board is not None:
        lifetime = time.perf_counter() - opened
        # n looks at least 1/4 s apart span (n - 1) intervals: the rate is (n - 1) / lifetime.
        out |= {
            "looks_per_s": max(board.looks - 1, 0) / lifetime,
            "updates_per_s": max(board.updates - 1, 0) / lifetime,
        }
        await board.aclose()
    await nc.close()
    return out


async def measure(url: str, messages: int, rounds: int) -> dict[str, object]:
    closed, opened = [], []
    for _ in range(rounds):
        closed.append(await _round(url, messages, with_view=False))
        opened.append(await _round(url, messages, with_view=True))
    best_closed = max(closed, key=lambda r: r["rate"])
    best_open = max(opened, key=lambda r: r["rate"])
    return {
        "messages": messages,
        "rounds": rounds,
        "closed_msgs_per_s": round(best_closed["rate"]),
        "open_msgs_per_s": round(best_open["rate"]),
        "ratio_open_closed": round(best_open["rate"] / best_closed["rate"], 3),
        "open_looks_per_s": round(best_open["looks_per_s"], 2),
        "open_updates_per_s": round(best_open["updates_per_s"], 2),
        "load_average": os.getloadavg(),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=20_000, help="messages per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    p.add_argument("--json", help="write the result as JSON here")
    args = p.parse_args(argv)
    with NatsServer() as srv:
        result = asyncio.run(measure(srv.url, args.messages, args.rounds))
    print(
        f"busy stream, {args.messages} messages a round, best of {args.rounds}: "
        f"view closed {result['closed_msgs_per_s']} msg/s, open {result['open_msgs_per_s']} "
        f"msg/s, ratio {result['ratio_open_closed']} (the view looked "
        f"{result['open_looks_per_s']}/s and pushed {result['open_updates_per_s']} pictures/s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
