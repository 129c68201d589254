"""Measure edalab against raw nats-py doing the same work, in the same run.

Used by ``benchmarks/run.py`` (the command line, JSON and plot) and notebook
``15_performance``. Every :class:`Scenario` has a *raw* side (the nats-py calls a
learner would write) and an *edalab* side (the helper); results are messages per
second and the ratio edalab / raw. Speed is never asserted in tests: it is reported.

    results = await run_all(url, quick=True)
    [(r.name, round(r.ratio, 2)) for r in results]

The Go client's figures (``../shared/reference/gobench/run``) come in as text lines
``go_async_publish_msgs_per_s 163261``; :func:`read_go_reference` parses them and
:data:`GO_COUNTERPART` says which Go figure each scenario is held against.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, StorageType

from edalab import JetStream

from .._connection import connect
from .._consuming import EventConsumer
from .._events import Event
from .._factories import EventFactory
from .._publishing import MSG_ID, ingest_events, publish_event, publish_events
from ._lesson import fresh_stream

__all__ = [
    "GO_COUNTERPART",
    "SCENARIOS",
    "Result",
    "Scenario",
    "read_go_reference",
    "run_all",
    "scenario_sizes",
    "summary",
]

PAYLOAD = "x" * 60  # with the envelope, each message is about 128 bytes on the wire

Progress = Callable[[str], None]

#: The Go reference figure each scenario's edalab side is compared with.
GO_COUNTERPART = {
    "sync publish": "go_sync_publish_msgs_per_s",
    "async publish": "go_async_publish_msgs_per_s",
    "fast ingest": "go_async_publish_msgs_per_s",
    "pull consume": "go_fetch_ack_msgs_per_s",
    "batch consume": "go_fetch_ack_msgs_per_s",
    "batch consume, ack all": "go_fetch_ack_msgs_per_s",
}


@dataclass
class Result:
    """One scenario: messages per second for each side, and edalab / raw (and / Go)."""

    name: str
    raw: str
    edalab: str
    messages: int
    raw_per_s: float
    edalab_per_s: float
    rounds: list[dict[str, float]] = field(default_factory=list)
    go_per_s: float | None = None
    #: FastStream doing the same job: plain, and with edalab's middlewares and decoder.
    faststream: str | None = None
    faststream_per_s: float | None = None
    faststream_edalab_per_s: float | None = None

    @property
    def ratio(self) -> float:
        """edalab's speed as a fraction of raw's (1.0 = the same)."""
        return self.edalab_per_s / self.raw_per_s if self.raw_per_s else 0.0

    @property
    def go_ratio(self) -> float | None:
        """edalab's speed as a fraction of the Go client's, when a Go figure is known."""
        return self.edalab_per_s / self.go_per_s if self.go_per_s else None

    @property
    def faststream_ratio(self) -> float | None:
        """edalab's speed as a fraction of plain FastStream's (above 1: edalab is faster)."""
        fs = self.faststream_per_s
        return self.edalab_per_s / fs if fs else None

    @property
    def middleware_ratio(self) -> float | None:
        """FastStream with edalab's pieces as a fraction of plain FastStream (1.0: free)."""
        fs, ours = self.faststream_per_s, self.faststream_edalab_per_s
        return ours / fs if fs and ours else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the ratios."""
        go, fs, mw = self.go_ratio, self.faststream_ratio, self.middleware_ratio
        return {
            **asdict(self),
            "ratio": round(self.ratio, 4),
            "go_ratio": None if go is None else round(go, 4),
            "faststream_ratio": None if fs is None else round(fs, 4),
            "middleware_ratio": None if mw is None else round(mw, 4),
        }


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


def read_go_reference(text: str) -> dict[str, float]:
    """The Go reference's figures from its output (``name value`` lines; others ignored).

    >>> read_go_reference("load 1.0\\ngo_fetch_ack_msgs_per_s 200173\\n")
    {'go_fetch_ack_msgs_per_s': 200173.0}
    """
    figures = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("go_"):
            figures[parts[0]] = float(parts[1])
    return figures


def _events(n: int) -> list[Event]:
    make = EventFactory(prefix="bench-")
    return [make("bench.event", {"p": PAYLOAD}) for _ in range(n)]


@dataclass
class Bench:
    """The connection, the stream's storage, and the preparation each side needs."""

    js: JetStream
    storage: StorageType
    #: Connected FastStream brokers (``faststream[nats]``): plain, and with edalab's pieces.
    fs: Any = None
    fs_edalab: Any = None

    async def fresh(self) -> None:
        """An empty BENCH stream (fast ingest allowed: it does not change other publishes)."""
        await fresh_stream(self.js, "BENCH", ["bench.>"], storage=self.storage, allow_batched=True)

    async def filled(self, events: list[Event]) -> None:
        """A BENCH stream holding ``events``."""
        await self.fresh()
        await ingest_events(self.js, events)


Side = Callable[[Bench, list[Event]], Awaitable[int]]


@dataclass(frozen=True)
class Scenario:
    """Two ways to do one job: ``raw`` nats-py and ``edalab``, each on ``size`` events.

    ``raw_size`` (when the raw side is too slow for the full size) gives the raw side
    fewer events; ``filled`` starts each side on a stream already holding its events.
    """

    name: str
    raw_label: str
    edalab_label: str
    size: str
    raw: Side
    edalab: Side
    raw_size: str | None = None
    filled: bool = False
    stream: bool = True
    faststream_label: str | None = None
    faststream: Side | None = None
    faststream_edalab: Side | None = None


# --- the sides -------------------------------------------------------------------------


async def awaited_loop(b: Bench, events: list[Event]) -> int:
    """What learners write first: one awaited js.publish per event."""
    for e in events:
        await b.js.publish("bench.event", e.to_json(), headers={MSG_ID: e.id})
    return len(events)


async def publish_each(b: Bench, events: list[Event]) -> int:
    """edalab's one-at-a-time publish."""
    for e in events:
        await publish_event(b.js, e)
    return len(events)


async def publish_async_all(b: Bench, events: list[Event]) -> int:
    """nats-py's bounded async publish (``publish_async_max_pending``), then wait for all."""
    futures = [
        await b.js.publish_async("bench.event", e.to_json(), headers={MSG_ID: e.id}) for e in events
    ]
    await b.js.publish_async_completed()
    for f in futures:
        f.result()
    return len(events)


async def windowed(b: Bench, events: list[Event]) -> int:
    """edalab's bulk publish: a PubAck per event."""
    return len(await publish_events(b.js, events, window=4096))


async def ingested(b: Bench, events: list[Event]) -> int:
    """edalab's fast ingest: one flow ack per group."""
    return (await ingest_events(b.js, events)).events


async def _raw_fetch(b: Bench, events: list[Event], durable: str, batch: int) -> int:
    """nats-py's fetch(batch) until every event came, each decoded and acked."""
    sub = await b.js.pull_subscribe("bench.>", durable=durable, stream="BENCH")
    got = 0
    while got < len(events):
        for msg in await sub.fetch(batch, timeout=5):
            Event.from_json(msg.data)
            await msg.ack()
            got += 1
    await sub.unsubscribe()
    return got


async def fetch_decode_ack(b: Bench, events: list[Event]) -> int:
    """nats-py's fetch(256), each event decoded and acked."""
    return await _raw_fetch(b, events, "raw", 256)


async def consumer_events(b: Bench, events: list[Event]) -> int:
    """edalab's consumer: pipelined pulls of 256, every event decoded and acked."""
    consumer = await EventConsumer.create(b.js, "BENCH", "ours")
    got = 0
    async for delivery in consumer.events(batch=256, timeout=5):
        await delivery.ack()
        got += 1
        if got == len(events):
            break
    await consumer.close()
    return got


async def fetch_ack_each(b: Bench, events: list[Event]) -> int:
    """nats-py's fetch(500), each event decoded and acked."""
    return await _raw_fetch(b, events, "raw_each", 500)


async def consumer_batches(b: Bench, events: list[Event]) -> int:
    """edalab's consumer a list at a time, every event acked (AckPolicy.EXPLICIT)."""
    return await _batches(b, events, "ours_each", AckPolicy.EXPLICIT)


async def fetch_ack_last(b: Bench, events: list[Event]) -> int:
    """nats-py's fetch(500) on an AckPolicy.ALL consumer: each decoded, the last acked."""
    config = ConsumerConfig(durable_name="raw_all", ack_policy=AckPolicy.ALL)
    sub = await b.js.pull_subscribe("bench.>", durable="raw_all", stream="BENCH", config=config)
    got = 0
    while got < len(events):
        msgs = await sub.fetch(500, timeout=5)
        for msg in msgs:
            Event.from_json(msg.data)
        await msgs[-1].ack()
        got += len(msgs)
    await sub.unsubscribe()
    return got


async def consumer_batches_ack_all(b: Bench, events: list[Event]) -> int:
    """edalab's consumer a list at a time on an AckPolicy.ALL consumer (one ack per list)."""
    return await _batches(b, events, "ours_all", AckPolicy.ALL)


async def _batches(b: Bench, events: list[Event], durable: str, policy: AckPolicy) -> int:
    consumer = await EventConsumer.create(b.js, "BENCH", durable, ack_policy=policy)
    got = 0
    async for deliveries in consumer.batches(batch=500, timeout=5):
        await consumer.ack_batch(deliveries)
        got += len(deliveries)
        if got >= len(events):
            break
    await consumer.close()
    return got


async def fetch_one_at_a_time(b: Bench, events: list[Event]) -> int:
    """The naive consumer: fetch(1), decode, ack, again."""
    sub = await b.js.pull_subscribe("bench.>", durable="naive", stream="BENCH")
    for _ in range(len(events)):
        msg = (await sub.fetch(1, timeout=5))[0]
        Event.from_json(msg.data)
        await msg.ack()
    await sub.unsubscribe()
    return len(events)


async def pydantic_codec(b: Bench, events: list[Event]) -> int:
    """pydantic's own dump and validate."""
    for e in events:
        Event.model_validate_json(e.model_dump_json(exclude_none=True).encode())
    return len(events)


async def edalab_codec(b: Bench, events: list[Event]) -> int:
    """Event.to_json / Event.from_json."""
    for e in events:
        Event.from_json(e.to_json())
    return len(events)


# --- FastStream as a peer (brokers configured as a service would: no per-message logs) ---


async def faststream_brokers(url: str) -> tuple[Any, Any]:
    """Two connected FastStream brokers: plain, and with edalab's publishing and failures.

    Access logs (one line per message) go out at DEBUG under an INFO logger: a production
    service's setting, so no side pays for per-message log lines.
    """
    import logging

    from faststream.nats import NatsBroker

    from edalab.faststream import EventPublishing, Failures

    plain = NatsBroker(url, log_level=logging.DEBUG, pending_size=8 * 1024 * 1024)
    ours = NatsBroker(
        url,
        log_level=logging.DEBUG,
        pending_size=8 * 1024 * 1024,
        middlewares=[EventPublishing(), Failures()],
    )
    await plain.start()
    await ours.start()
    return plain, ours


async def fs_publish_each(b: Bench, events: list[Event]) -> int:
    """FastStream's publish of the event model, awaited (its PubAck), one at a time."""
    for e in events:
        await b.fs.publish(e, "bench.event", stream="BENCH")
    return len(events)


async def fs_edalab_publish_each(b: Bench, events: list[Event]) -> int:
    """The same on a broker with EventPublishing: edalab's JSON, Nats-Msg-Id, flow headers."""
    for e in events:
        await b.fs_edalab.publish(e, "bench.event", stream="BENCH")
    return len(events)


async def _fs_bulk(broker: Any, events: list[Event], window: int = 256) -> int:
    # FastStream has no batch publish for NATS: concurrent awaited publishes, a window at
    # once, each with a 5 s timeout (its default, 0.5 s, times out under load).
    import asyncio

    for i in range(0, len(events), window):
        await asyncio.gather(
            *(
                broker.publish(e, "bench.event", stream="BENCH", timeout=5)
                for e in events[i : i + window]
            )
        )
    return len(events)


async def fs_publish_bulk(b: Bench, events: list[Event]) -> int:
    """FastStream: concurrent ``broker.publish`` (256 in flight), each awaiting its PubAck."""
    return await _fs_bulk(b.fs, events)


async def fs_edalab_publish_bulk(b: Bench, events: list[Event]) -> int:
    """The same with EventPublishing on the broker."""
    return await _fs_bulk(b.fs_edalab, events)


async def _fs_consume(broker: Any, events: list[Event], durable: str, **options: Any) -> int:
    import asyncio

    from faststream.nats import JStream, PullSub

    done = asyncio.Event()
    got = 0

    async def handle(event: Event) -> None:  # FastStream validates the body into an Event
        nonlocal got
        got += 1
        if got == len(events):
            done.set()

    sub = broker.subscriber(
        "bench.>",
        stream=JStream("BENCH", declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=256, timeout=5),
        **options,
    )
    sub(handle)
    await sub.start()
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await sub.stop()
    return got


async def fs_consume(b: Bench, events: list[Event]) -> int:
    """A FastStream pull subscriber (batches of 256): body validated into Event, acked."""
    return await _fs_consume(b.fs, events, "fs")


async def fs_edalab_consume(b: Bench, events: list[Event]) -> int:
    """The same with EventDecoder and the Failures middleware."""
    from edalab.faststream import EventDecoder

    return await _fs_consume(b.fs_edalab, events, "fs_edalab", decoder=EventDecoder())


#: Every scenario, in the order they run and are reported.
SCENARIOS = [
    Scenario("sync publish", "js.publish, awaited", "publish_event", "sync",
             awaited_loop, publish_each, faststream_label="broker.publish(stream=), awaited",
             faststream=fs_publish_each, faststream_edalab=fs_edalab_publish_each),
    Scenario("async publish", "js.publish_async + completed", "publish_events", "async",
             publish_async_all, windowed, faststream_label="gather(broker.publish), 256 at once",
             faststream=fs_publish_bulk, faststream_edalab=fs_edalab_publish_bulk),
    Scenario("fast ingest", "js.publish_async + completed", "ingest_events", "async",
             publish_async_all, ingested),
    Scenario("pull consume", "fetch(256) + decode + ack", "EventConsumer.events + ack",
             "consume", fetch_decode_ack, consumer_events, filled=True,
             faststream_label="subscriber(pull_sub=PullSub(256)), handler(event: Event)",
             faststream=fs_consume, faststream_edalab=fs_edalab_consume),
    Scenario("batch consume", "fetch(500) + decode + ack each",
             "EventConsumer.batches + ack_batch", "consume",
             fetch_ack_each, consumer_batches, filled=True),
    Scenario("batch consume, ack all", "fetch(500) + decode + ack last (AckPolicy.ALL)",
             "batches + ack_batch (AckPolicy.ALL)", "consume",
             fetch_ack_last, consumer_batches_ack_all, filled=True),
    Scenario("encode+decode", "pydantic dump/validate", "Event.to_json/from_json", "codec",
             pydantic_codec, edalab_codec, stream=False),
    Scenario("bulk vs naive publish", "loop of awaited js.publish", "publish_events", "async",
             awaited_loop, windowed, raw_size="naive"),
    Scenario("batch vs naive consume", "loop of fetch(1) + ack",
             "EventConsumer.events(batch=256)", "consume", fetch_one_at_a_time,
             consumer_events, raw_size="naive", filled=True),
]  # fmt: skip


async def _timed(side: Side, bench: Bench, events: list[Event]) -> float:
    # The harness's own heap (every scenario's prepared events) is set aside from the
    # collector while a side runs, the same for raw and edalab: a service holds no list of
    # 20,000 events while it consumes, and a full collection rescanning that list would
    # bill the side for the harness. What the side allocates is collected as usual.
    gc.collect()
    gc.freeze()
    try:
        start = time.perf_counter()
        count = await side(bench, events)
        return count / (time.perf_counter() - start)
    finally:
        gc.unfreeze()


async def _prepare(bench: Bench, scenario: Scenario, events: list[Event]) -> None:
    if scenario.filled:
        await bench.filled(events)
    elif scenario.stream:
        await bench.fresh()


