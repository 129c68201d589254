"""Checkers for the notebooks' exercises: they look at the live server and say what is missing.

In a notebook::

    from edalab.course.exercises import check
    await check("05", js)       # ✔ 05 passed ... or ✘ 05 not yet: <what to fix>

Each checker is a coroutine taking the JetStream context (02, which comes before
JetStream, takes the connection ``nc``), plus what the exercise produced (02 your
subscription patterns, 03 your PubAcks, 08 your
:class:`~edalab.versioning.SchemaRegistry`); ``check`` returns a :class:`CheckResult`.
A checker observes behaviour on the live server: what it delivered, stored, dropped.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo, DeliverPolicy, PubAck, StreamInfo
from nats.js.client import JetStreamContext

from edalab.consuming import consumer_filters
from edalab.course.manifest import LESSONS
from edalab.errors import EdalabError, SubjectError
from edalab.events import Event
from edalab.streams import stream_messages
from edalab.subjects import matches, validate_subject
from edalab.waiting import wait_for

__all__ = ["EXERCISES", "CheckResult", "Exercise", "check", "recorded_passes"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one exercise check."""

    exercise: str
    passed: bool
    message: str

    def __repr__(self) -> str:
        mark = "✔" if self.passed else "✘"
        state = "passed" if self.passed else "not yet"
        return f"{mark} exercise {self.exercise} {state}: {self.message}"

    def __bool__(self) -> bool:
        return self.passed


class _NotYet(Exception):
    """Raised inside a checker with the hint to show."""


Checker = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Exercise:
    """One exercise: its notebook, a one-line task, and its checker."""

    key: str
    notebook: str
    task: str
    checker: Checker

    @property
    def needs(self) -> list[str]:
        """What the checker needs from the notebook besides ``js`` (e.g. ``['registry']``).

        Such an exercise is checked by the last cell of its notebook; ``edalab progress``
        says so instead of running it.
        """
        params = list(inspect.signature(self.checker).parameters.values())
        first = [] if params and params[0].name == "js" else [params[0].name] if params else []
        return first + [p.name for p in params[1:]]


async def _stream(js: JetStreamContext, name: str) -> StreamInfo:
    try:
        info: StreamInfo = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        raise _NotYet(f"there is no stream {name!r} yet") from None
    return info


async def _consumer(js: JetStreamContext, stream: str, name: str) -> ConsumerInfo:
    await _stream(js, stream)
    try:
        info: ConsumerInfo = await js.consumer_info(stream, name)
    except nats.js.errors.NotFoundError:
        raise _NotYet(f"stream {stream!r} has no consumer {name!r} yet") from None
    return info


async def _events(js: JetStreamContext, info: StreamInfo) -> list[Event]:
    out = []
    async for seq, raw in stream_messages(js, info.config.name or ""):
        try:
            out.append(Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq))
        except EdalabError as err:
            raise _NotYet(str(err)) from None
    return out


def _floor(info: ConsumerInfo) -> int:
    return info.ack_floor.stream_seq if info.ack_floor else 0


def _require(condition: bool, hint: str) -> None:
    if not condition:
        raise _NotYet(hint)


async def _settled(js: JetStreamContext, stream: str, name: str) -> ConsumerInfo:
    """The consumer's info once its acks have landed (plain acks are asynchronous)."""
    latest = [await _consumer(js, stream, name)]

    async def settled() -> bool:
        latest.append(await _consumer(js, stream, name))
        return not (latest[-1].num_pending or latest[-1].num_ack_pending)

    with contextlib.suppress(TimeoutError):  # not settled: _drained() says what is left
        await wait_for(settled, timeout=2.0, what=f"consumer {name} to settle")
    return latest[-1]


def _drained(info: ConsumerInfo) -> None:
    _require(
        info.num_pending == 0,
        f"consumer {info.name!r} still has {info.num_pending} events to deliver: process them all",
    )
    _require(
        info.num_ack_pending == 0,
        f"consumer {info.name!r} has {info.num_ack_pending} unacknowledged events: ack them",
    )


def _ack_fields(ack: Any) -> tuple[str, int, bool]:
    """``(stream, seq, duplicate)`` of a PubAck, or why it is not one."""
    if not isinstance(ack, PubAck):
        raise _NotYet(f"{ack!r} is not a PubAck: pass what js.publish / publish_event returned")
    return ack.stream, ack.seq, bool(ack.duplicate)


async def _check_03(js: JetStreamContext, acks: Any = None) -> str:
    info = await _stream(js, "ORDERS")
    subjects = info.config.subjects or []
    _require(
        any(matches(s, "order.placed") for s in subjects),
        f"stream ORDERS captures {subjects}, which does not include order.placed",
    )
    _require(
        info.config.duplicate_window == 300,
        f"the duplicate window is {info.config.duplicate_window:g}s; set it to 300 seconds",
    )
    _require(
        isinstance(acks, list | tuple) and bool(acks),
        "pass the PubAcks of your four publishes: await check('03', js, acks)",
    )
    fields = [_ack_fields(a) for a in acks]
    others = sorted({stream for stream, _, _ in fields} - {"ORDERS"})
    _require(not others, f"some PubAcks come from stream(s) {others}, not ORDERS")
    first: dict[int, int] = {}  # sequence -> index of the ack that stored it
    dropped: list[tuple[int, int]] = []  # (index, sequence) of acks that said duplicate
    for i, (_, seq, duplicate) in enumerate(fields):
        if duplicate:
            dropped.append((i, seq))
        else:
            first.setdefault(seq, i)
    _require(
        bool(dropped),
        f"none of your {len(fields)} PubAcks says duplicate=True: the server stored every "
        f"publish (sequences {', '.join(str(seq) for _, seq, _ in fields)}). Publish the "
        "first event again with the same Nats-Msg-Id (publish_event sets it to the event id)",
    )
    i, seq = dropped[0]
    _require(
        seq in first and first[seq] < i,
        f"PubAck {i} says duplicate of sequence {seq}, but none of the earlier PubAcks you "
        "passed stored that sequence: pass the acks of this attempt, in order",
    )
    try:
        stored = await js.get_msg("ORDERS", seq)
    except nats.js.errors.NotFoundError:
        raise _NotYet(f"ORDERS no longer holds sequence {seq}: run the exercise again") from None
    msg_id = (stored.headers or {}).get("Nats-Msg-Id")
    _require(
        bool(msg_id),
        f"the message stored at sequence {seq} has no Nats-Msg-Id header, so the server "
        "cannot have recognised the resend by id: publish with publish_event",
    )
    events = await _events(js, info)
    placed = [e for e in events if e.type == "order.placed"]
    ids = [e.id for e in placed]
    _require(
        len(placed) == 3,
        f"ORDERS holds {len(placed)} order.placed events ({', '.join(ids)}); expected 3: "
        "start from a fresh stream, publish three, then resend the first",
    )
    _require(len(set(ids)) == 3, f"the three order.placed events need three ids, not {ids}")
    _require(
        msg_id in ids,
        f"sequence {seq} carries Nats-Msg-Id {msg_id!r}, which is not the id of a stored order",
    )
    return (
        f"the resend of {msg_id} was answered duplicate=True with sequence {seq} and not "
        "stored: ORDERS holds 3 distinct order.placed events"
    )


_PRICE_SYMBOLS = ("AAPL", "MSFT", "NVDA")
_PRICE_PROBE = "price.CHECK"


async def _probe_last_value(js: JetStreamContext, stream: str) -> None:
    """Publish two values for a key of the checker's own; the stream must keep only the second."""
    try:
        for value in (b"1", b"2"):
            await js.publish(_PRICE_PROBE, value, stream=stream)
        kept = (await js.stream_info(stream, subjects_filter=_PRICE_PROBE)).state.subjects or {}
        last = await js.get_last_msg(stream, _PRICE_PROBE)
    except nats.js.errors.APIError as err:
        raise _NotYet(
            f"{stream} refused an update of a key ({err.description}): a last-value stream must "
            "replace the old value, not refuse the new one (discard old)"
        ) from None
    finally:
        with contextlib.suppress(nats.errors.Error):
            await js.purge_stream(stream, subject=_PRICE_PROBE)
    _require(
        kept.get(_PRICE_PROBE) == 1 and last.data == b"2",
        f"after two updates of {_PRICE_PROBE}, {stream} kept {kept.get(_PRICE_PROBE, 0)} "
        "messages for it: set max_msgs_per_subject=1",
    )


async def _check_04(js: JetStreamContext) -> str:
    info = await _stream(js, "PRICES")
    subjects = info.config.subjects or []
    _require(
        any(matches(s, f"price.{x}") for s in subjects for x in _PRICE_SYMBOLS),
        f"stream PRICES captures {subjects}, which does not include price.AAPL",
    )
    counts = (await js.stream_info("PRICES", subjects_filter="price.*")).state.subjects or {}
    missing = [x for x in _PRICE_SYMBOLS if f"price.{x}" not in counts]
    _require(not missing, f"PRICES has no price for {missing}: publish on price.<symbol>")
    extra = {k: v for k, v in sorted(counts.items()) if v > 1}
    _require(
        not extra,
        f"PRICES keeps several prices per symbol {extra}: keep only the latest "
        "(max_msgs_per_subject=1)",
    )
    published = info.state.last_seq
    _require(
        published >= 2 * len(_PRICE_SYMBOLS),
        f"only {published} prices were ever published to PRICES: publish at least two per "
        "symbol, so that newer prices replace older ones",
    )
    await _probe_last_value(js, "PRICES")
    return (
        f"{published} prices published, one kept per symbol, and an update replaced the old value"
    )


_PRICE_SYMBOLS = ("AAPL", "MSFT", "NVDA")
_PRICE_PROBE = "price.CHECK"


async def _check_05(js: JetStreamContext) -> str:
    await _stream(js, "ORDERS")
    info = await _settled(js, "ORDERS", "billing")
    filters = set(consumer_filters(info.config))
    _require(filters == {"order.placed"}, f"billing filters {sorted(filters)}; use order.placed")
    _require(info.config.durable_name == "billing", "billing must be a durable consumer")
    placed = [
        seq async for seq, raw in stream_messages(js, "ORDERS") if raw.subject == "order.placed"
    ]
    _require(bool(placed), "ORDERS holds no order.placed event: publish some first")
    delivered = info.delivered.stream_seq if info.delivered else 0
    deliveries = info.delivered.consumer_seq if info.delivered else 0
    acked_deliveries = info.ack_floor.consumer_seq if info.ack_floor else 0
    seen = f"billing has delivered up to sequence {delivered} and acknowledged up to {_floor(info)}"
    _require(
        deliveries > 0,
        f"ORDERS holds {len(placed)} order.placed events and billing has delivered none of "
        "them: run your handler with billing.run(...)",
    )
    _require(
        info.num_pending == 0 and delivered >= placed[-1],
        f"{seen}; {info.num_pending} order.placed events (up to sequence {placed[-1]}) "
        "were never delivered: process them all",
    )
    _require(
        info.num_ack_pending == 0 and acked_deliveries == deliveries,
        f"{seen}; {info.num_ack_pending} delivered events are not acknowledged: ack each "
        "one (run acks when the handler returns)",
    )
    _require(
        _floor(info) >= placed[-1],
        f"{seen}, but the last order.placed is sequence {placed[-1]}",
    )
    return (
        f"billing delivered all {len(placed)} order.placed events (up to sequence "
        f"{placed[-1]}) in {deliveries} deliveries, and every one is acknowledged"
    )


async def _check_06(js: JetStreamContext, log: Any = None) -> str:
    from edalab.course.charts.redelivery import DeliveryLog, on_time, window

    _require(
        isinstance(log, DeliveryLog),
        "pass the DeliveryLog you gave run() as its observer: await check('06', js, log)",
    )
    assert isinstance(log, DeliveryLog)
    info = await _settled(js, "TASKS", "careful")
    _require(info.config.max_deliver == 4, f"max_deliver is {info.config.max_deliver}; set 4")
    backoff = [float(b) for b in info.config.backoff or []]
    _require(len(backoff) == 3, f"backoff is {backoff}; give three delays")
    _require(min(backoff) >= 0.1, f"backoff is {backoff}; make each delay at least 0.1 s")
    _drained(info)
    mine = [r for r in log.records if (r.stream, r.consumer) == ("TASKS", "careful")]
    _require(
        bool(mine),
        "the log saw no delivery from consumer careful: run the handler with "
        "observer=log.observe on careful while it has events (recreate=True starts it over)",
    )
    served = info.delivered.consumer_seq if info.delivered else 0
    _require(
        mine[-1].consumer_seq == served,
        f"careful has made {served} deliveries, the log's last is number "
        f"{mine[-1].consumer_seq}: record the latest run in a fresh DeliveryLog",
    )
    steps = {1: backoff[0], 2: backoff[1], 3: backoff[2]}
    full = 0
    for seq in dict.fromkeys(r.seq for r in mine):
        got = [r for r in mine if r.seq == seq]
        for before, after in itertools.pairwise(got):
            gap = after.at - before.at
            want = steps[min(before.delivery, 3)]
            low, high = window(want)
            _require(
                on_time(gap, want),
                f"sequence {seq}: delivery {after.delivery} came {gap:.2f} s after delivery "
                f"{before.delivery}; your backoff says {want:g} s (accepted {low:g}..{high:g} "
                "s). A nak sets its own delay (and plain nak none): raise TransientError "
                "without a delay and run with on_transient='let_expire', so the backoff applies",
            )
        full += [r.delivery for r in got] == [1, 2, 3, 4]
    _require(
        full > 0,
        "no event went through all four deliveries in the log: fail on deliveries 1-3 "
        "and succeed on the 4th, so each backoff step is used",
    )
    return (
        f"{full} event(s) redelivered after {', '.join(f'{b:g}' for b in backoff)} s as the "
        "backoff says, then acknowledged"
    )


def _delivered_once(info: ConsumerInfo, first: int, last: int) -> str:
    """Check that the consumer delivered sequences first..last once each, all acknowledged.

    Returns a description; a consumer that delivered more (redeliveries) or less fails
    with what the server counted.
    """
    name = info.name
    served = info.delivered.consumer_seq if info.delivered else 0
    reached = info.delivered.stream_seq if info.delivered else 0
    want = max(0, last - first + 1)
    _require(served > 0, f"{name} has delivered nothing yet: consume its events and ack them")
    _require(
        reached == last,
        f"{name} has delivered up to sequence {reached} of {last}: consume the rest",
    )
    _require(
        served == want,
        f"{name} made {served} deliveries for the {want} events {first}..{last}, so "
        f"{served - want} were redeliveries (an ack came late or not at all): ack each "
        "event as you handle it, then start over with recreate=True and check again",
    )
    _require(_floor(info) == last, f"{name} has not acknowledged up to sequence {last}")
    return f"sequences {first}..{last}, each delivered once and acknowledged"


async def _check_07(js: JetStreamContext) -> str:
    stream = await _stream(js, "USERS")
    info = await _settled(js, "USERS", "audit")
    _require(
        info.config.deliver_policy == DeliverPolicy.BY_START_SEQUENCE,
        f"audit's deliver policy is {info.config.deliver_policy}; use by_start_sequence",
    )
    _require(info.config.opt_start_seq == 3, f"audit starts at {info.config.opt_start_seq}; use 3")
    _drained(info)
    return "audit delivered " + _delivered_once(info, 3, stream.state.last_seq)


#: Exercise 02's probes: subject -> whether the mailer wants it (user.<part>.updated, user.deleted).
_PROBES_02: dict[str, bool] = {
    "user.profile.updated": True,
    "user.email.updated": True,
    "user.address.updated": True,
    "user.deleted": True,
    "user.created": False,
    "user.profile.viewed": False,
    "user.profile.photo.updated": False,
    "order.deleted": False,
    "order.address.updated": False,
}


async def _deliveries(nc: NATS, patterns: list[str], subjects: list[str]) -> Counter[str]:
    """How many times each of ``subjects`` reaches a set of subscriptions to ``patterns``.

    Everything happens under a fresh inbox prefix, so nothing the course stores is touched
    and no other subscriber sees the probes. Each subscription then gets an end marker (a
    subject its own pattern matches): messages from one publisher reach a subscription in
    order, so when the marker arrives every probe for that subscription has arrived too.
    """
    root = nc.new_inbox()
    subs = [await nc.subscribe(f"{root}.{p}") for p in patterns]
    got: Counter[str] = Counter()
    try:
        for s in subjects:
            await nc.publish(f"{root}.{s}", b"probe")
        for i, p in enumerate(patterns):
            literal = ".".join("end" if t in ("*", ">") else t for t in p.split("."))
            await nc.publish(f"{root}.{literal}", f"end {i}".encode())
        for i, (p, sub) in enumerate(zip(patterns, subs, strict=True)):
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    raise _NotYet(
                        f"nothing came back on {p!r} within 2 s: is nc connected?"
                    ) from None
                if msg.data == f"end {i}".encode():
                    break
                if msg.data == b"probe":
                    got[msg.subject[len(root) + 1 :]] += 1
    finally:
        for sub in subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
    return got


async def _check_02(nc: Any, patterns: Any = None) -> str:
    _require(
        isinstance(nc, NATS),
        "pass your connection and your patterns: await check('02', nc, patterns)",
    )
    _require(
        not nc.is_closed,
        "your connection nc is closed: run nc = await connect(server), then check again",
    )
    if isinstance(patterns, str):
        patterns = [patterns]
    _require(
        isinstance(patterns, list | tuple)
        and bool(patterns)
        and all(isinstance(p, str) for p in patterns),
        "pass the pattern(s) you subscribe to as a list: await check('02', nc, ['user.>'])",
    )
    for p in patterns:
        try:
            validate_subject(p, wildcards=True)
        except SubjectError as err:
            raise _NotYet(f"{p!r} is not a subject you can subscribe to: {err.reason}") from None
    got = await _deliveries(nc, list(patterns), list(_PROBES_02))
    missing = [s for s, wanted in _PROBES_02.items() if wanted and not got[s]]
    extra = [s for s, wanted in _PROBES_02.items() if not wanted and got[s]]
    twice = [s for s in _PROBES_02 if got[s] > 1]
    if missing or extra or twice:
        arrived = ", ".join(f"{s}{' x' + str(got[s]) if got[s] > 1 else ''}" for s in got)
        seen = f"subscribed to {list(patterns)}, the server delivered: {arrived or 'nothing'}"
        hints = []
        if missing:
            hints.append(
                f"missing {', '.join(missing)} (a '*' token matches any one field, so "
                "you need not list them)"
            )
        if extra:
            hints.append(
                f"not wanted {', '.join(extra)} ('>' matches one or more tokens, '*' "
                "exactly one; keep the domain literal)"
            )
        if twice:
            hints.append(
                f"delivered more than once {', '.join(twice)} (two of your subscriptions "
                "match it, so the mailer would send two e-mails)"
            )
        raise _NotYet(f"{seen}. {'; '.join(hints)}")
    wanted = [s for s, w in _PROBES_02.items() if w]
    return (
        f"of {len(_PROBES_02)} probe subjects the server delivered exactly the "
        f"{len(wanted)} the mailer wants, once each: {', '.join(wanted)}"
    )


async def _check_08(js: JetStreamContext, registry: Any = None) -> str:
    from edalab.versioning import SchemaRegistry, compare_models

    _require(
        isinstance(registry, SchemaRegistry), "pass your SchemaRegistry: check('08', js, registry)"
    )
    assert isinstance(registry, SchemaRegistry)
    versions = registry.versions("user.created")
    _require(versions[-1:] == [4], f"user.created versions are {versions}; add version 4")
    compat = compare_models(registry.model("user.created", 3), registry.model("user.created", 4))
    _require(compat.compatible, f"v4 breaks v3 consumers: {'; '.join(compat.breaking)}")
    await _stream(js, "USERS")
    count = 0
    async for seq, raw in stream_messages(js, "USERS"):
        event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
        if event.type != "user.created" or event.version > 4:
            continue
        try:
            upcast = registry.upcast(event, subject=raw.subject)
        except EdalabError as err:
            said = " ".join(str(err).split("For further information")[0].split())
            raise _NotYet(
                f"sequence {seq} (version {event.version}) does not replay as version 4: "
                f"{said}; give every version below 4 an upcaster to the next "
                "(@registry.upcaster('user.created', n)) and check again"
            ) from None
        _require(upcast.version == 4, f"sequence {seq} came out as version {upcast.version}")
        count += 1
    return f"all {count} known-version user.created events replay as version 4"


async def _check_09(js: JetStreamContext) -> str:
    from edalab.publishing import MSG_ID

    info = await _stream(js, "LEDGER")
    _require(
        str(getattr(info.config.storage, "value", info.config.storage)) == "file",
        "LEDGER must use file storage to survive a server crash",
    )
    ids: dict[str, int] = {}
    numbers: set[int] = set()
    async for seq, raw in stream_messages(js, "LEDGER"):
        try:
            event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
        except EdalabError as err:
            raise _NotYet(f"LEDGER message {seq} is not an event: {err}") from None
        _require(
            (raw.headers or {}).get(MSG_ID) == event.id,
            f"LEDGER message {seq} has no Nats-Msg-Id equal to its event id: a retry of it "
            "would be stored again (publish_events sets it)",
        )
        ids[event.id] = ids.get(event.id, 0) + 1
        if isinstance(event.data, dict) and isinstance(event.data.get("n"), int):
            numbers.add(event.data["n"])
    twice = sorted(i for i, n in ids.items() if n > 1)
    _require(
        not twice,
        f"LEDGER stores {len(twice)} events more than once (e.g. {twice[0] if twice else ''}): "
        "retry with the same Nats-Msg-Id, inside the stream's duplicate window",
    )
    missing = sorted(set(range(200)) - numbers)
    _require(
        not missing,
        f"LEDGER holds {len(ids)} of the 200 ledger entries; missing n={missing[:5]}...: "
        "send everything not acknowledged again after the restart",
    )
    _require(len(ids) == 200, f"LEDGER holds {len(ids)} events; expected exactly the 200 entries")
    return "LEDGER holds each of the 200 entries exactly once, each with its Nats-Msg-Id"


async def _check_10(js: JetStreamContext, charge: Any = None) -> str:
    import asyncio

    from edalab.idempotency import ProcessedIds

    _require(callable(charge), "pass your handler: await check('10', js, charge)")
    try:
        kv = await js.key_value("charges")
    except nats.js.errors.BucketNotFoundError:
        raise _NotYet("there is no key-value bucket 'charges' yet") from None
    status = await kv.status()
    _require(
        (status.history or 1) >= 2,
        "create 'charges' with history=5, so a second write of a key can be seen",
    )
    store = ProcessedIds(kv)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    raced = Event.create("payment.captured", {"amount_cents": 700}, id=f"check10-{stamp}-a")
    elsewhere = Event.create("payment.captured", {"amount_cents": 900}, id=f"check10-{stamp}-b")

    async def call(event: Event, what: str) -> None:
        try:
            await charge(event)
        except Exception as err:
            raise _NotYet(
                f"charge raised {type(err).__name__}: {err} on {what}; a charge already "
                "made is not an error: return normally, so the message is acknowledged"
            ) from None

    await asyncio.gather(call(raced, "two workers at once"), call(raced, "two workers at once"))
    await call(raced, "a redelivery")
    writes = len(await kv.history(raced.id)) if await store.seen(raced.id) else 0
    _require(writes > 0, f"nothing was recorded under {raced.id!r} in 'charges'")
    _require(
        writes == 1,
        f"two racing workers and one redelivery charged {raced.id!r} {writes} times; "
        "write the charge with kv.create (or ProcessedIds.record), which only one caller wins",
    )
    await store.record(elsewhere.id, b"900")  # another process charged it before
    await call(elsewhere, "an event another process already charged")
    writes = len(await kv.history(elsewhere.id))
    _require(
        writes == 1,
        f"an event another process had charged was charged again ({writes} writes): "
        "check the bucket on the server, not memory in this process",
    )
    return "two racing workers, a redelivery and another process: each event charged once"


async def _check_11(js: JetStreamContext) -> str:
    from edalab.deadletters import DeadLetters

    dead = DeadLetters(js)
    await _stream(js, dead.stream)
    reader = dead.replay_consumer_name("PAYMENTS", "payments")
    left = await dead.letters(stream="PAYMENTS") + await dead.letters(consumer=reader)
    _require(
        not left,
        f"{len(left)} dead letters remain: {[(d.consumer, str(d.category)) for d in left]}; "
        "discard the undecodable ones, replay the other",
    )
    fixed_in_payments = [
        seq
        async for seq, raw in stream_messages(js, "PAYMENTS")
        if b'"amount_cents":100' in (raw.data or b"").replace(b" ", b"")
    ]
    _require(
        not fixed_in_payments,
        f"the fixed payment was published to PAYMENTS (sequence {fixed_in_payments}): every "
        "consumer of payment.> (audit too) got it; use dead.replay(letter, data=...)",
    )
    replays = []
    async for seq, raw in stream_messages(js, dead.stream):
        if (raw.subject or "").startswith(dead.replay_prefix + ".") and b'"amount_cents":100' in (
            raw.data or b""
        ).replace(b" ", b""):
            replays.append((seq, raw.subject))
    _require(bool(replays), "no replay with amount_cents 100: replay the rejected letter")
    target = dead.replay_subject("PAYMENTS", "payments")
    others = [subject for _, subject in replays if subject != target]
    _require(not others, f"the fixed payment was replayed to {others}, not only to payments")
    info = await _settled(js, dead.stream, reader)
    _require(
        _floor(info) >= max(seq for seq, _ in replays) and not info.num_ack_pending,
        f"payments' replay reader {reader!r} has not handled the replay (pending "
        f"{info.num_pending}, unacknowledged {info.num_ack_pending}): run it with the handler",
    )
    return "no dead letters left; the fixed payment reached payments, and no other consumer"


def _concrete(pattern: str) -> str:
    """A subject that ``pattern`` matches (wildcards filled with ``probe``)."""
    return ".".join("probe" if t in ("*", ">") else t for t in pattern.split("."))


async def _check_12(
    js: JetStreamContext,
    *,
    url: str = "",
    user: str = "",
    password: str = "",
    stream: str = "SHOP",
    consumer: str = "audit",
) -> str:
    from edalab.connection import connect, publish_checked, subscribe_checked
    from edalab.errors import AuthenticationError, PermissionDenied
    from edalab.security import inbox_prefix, permission_checked

    _require(bool(url and user), "pass the server and credentials: check('12', js, url=...)")
    info = await _consumer(js, stream, consumer)
    filters = consumer_filters(info.config) or list(
        (await _stream(js, stream)).config.subjects or []
    )
    probe = _concrete(filters[0])
    # Something for the auditor to read: a probe event on a subject its consumer delivers.
    try:
        await js.publish(probe, Event.create(probe, {"probe": "exercise 12"}).to_json(), timeout=2)
    except (nats.errors.Error, TimeoutError):
        raise _NotYet(
            f"could not publish a probe on {probe} with the js you passed: pass the admin's "
            "JetStream context, check('12', nc_admin.jetstream(), url=..., user=...)"
        ) from None
    prefix = inbox_prefix(user)
    try:
        nc = await connect(url, user=user, password=password, timeout=3, inbox_prefix=prefix)
    except AuthenticationError:
        raise _NotYet(f"{user} cannot log in with that password") from None
    ujs = nc.jetstream(timeout=1)
    try:
        try:
            await subscribe_checked(nc, f"{prefix}.>")
        except PermissionDenied:
            raise _NotYet(
                f"{user} may not subscribe to its own inbox {prefix}.>: fetched messages and "
                "replies arrive there (jetstream_user adds it)"
            ) from None
        sub = await ujs.pull_subscribe_bind(consumer, stream)
        try:
            async with permission_checked(nc, stream, consumer):
                [msg] = await sub.fetch(1, timeout=2)
        except PermissionDenied as denied:
            raise _NotYet(f"{user} could not fetch from {stream}/{consumer}: {denied}") from None
        except nats.errors.TimeoutError:
            raise _NotYet(
                f"{user} fetched nothing from {stream}/{consumer} although a probe was "
                f"published on {probe}: are all its messages waiting for an ack?"
            ) from None
        try:
            async with permission_checked(nc, stream, consumer):
                await msg.ack_sync(timeout=2)
        except PermissionDenied as denied:
            raise _NotYet(
                f"{user} fetched stream message {msg.metadata.sequence.stream} but the server "
                f"refused its ack ({denied}): the message will be redelivered forever; allow "
                f"$JS.ACK.{stream}.{consumer}.>"
            ) from None
        probes: list[tuple[str, Callable[[], Awaitable[bool]]]] = [
            ("delete streams", partial(ujs.delete_stream, "EDALAB_PROBE")),
            ("delete consumers", partial(ujs.delete_consumer, stream, "edalab-probe")),
        ]
        for what, call in probes:
            # Probes on things that do not exist: an answer (even "not found") means allowed.
            try:
                async with permission_checked(nc):
                    await call()
            except PermissionDenied:
                continue
            except nats.js.errors.NotFoundError:
                pass
            raise _NotYet(
                f"{user} may {what}: the server answered its request instead of refusing it; "
                "grant only its consumer's subjects, never $JS.API.>"
            )
        with contextlib.suppress(PermissionDenied):
            await publish_checked(nc, probe, b"{}")
            raise _NotYet(f"{user} may publish to {probe}; an auditor publishes nothing")
        for other in ("_INBOX.>", "_INBOX_orders.>"):
            with contextlib.suppress(PermissionDenied):
                await subscribe_checked(nc, other)
                raise _NotYet(
                    f"{user} may subscribe to {other}: it could read other users' replies; "
                    f"allow only {prefix}.>"
                )
    finally:
        await nc.close()
    return (
        f"{user} fetched and acked on {stream}/{consumer}, and was refused everything else "
        "(stream and consumer deletion, publishing, other inboxes)"
    )


async def _check_13(js: JetStreamContext) -> str:
    info = await _stream(js, "AUDIT")
    _require(info.config.num_replicas == 3, f"AUDIT has {info.config.num_replicas} replica(s)")
    cluster = info.cluster
    leader = cluster.leader if cluster else None
    _require(bool(leader), "AUDIT has no leader right now: is a majority of its nodes running?")
    replicas = (cluster.replicas if cluster else None) or []
    _require(
        len(replicas) == 2,
        f"AUDIT's leader {leader} reports {len(replicas)} follower(s), not 2",
    )
    behind = [
        f"{r.name} ({'offline' if r.offline else f'lag {r.lag or 0}'})"
        for r in replicas
        if r.offline or not r.current or (r.lag or 0)
    ]
    _require(
        not behind,
        f"not every replica of AUDIT has caught up: {', '.join(behind)}; restart the "
        "stopped follower and wait_until_current(js, 'AUDIT')",
    )
    _require(info.state.messages == 200, f"AUDIT holds {info.state.messages} messages, not 200")
    ids = [event.id for event in await _events(js, info)]
    _require(
        len(set(ids)) == 200,
        f"AUDIT's 200 messages hold only {len(set(ids))} distinct event ids: some events "
        "were stored twice; publish with Nats-Msg-Id (publish_events does) and retry with it",
    )
    return "AUDIT is replicated three times, every follower current, with 200 distinct events"


