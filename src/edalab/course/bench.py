"""Measure edalab against raw nats-py doing the same work, in the same run.

Used by ``benchmarks/run.py`` (the command line, JSON and plot) and notebook
``15_performance``. Every scenario has a *raw* side (the nats-py calls a learner
would write) and an *edalab* side (the helper); results are messages per second
and the ratio edalab / raw. Speed is never asserted in tests: it is reported.

    results = await run_all(url, quick=True)
    [(r.name, round(r.ratio, 2)) for r in results]
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import StorageType
from nats.js.client import JetStreamContext

from edalab.connection import connect
from edalab.consuming import EventConsumer
from edalab.events import Event
from edalab.publishing import MSG_ID, publish_event, publish_events
from edalab.streams import fresh_stream
from edalab.testing import EventFactory

__all__ = ["Result", "run_all", "scenario_sizes"]

PAYLOAD = "x" * 60  # with the envelope, each message is about 128 bytes on the wire

Progress = Callable[[str], None]


@dataclass
class Result:
    """One scenario: messages per second for each side, and edalab / raw."""

    name: str
    raw: str
    edalab: str
    messages: int
    raw_per_s: float
    edalab_per_s: float
    rounds: list[dict[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """edalab's speed as a fraction of raw's (1.0 = the same)."""
        return self.edalab_per_s / self.raw_per_s if self.raw_per_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the ratio."""
        return {**asdict(self), "ratio": round(self.ratio, 4)}


def scenario_sizes(quick: bool, scale: float = 1.0) -> dict[str, int]:
    """How many messages each scenario sends (``--quick`` keeps the run near a minute).

    >>> scenario_sizes(True, scale=0.01)["async"]
    200
    """
    if quick:
        sizes = {"sync": 2_000, "async": 20_000, "consume": 20_000, "codec": 50_000, "naive": 2_000}
    else:
        sizes = {
            "sync": 10_000,
            "async": 100_000,
            "consume": 100_000,
            "codec": 200_000,
            "naive": 5_000,
        }
    return {k: max(10, int(v * scale)) for k, v in sizes.items()}


def _events(n: int) -> list[Event]:
    make = EventFactory(prefix="bench-")
    return [make("bench.event", {"p": PAYLOAD}) for _ in range(n)]


async def _timed(fn: Callable[[], Awaitable[int]]) -> float:
    start = time.perf_counter()
    count = await fn()
    return count / (time.perf_counter() - start)


async def _fresh(js: JetStreamContext, storage: StorageType) -> None:
    await fresh_stream(js, "BENCH", ["bench.>"], storage=storage)


async def _compare(
    name: str,
    raw_label: str,
    edalab_label: str,
    n: int,
    raw: Callable[[], Awaitable[int]],
    ours: Callable[[], Awaitable[int]],
    setup: Callable[[], Awaitable[None]],
    rounds: int,
    progress: Progress,
    ours_setup: Callable[[], Awaitable[None]] | None = None,
) -> Result:
    """Alternate raw and edalab ``rounds`` times; keep each side's best round."""
    per_round = []
    for i in range(rounds):
        progress(f"{name}: round {i + 1}/{rounds}")
        await setup()
        raw_rate = await _timed(raw)
        await (ours_setup or setup)()
        ours_rate = await _timed(ours)
        per_round.append({"raw": raw_rate, "edalab": ours_rate})
    best_raw = max(r["raw"] for r in per_round)
    best_ours = max(r["edalab"] for r in per_round)
    return Result(name, raw_label, edalab_label, n, best_raw, best_ours, per_round)


async def _fill(js: JetStreamContext, events: list[Event]) -> None:
    await publish_events(js, events, window=1024)


async def _awaited_loop(js: JetStreamContext, events: list[Event]) -> int:
    """What learners write first: one awaited js.publish per event."""
    for e in events:
        await js.publish("bench.event", e.to_json(), headers={MSG_ID: e.id})
    return len(events)


async def _windowed(js: JetStreamContext, events: list[Event]) -> int:
    return len(await publish_events(js, events, window=4096))


async def _consume(js: JetStreamContext, durable: str, count: int) -> int:
    """edalab's consumer: pipelined pulls of 256, every event decoded and acked."""
    consumer = await EventConsumer.create(js, "BENCH", durable)
    got = 0
    async for delivery in consumer.events(batch=256, timeout=5):
        await delivery.ack()
        got += 1
        if got == count:
            break
    await consumer.close()
    return got


