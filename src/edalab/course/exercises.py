"""Checkers for the notebooks' exercises: they look at the live server and say what is missing.

In a notebook::

    from edalab.course.exercises import check
    await check("03", js)       # ✔ 03 passed ... or ✘ 03 not yet: <what to fix>

Each checker is a coroutine taking the JetStream context (and, for 08, your
:class:`~edalab.versioning.SchemaRegistry`) and returning a :class:`CheckResult`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import ConsumerInfo, DeliverPolicy, StreamInfo
from nats.js.client import JetStreamContext

from edalab.consuming import consumer_filters
from edalab.course.manifest import LESSONS
from edalab.errors import EdalabError
from edalab.events import Event
from edalab.streams import stream_messages
from edalab.subjects import matches
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


async def _check_03(js: JetStreamContext) -> str:
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
    events = await _events(js, info)
    placed = [e for e in events if e.type == "order.placed"]
    ids = {e.id for e in placed}
    _require(len(placed) == 3, f"ORDERS holds {len(placed)} order.placed events; expected 3")
    _require(len(ids) == 3, "the three order.placed events need three different ids")
    return "3 distinct order.placed events, the duplicate was dropped"


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


async def _check_05(js: JetStreamContext) -> str:
    info = await _settled(js, "ORDERS", "billing")
    filters = set(consumer_filters(info.config))
    _require(filters == {"order.placed"}, f"billing filters {sorted(filters)}; use order.placed")
    _require(info.config.durable_name == "billing", "billing must be a durable consumer")
    _require(_floor(info) > 0, "billing has not acknowledged any event yet")
    _drained(info)
    return "billing received and acknowledged every order.placed event"


async def _check_06(js: JetStreamContext) -> str:
    info = await _settled(js, "TASKS", "careful")
    _require(info.config.max_deliver == 4, f"max_deliver is {info.config.max_deliver}; set 4")
    backoff = info.config.backoff or []
    _require(len(backoff) == 3, f"backoff is {backoff}; give three delays")
    _drained(info)
    deliveries = info.delivered.consumer_seq if info.delivered else 0
    last = info.delivered.stream_seq if info.delivered else 0
    _require(
        deliveries > last,
        "no event was redelivered: make the handler fail transiently before it succeeds",
    )
    return f"{deliveries} deliveries for {last} events, all acknowledged in the end"


async def _check_07(js: JetStreamContext) -> str:
    stream = await _stream(js, "USERS")
    info = await _settled(js, "USERS", "audit")
    _require(
        info.config.deliver_policy == DeliverPolicy.BY_START_SEQUENCE,
        f"audit's deliver policy is {info.config.deliver_policy}; use by_start_sequence",
    )
    _require(info.config.opt_start_seq == 3, f"audit starts at {info.config.opt_start_seq}; use 3")
    _drained(info)
    _require(
        _floor(info) == stream.state.last_seq,
        "audit has not acknowledged up to the end of the stream",
    )
    return f"audit read sequences 3..{stream.state.last_seq} and acknowledged them"


async def _check_02(js: JetStreamContext) -> str:
    info = await _consumer(js, "USERS", "profile-watch")
    filters = set(consumer_filters(info.config))
    want = {"user.*.updated", "user.deleted"}
    _require(filters == want, f"profile-watch filters {sorted(filters)}; want {sorted(want)}")
    return "profile-watch receives exactly user.*.updated and user.deleted"


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
            raise _NotYet(f"sequence {seq}: {err}") from None
        _require(upcast.version == 4, f"sequence {seq} came out as version {upcast.version}")
        count += 1
    return f"all {count} known-version user.created events replay as version 4"


async def _check_09(js: JetStreamContext) -> str:
    from edalab.deadletters import REPLAY_OF, DeadLetters

    dead = DeadLetters(js)
    await _stream(js, dead.stream)
    left = await dead.letters(stream="PAYMENTS")
    _require(
        not left, f"{len(left)} dead letters for PAYMENTS remain: {[d.category for d in left]}"
    )
    info = await _settled(js, "PAYMENTS", "payments")
    _drained(info)
    await _stream(js, "PAYMENTS")
    fixed = False
    async for seq, raw in stream_messages(js, "PAYMENTS"):
        if raw.headers and REPLAY_OF in raw.headers:
            event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
            fixed = fixed or event.data == {"amount_cents": 100}
    _require(fixed, "no replayed payment with amount_cents 100 in PAYMENTS")
    return "no dead letters left, the corrected payment was replayed and processed"


async def _check_12(
    js: JetStreamContext, *, url: str = "", user: str = "", password: str = ""
) -> str:
    from edalab.connection import connect, publish_checked, subscribe_checked
    from edalab.errors import AuthenticationError, PermissionDenied

    _require(bool(url and user), "pass the server and credentials: check('12', js, url=...)")
    try:
        nc = await connect(url, user=user, password=password, timeout=3)
    except AuthenticationError:
        raise _NotYet(f"{user} cannot log in with that password") from None
    try:
        try:
            await subscribe_checked(nc, "order.>")
        except PermissionDenied:
            raise _NotYet(f"{user} must be allowed to subscribe to order.>") from None
        for subject in ("payment.>", "user.>"):
            with contextlib.suppress(PermissionDenied):
                await subscribe_checked(nc, subject)
                raise _NotYet(f"{user} may subscribe to {subject}; allow only order.>")
        for subject in ("order.placed", "audit.note"):
            with contextlib.suppress(PermissionDenied):
                await publish_checked(nc, subject, b"{}")
                raise _NotYet(f"{user} may publish to {subject}; an auditor publishes nothing")
    finally:
        await nc.close()
    return f"{user} reads order.> and nothing else, and cannot publish"


async def _check_13(js: JetStreamContext) -> str:
    info = await _stream(js, "AUDIT")
    _require(info.config.num_replicas == 3, f"AUDIT has {info.config.num_replicas} replica(s)")
    _require(info.state.messages == 200, f"AUDIT holds {info.state.messages} messages, not 200")
    replicas = info.cluster.replicas if info.cluster else None
    _require(
        bool(replicas) and all(r.current for r in replicas or []),
        "not every replica of AUDIT is current: restart the follower and wait for it",
    )
    return "AUDIT is replicated three times, current everywhere, with 200 messages"


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
    _drained(info)
    _require(_floor(info) == stream.state.last_seq, "billing has not acknowledged everything")
    return "the STAN subscription is translated and its messages acknowledged"


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
    "12": _check_12,
    "13": _check_13,
    "14": _check_14,
    "16": _check_16,
    "18": _check_18,
}
#: The exercises, keyed by their lesson's number (the manifest says which lessons have one).
EXERCISES: dict[str, Exercise] = {
    x.number: Exercise(x.number, x.notebook, x.exercise, _CHECKERS[x.number])
    for x in LESSONS
    if x.exercise
}


async def check(exercise: str, js: JetStreamContext, *args: Any, **kwargs: Any) -> CheckResult:
    """Run one exercise's checker against the live server.

    result = await check("03", js)
    result.passed
    """
    try:
        spec = EXERCISES[exercise]
    except KeyError:
        raise ValueError(f"no exercise {exercise!r}; known: {', '.join(EXERCISES)}") from None
    try:
        message = await spec.checker(js, *args, **kwargs)
    except _NotYet as hint:
        result = CheckResult(exercise, False, str(hint))
    except nats.errors.ConnectionClosedError:
        # Nothing to report either: say it in one line, with the way back.
        return CheckResult(exercise, False, CLOSED)
    else:
        _record_pass(exercise)
        result = CheckResult(exercise, True, message)
    return await _report(js, result)


#: What a check says when the notebook's connection was closed (e.g. by a Run All).
CLOSED = (
    "the connection this check uses is closed (a cell ran `await nc.close()`): run the "
    "notebook's connect cell again (`nc = await connect()`, `js = nc.jetstream()`), then this"
)


async def _report(js: JetStreamContext, result: CheckResult) -> CheckResult:
    """In class mode, send the verdict to the instructor; say so if that failed."""
    from edalab.course.classroom import in_class_mode, report_check

    if not in_class_mode():
        return result
    why = await report_check(js, result.exercise, result.passed, result.message)
    if why is None:
        return result
    note = f" (not reported to the instructor: {why})"
    return CheckResult(result.exercise, result.passed, result.message + note)


def _progress_file() -> Path:
    from edalab.state import state_dir

    return state_dir() / "progress.json"


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