async def _check_17(js: JetStreamContext, handler: Any = None) -> str:
    from edalab.consuming import EventConsumer

    _require(handler is not None, "pass your handler: await check('17', js, handler=award)")
    info = await _stream(js, "SHOP")
    events = await _events(js, info)
    payments = [e for e in events if e.type == "shop.payment.captured"]
    _require(bool(payments), "SHOP holds no shop.payment.captured: run the capstone first")
    _drained(await _settled(js, "SHOP", "shop-loyalty"))

    def awards(events: list[Event]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {p.id: [] for p in payments}
        for event in events:
            if event.type == "shop.points.awarded" and isinstance(event.data, dict):
                out.setdefault(str(event.data.get("payment_id")), []).append(event)
        return out

    for pay in payments:
        given = awards(events)[pay.id]
        _require(
            bool(given),
            f"payment {pay.id} (order {pay.data.get('order_id')}) has no shop.points.awarded "
            "with its payment_id: did shop-loyalty run over the whole stream?",
        )
        want = int(pay.data.get("amount_cents", 0)) // 100
        got = [a.data.get("points") for a in given]
        _require(all(p == want for p in got), f"payment {pay.id} is worth {want} points, not {got}")
    # The behaviour that matters: every payment delivered to the handler once more.
    again = await EventConsumer.create(
        js, "SHOP", "edalab-check-17", filter_subject="shop.payment.captured", recreate=True
    )
    try:
        report = await again.run(handler, timeout=0.5, double_ack=True)
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer("SHOP", "edalab-check-17")
    _require(
        report.handled == len(payments) and not report.errors,
        f"your handler failed on a redelivered payment: {report.errors[:1]}",
    )
    after = awards(await _events(js, await _stream(js, "SHOP")))
    twice = {pid: len(given) for pid, given in after.items() if len(given) > 1}
    _require(
        not twice,
        f"the checker delivered each payment to your handler again and {len(twice)} payment(s) "
        f"now have more than one award (e.g. {next(iter(twice.items()), '')}): derive the "
        "award's id from the payment's id, so that Nats-Msg-Id drops the copy",
    )
    return f"each of the {len(payments)} payments is awarded once, even when delivered again"


_SHIP_PARTITIONS = 4
_SHIP_PROBES = ("probe-a", "probe-b", "probe-c", "probe-d", "probe-e", "probe-f")


async def _probe_partitions(js: JetStreamContext, filters: dict[str, str]) -> str:
    """Publish probe shipments; each key must land in the partition of exactly one consumer."""
    owners: dict[str, set[str]] = {}
    stored: list[str] = []
    try:
        for key in _SHIP_PROBES + _SHIP_PROBES:
            ack = await js.publish(f"shipment.{key}", b"{}", stream="SHIPMENTS")
            subject = (await js.get_msg("SHIPMENTS", ack.seq)).subject or ""
            stored.append(subject)
            mine = [name for name, f in filters.items() if matches(f, subject)]
            _require(
                len(mine) == 1,
                f"shipment.{key} was stored as {subject}, which "
                + (f"{len(mine)} consumers {mine} receive" if mine else "no consumer receives")
                + ": give each consumer its own partition",
            )
            owners.setdefault(key, set()).update(mine)
    except nats.js.errors.APIError as err:
        raise _NotYet(f"SHIPMENTS refused a shipment ({err.description})") from None
    finally:
        for subject in dict.fromkeys(stored):
            with contextlib.suppress(nats.errors.Error):
                await js.purge_stream("SHIPMENTS", subject=subject)
    _require(
        all(len(v) == 1 for v in owners.values()),
        "the same key went to different consumers: partition on the key's token",
    )
    used = set().union(*owners.values())
    _require(
        len(used) > 1,
        f"all {len(_SHIP_PROBES)} probe keys went to {sorted(used)}: use "
        "{{partition(4,1)}} in the subject transform's destination",
    )
    return f"{len(_SHIP_PROBES)} probe keys spread over {len(used)} partitions, each key in one"


async def _check_14(js: JetStreamContext) -> str:
    info = await _stream(js, "SHIPMENTS")
    transform = info.config.subject_transform
    dest = transform.dest if transform else ""
    _require(
        f"partition({_SHIP_PARTITIONS}," in dest.replace(" ", ""),
        f"SHIPMENTS's subject transform destination is {dest!r}: map shipment.* to "
        "shipment.{{partition(4,1)}}.{{wildcard(1)}}",
    )
    filters: dict[str, str] = {}
    for p in range(_SHIP_PARTITIONS):
        consumer = await _settled(js, "SHIPMENTS", f"ship-{p}")
        _require(
            consumer.config.max_ack_pending == 1,
            f"ship-{p} has max_ack_pending={consumer.config.max_ack_pending}: use 1, so that "
            "each partition is processed in order",
        )
        mine = consumer_filters(consumer.config)
        _require(len(mine) == 1, f"ship-{p} filters {mine}: give it its partition only")
        _drained(consumer)
        _require(_floor(consumer) > 0, f"ship-{p} has not acknowledged any shipment yet")
        filters[f"ship-{p}"] = mine[0]
    return await _probe_partitions(js, filters)


_SHIP_PARTITIONS = 4
_SHIP_PROBES = ("probe-a", "probe-b", "probe-c", "probe-d", "probe-e", "probe-f")


async def _check_18(js: JetStreamContext) -> str:
    stream = await _stream(js, "MIGRATION")
    info = await _settled(js, "MIGRATION", "billing")
    cfg = info.config
    _require(
        cfg.deliver_policy == DeliverPolicy.BY_START_SEQUENCE and cfg.opt_start_seq == 2,
        "StartAtSequence(2) is deliver_policy=by_start_sequence with opt_start_seq=2",
    )
    _require(cfg.ack_wait == 10, f"AckWait(10s) is ack_wait=10, not {cfg.ack_wait}")
    _require(
        cfg.max_ack_pending == 5, f"MaxInflight(5) is max_ack_pending=5, not {cfg.max_ack_pending}"
    )
    _require(
        str(getattr(cfg.ack_policy, "value", cfg.ack_policy)) == "explicit", "use explicit acks"
    )
    _require(
        info.num_ack_pending == 0,
        f"billing delivered {info.num_ack_pending} message(s) that nobody acknowledged: with "
        "manual_ack=True (SetManualAckMode) your callback must call await msg.ack()",
    )
    _drained(info)
    return "billing delivered " + _delivered_once(info, 2, stream.state.last_seq)


async def _check_16(js: JetStreamContext) -> str:
    from edalab.tracing import CAUSATION_ID, CORRELATION_ID, TraceContext, derived_id

    await _stream(js, "ORDERS")
    placed_id = "order-ex16"
    cause = derived_id(placed_id, "stock.reserved")
    want_id = derived_id(cause, "billing.charged")
    trace_ids, charged = set(), []
    async for seq, raw in stream_messages(js, "ORDERS"):
        event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
        if event.id == placed_id:
            trace = TraceContext.from_headers(raw.headers)
            trace_ids.add(trace.trace_id if trace else "")
        if event.type == "billing.charged" and (event.data or {}).get("order_id") == "ex16":
            charged.append((event, raw.headers or {}))
    _require(bool(trace_ids), "no order.placed for ex16 in ORDERS: run the exercise's first cell")
    _require(bool(charged), "no billing.charged for order ex16 in ORDERS yet")
    _require(
        len(charged) == 1,
        f"ORDERS holds {len(charged)} billing.charged events for ex16 (ids "
        f"{sorted(e.id for e, _ in charged)}): a redelivery made a new event; derive its id "
        "from the cause with derived_id(cause_id, 'billing.charged')",
    )
    event, headers = charged[0]
    _require(event.id == want_id, f"billing.charged has id {event.id!r}; derive it from the cause")
    _require(
        headers.get(CAUSATION_ID) == cause,
        f"Causation-Id is {headers.get(CAUSATION_ID)!r}; it names the stock.reserved event",
    )
    _require(
        headers.get(CORRELATION_ID) == placed_id,
        f"Correlation-Id is {headers.get(CORRELATION_ID)!r}; it is the flow's first event id",
    )
    try:
        trace = TraceContext.from_headers(headers)
    except EdalabError as err:
        raise _NotYet(str(err)) from None
    _require(
        trace is not None and trace.trace_id in trace_ids,
        "billing.charged's traceparent is not in the order's trace: use its trace context",
    )
    return "one billing.charged for ex16 despite the redelivery, caused, correlated and traced"


_CHECKERS: dict[str, Checker] = {
    "02": _check_02,
    "03": _check_03,
    "04": _check_04,
    "05": _check_05,
    "06": _check_06,
    "07": _check_07,
    "08": _check_08,
    "09": _check_09,
    "10": _check_10,
    "11": _check_11,
    "12": _check_12,
    "13": _check_13,
    "14": _check_14,
    "16": _check_16,
    "17": _check_17,
    "18": _check_18,
}
#: The exercises, keyed by their lesson's number (the manifest says which lessons have one).
EXERCISES: dict[str, Exercise] = {
    x.number: Exercise(x.number, x.notebook, x.exercise, _CHECKERS[x.number])
    for x in LESSONS
    if x.exercise and x.number in _CHECKERS  # 00 and 01: at the end of this module
}


async def check(
    exercise: str, js: JetStreamContext | NATS, *args: Any, report: bool = True, **kwargs: Any
) -> CheckResult:
    """Run one exercise's checker against the live server.

    result = await check("03", js, acks)
    result.passed

    Most checkers take the JetStream context; 02 (core NATS only) takes the connection.
    In class mode the verdict also goes to the instructor, unless ``report=False``
    (``edalab progress`` re-checks without reporting).
    """
    try:
        spec = EXERCISES[exercise]
    except KeyError:
        raise ValueError(f"no exercise {exercise!r}; known: {', '.join(EXERCISES)}") from None
    try:
        _answered(spec, js, args, kwargs)
        message = await spec.checker(js, *args, **kwargs)
    except _NotYet as hint:
        result = CheckResult(exercise, False, str(hint))
    except nats.errors.ConnectionClosedError:
        # Nothing to report either: say it in one line, with the way back.
        return CheckResult(exercise, False, CLOSED)
    else:
        _record_pass(exercise)
        result = CheckResult(exercise, True, message)
    return await _report(result) if report else result


#: What a check says when the notebook's connection was closed (e.g. by a Run All).
CLOSED = (
    "the connection is closed (did a cell run `await nc.close()`?): run the notebook's "
    "connect cell again (`nc = await connect(server)`, `js = nc.jetstream()`), then check again"
)


async def _report(result: CheckResult) -> CheckResult:
    """In class mode, send the verdict to the instructor; say so if that failed.

    It goes over a connection of its own to the class server (the environment's), so a
    lesson that checks on a server of its own still reports to the class.
    """
    from edalab.course.classroom import in_class_mode, report_check

    if not in_class_mode():
        return result
    why = await report_check(None, result.exercise, result.passed, result.message)
    if why is None:
        return result
    note = f" (not reported to the instructor: {why})"
    return CheckResult(result.exercise, result.passed, result.message + note)


def _progress_file() -> Path:
    """This machine's record of passes: one per user when several share it (a class)."""
    import os

    from edalab.state import state_dir

    user = "".join(c for c in os.environ.get("NATS_USER", "") if c.isalnum() or c in "-_")
    return state_dir() / (f"progress-{user}.json" if user else "progress.json")


def recorded_passes() -> dict[str, str]:
    """Exercises that passed a check on this machine, with when (ISO time, UTC).

    Later notebooks recreate streams earlier exercises used, so a check that passed
    can fail later for reasons that are not the learner's: ``edalab progress`` shows both.
    """
    try:
        data = json.loads(_progress_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _record_pass(exercise: str) -> None:
    passes = recorded_passes()
    passes.setdefault(exercise, datetime.now(UTC).isoformat(timespec="seconds"))
    with contextlib.suppress(OSError):  # a read-only home must not fail the check itself
        _progress_file().parent.mkdir(parents=True, exist_ok=True)
        _progress_file().write_text(json.dumps(passes, indent=2, sort_keys=True) + "\n")


def _answered(spec: Exercise, first: Any, rest: tuple[Any, ...], named: dict[str, Any]) -> None:
    """Say what to write when the check cell passes an answer that is still ``None``.

    A student copy's answer cell starts with placeholders (``award = None``) so that the
    check cell's own arguments exist before the learner has written anything.
    """
    params = list(inspect.signature(spec.checker).parameters)
    given = dict(zip(params, (first, *rest), strict=False)) | dict(named)
    answers = [*params[:1], *spec.needs]  # 12's js is the learner's admin context
    empty = [name for name in dict.fromkeys(answers) if name in given and given[name] is None]
    _require(
        not empty,
        f"{' and '.join(empty)} is still None: write your answer in the cell that says "
        f"# YOUR CODE HERE above it ({spec.task}), run that cell, then check again",
    )


async def _check_00(nc: Any, greet: Any = None) -> str:
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


async def _check_01(model: Any = None) -> str:
    from pydantic import BaseModel, ValidationError

    from edalab.errors import PayloadError

    _require(
        isinstance(model, type) and issubclass(model, BaseModel),
        f"{model!r} is not a pydantic model class: class OrderPlaced(BaseModel), then "
        "check('01', OrderPlaced)",
    )
    assert isinstance(model, type)
    try:
        sent = model(order_id="o-9", amount_cents=1250)
    except ValidationError as err:
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise _NotYet(
            f"{model.__name__}(order_id='o-9', amount_cents=1250) fails ({said}): declare "
            "the fields order_id: str and amount_cents: int"
        ) from None
    back = Event.from_json(Event.create("order.placed", sent).to_json(data_as_string=True))
    read: Any = back.payload(model)
    _require(
        read == sent,
        f"sent {sent!r}, read back {read!r} after the Go-style round trip",
    )
    wrong = {
        "amount_cents 'ten'": {"order_id": "o-2", "amount_cents": "ten"},
        "amount_cents 12.5": {"order_id": "o-2", "amount_cents": 12.5},
        "a missing order_id": {"amount_cents": 1250},
    }
    for what, data in wrong.items():
        try:
            accepted: Any = Event.create("order.placed", data).payload(model)
        except PayloadError:
            continue
        raise _NotYet(
            f"{model.__name__} accepted {what} (as {accepted!r}): declare order_id: str and "
            "amount_cents: int, both required, so a bad payload raises PayloadError"
        )
    return (
        f"{model.__name__} survives the Go-style round trip and refuses 'ten', 12.5 and a "
        "missing order_id"
    )


_CHECKERS.update({"00": _check_00, "01": _check_01})
#: Every lesson with an exercise, in course order (now that all checkers are defined).
EXERCISES = {
    x.number: Exercise(x.number, x.notebook, x.exercise, _CHECKERS[x.number])
    for x in LESSONS
    if x.exercise
}