async def run_all(
    url: str,
    *,
    quick: bool = True,
    rounds: int = 3,
    storage: StorageType = StorageType.FILE,
    progress: Progress | None = None,
    only: list[str] | None = None,
    scale: float = 1.0,
) -> list[Result]:
    """Run every scenario against the server at ``url``; returns their results."""
    say: Progress = progress or (lambda _: None)
    sizes = scenario_sizes(quick, scale)
    nc: NATS = await connect(url, pending_size=8 * 1024 * 1024)
    js = nc.jetstream(publish_async_max_pending=4096)
    results: list[Result] = []

    async def setup() -> None:
        await _fresh(js, storage)

    def wanted(name: str) -> bool:
        return only is None or name in only

    try:
        if wanted("sync publish"):
            events = _events(sizes["sync"])

            async def raw_sync() -> int:
                return await _awaited_loop(js, events)

            async def ours_sync() -> int:
                for e in events:
                    await publish_event(js, e)
                return len(events)

            results.append(
                await _compare(
                    "sync publish", "js.publish, awaited", "publish_event", len(events),
                    raw_sync, ours_sync, setup, rounds, say,
                )
            )  # fmt: skip

        if wanted("async publish"):
            events = _events(sizes["async"])

            async def raw_async() -> int:
                futures = [
                    await js.publish_async("bench.event", e.to_json(), headers={MSG_ID: e.id})
                    for e in events
                ]
                await js.publish_async_completed()
                for f in futures:
                    f.result()
                return len(events)

            async def ours_async() -> int:
                return await _windowed(js, events)

            results.append(
                await _compare(
                    "async publish", "js.publish_async + completed", "publish_events",
                    len(events), raw_async, ours_async, setup, rounds, say,
                )
            )  # fmt: skip

        if wanted("pull consume"):
            events = _events(sizes["consume"])

            async def setup_filled() -> None:
                await setup()
                await _fill(js, events)

            async def raw_consume() -> int:
                sub = await js.pull_subscribe("bench.>", durable="raw", stream="BENCH")
                got = 0
                while got < len(events):
                    for msg in await sub.fetch(256, timeout=5):
                        Event.from_json(msg.data)
                        await msg.ack()
                        got += 1
                await sub.unsubscribe()
                return got

            async def ours_consume() -> int:
                return await _consume(js, "ours", len(events))

            results.append(
                await _compare(
                    "pull consume", "fetch(256) + decode + ack", "EventConsumer.events + ack",
                    len(events), raw_consume, ours_consume, setup_filled, rounds, say,
                )
            )  # fmt: skip

        if wanted("encode+decode"):
            events = _events(sizes["codec"])

            async def no_setup() -> None:
                return None

            async def raw_codec() -> int:
                for e in events:
                    Event.model_validate_json(e.model_dump_json(exclude_none=True).encode())
                return len(events)

            async def ours_codec() -> int:
                for e in events:
                    Event.from_json(e.to_json())
                return len(events)

            results.append(
                await _compare(
                    "encode+decode", "pydantic dump/validate", "Event.to_json/from_json",
                    len(events), raw_codec, ours_codec, no_setup, rounds, say,
                )
            )  # fmt: skip

        if wanted("bulk vs naive publish"):
            naive = _events(sizes["naive"])
            bulk = _events(sizes["async"])

            async def naive_publish() -> int:
                return await _awaited_loop(js, naive)

            async def bulk_publish() -> int:
                return await _windowed(js, bulk)

            results.append(
                await _compare(
                    "bulk vs naive publish", "loop of awaited js.publish", "publish_events",
                    len(bulk), naive_publish, bulk_publish, setup, rounds, say,
                )
            )  # fmt: skip

        if wanted("batch vs naive consume"):
            few = _events(sizes["naive"])
            many = _events(sizes["consume"])

            async def setup_few() -> None:
                await setup()
                await _fill(js, few)

            async def setup_many() -> None:
                await setup()
                await _fill(js, many)

            async def naive_consume() -> int:
                sub = await js.pull_subscribe("bench.>", durable="naive", stream="BENCH")
                for _ in range(len(few)):
                    msg = (await sub.fetch(1, timeout=5))[0]
                    Event.from_json(msg.data)
                    await msg.ack()
                await sub.unsubscribe()
                return len(few)

            async def batch_consume() -> int:
                return await _consume(js, "batch", len(many))

            results.append(
                await _compare(
                    "batch vs naive consume", "loop of fetch(1) + ack",
                    "EventConsumer.events(batch=256)", len(many), naive_consume, batch_consume,
                    setup_few, rounds, say, ours_setup=setup_many,
                )
            )  # fmt: skip
    finally:
        await nc.close()
    return results


def summary(results: list[Result]) -> str:
    """A plain-text table of results."""
    rows = [["scenario", "raw msg/s", "edalab msg/s", "edalab/raw"]]
    for r in results:
        rows.append([r.name, f"{r.raw_per_s:,.0f}", f"{r.edalab_per_s:,.0f}", f"{r.ratio:.2f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )
