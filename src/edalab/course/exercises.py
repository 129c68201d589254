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
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
from edalab.server import wait_for
from edalab.streams import stream_messages
from edalab.subjects import matches, validate_subject

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


_CHECKERS: dict[str, Checker] = {
    "02": _check_02,
    "03": _check_03,
    "05": _check_05,
    "06": _check_06,
    "07": _check_07,
    "08": _check_08,
    "09": _check_09,
    "12": _check_12,
    "13": _check_13,
    "18": _check_18,
}
#: The exercises, keyed by their lesson's number (the manifest says which lessons have one).
EXERCISES: dict[str, Exercise] = {
    x.number: Exercise(x.number, x.notebook, x.exercise, _CHECKERS[x.number])
    for x in LESSONS
    if x.exercise
}


async def check(
    exercise: str, js: JetStreamContext | NATS, *args: Any, **kwargs: Any
) -> CheckResult:
    """Run one exercise's checker against the live server.

    result = await check("03", js, acks)
    result.passed

    Most checkers take the JetStream context; 02 (core NATS only) takes the connection.
    """
    try:
        spec = EXERCISES[exercise]
    except KeyError:
        raise ValueError(f"no exercise {exercise!r}; known: {', '.join(EXERCISES)}") from None
    try:
        message = await spec.checker(js, *args, **kwargs)
    except _NotYet as hint:
        return CheckResult(exercise, False, str(hint))
    except nats.errors.ConnectionClosedError:
        return CheckResult(exercise, False, _CLOSED)
    _record_pass(exercise)
    return CheckResult(exercise, True, message)


_CLOSED = (
    "the connection is closed (an earlier cell ran nc.close()?): reconnect with "
    "nc = await connect(server) and js = nc.jetstream(), then check again"
)


def _progress_file() -> Path:
    from edalab.server import state_dir

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