async def compare(
    bench: Bench, scenario: Scenario, sizes: dict[str, int], rounds: int, progress: Progress
) -> Result:
    """Alternate raw and edalab ``rounds`` times; keep each side's best round."""
    ours = _events(sizes[scenario.size])
    raw = _events(sizes[scenario.raw_size]) if scenario.raw_size else ours
    per_round = []
    for i in range(rounds):
        progress(f"{scenario.name}: round {i + 1}/{rounds}")
        await _prepare(bench, scenario, raw)
        raw_rate = await _timed(scenario.raw, bench, raw)
        await _prepare(bench, scenario, ours)
        ours_rate = await _timed(scenario.edalab, bench, ours)
        rates = {"raw": raw_rate, "edalab": ours_rate}
        if scenario.faststream and scenario.faststream_edalab and bench.fs is not None:
            await _prepare(bench, scenario, ours)
            rates["faststream"] = await _timed(scenario.faststream, bench, ours)
            await _prepare(bench, scenario, ours)
            rates["faststream_edalab"] = await _timed(scenario.faststream_edalab, bench, ours)
        per_round.append(rates)
    result = Result(
        scenario.name,
        scenario.raw_label,
        scenario.edalab_label,
        len(ours),
        max(r["raw"] for r in per_round),
        max(r["edalab"] for r in per_round),
        per_round,
    )
    if "faststream" in per_round[0]:
        result.faststream = scenario.faststream_label
        result.faststream_per_s = max(r["faststream"] for r in per_round)
        result.faststream_edalab_per_s = max(r["faststream_edalab"] for r in per_round)
    return result


async def run_all(
    url: str,
    *,
    quick: bool = True,
    rounds: int = 3,
    storage: StorageType = StorageType.FILE,
    progress: Progress | None = None,
    only: list[str] | None = None,
    scale: float = 1.0,
    go_reference: dict[str, float] | None = None,
    faststream: bool = True,
) -> list[Result]:
    """Run every scenario (or those named in ``only``) against the server at ``url``.

    With ``faststream`` (and FastStream installed), the scenarios that have a FastStream
    side run it too, plain and with edalab's middlewares, in the same rounds.
    """
    import importlib.util

    say: Progress = progress or (lambda _: None)
    sizes = scenario_sizes(quick, scale)
    nc = await connect(url, pending_size=8 * 1024 * 1024)
    bench = Bench(nc.jetstream(publish_async_max_pending=4096), storage)
    if faststream and importlib.util.find_spec("faststream") is not None:
        bench.fs, bench.fs_edalab = await faststream_brokers(url)
    results = []
    try:
        for scenario in SCENARIOS:
            if only is None or scenario.name in only:
                result = await compare(bench, scenario, sizes, rounds, say)
                go = GO_COUNTERPART.get(scenario.name)
                if go_reference and go:
                    result.go_per_s = go_reference.get(go)
                results.append(result)
    finally:
        for broker in (bench.fs, bench.fs_edalab):
            if broker is not None:
                await broker.stop()
        await nc.close()
    return results


def summary(results: list[Result]) -> str:
    """A plain-text table of results (with edalab/Go when the Go figures are known)."""
    with_go = any(r.go_per_s for r in results)
    with_fs = any(r.faststream_per_s for r in results)
    rows = [["scenario", "raw msg/s", "edalab msg/s", "edalab/raw"]]
    if with_go:
        rows[0] += ["Go msg/s", "edalab/Go"]
    if with_fs:
        rows[0] += ["FastStream msg/s", "edalab/FastStream", "FS+edalab msg/s", "FS+edalab/FS"]
    for r in results:
        row = [r.name, f"{r.raw_per_s:,.0f}", f"{r.edalab_per_s:,.0f}", f"{r.ratio:.2f}"]
        if with_go:
            go = r.go_ratio
            row += [f"{r.go_per_s:,.0f}" if r.go_per_s else "", "" if go is None else f"{go:.2f}"]
        if with_fs:
            fs, mw = r.faststream_ratio, r.middleware_ratio
            row += [
                f"{r.faststream_per_s:,.0f}" if r.faststream_per_s else "",
                "" if fs is None else f"{fs:.2f}",
                f"{r.faststream_edalab_per_s:,.0f}" if r.faststream_edalab_per_s else "",
                "" if mw is None else f"{mw:.2f}",
            ]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
