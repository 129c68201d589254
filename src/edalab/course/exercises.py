"""Checkers for the notebooks' exercises: they look at the live server and say what is missing.

In a notebook::

    from edalab.course.exercises import check
    await check("05", js)       # ✔ 05 passed ... or ✘ 05 not yet: <what to fix>

Each checker is a coroutine taking the JetStream context (02, which comes before
JetStream, takes the connection ``nc``), plus what the exercise produced (02 your
subscription patterns, 03 your PubAcks, 08 your
:class:`~edalab.SchemaRegistry`); ``check`` returns a :class:`CheckResult`.
A checker observes behaviour on the live server: what it delivered, stored, dropped.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo, DeliverPolicy, PubAck, RawStreamMsg, StreamInfo
from nats.js.client import JetStreamContext

from edalab._consuming import consumer_filters
from edalab._errors import EdalabError, SubjectError
from edalab._events import Event
from edalab._streams import stream_messages
from edalab._subjects import matches, validate_subject
from edalab._waiting import wait_for
from edalab.course.manifest import LESSONS

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


class _Wants:
    """Conditions checked together; each failing one's hint is kept (see :func:`_all_of`)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, condition: bool, hint: str) -> bool:
        if not condition:
            self.failed.append(hint)
        return condition


@contextlib.contextmanager
def _all_of() -> Iterator[_Wants]:
    """Check independent conditions and report every one that fails, not only the first::

        with _all_of() as want:
            want(cfg.max_deliver == 4, f"max_deliver is {cfg.max_deliver}; set 4")
            want(len(backoff) == 3, f"backoff is {backoff}; give three delays")

    When the block ends, one :class:`_NotYet` names all the failing conditions, numbered.
    A ``_NotYet`` raised inside the block (a condition the rest of it depends on, say
    through :func:`_require`) ends the block and joins the hints collected so far.
    """
    wants = _Wants()
    try:
        yield wants
    except _NotYet as stop:
        wants.failed.append(str(stop))
    _require(not wants.failed, _joined(wants.failed))


def _joined(hints: list[str]) -> str:
    """One line for several failing conditions: ``2 things to fix: (1) ...; (2) ...``."""
    if len(hints) == 1:
        return hints[0]
    numbered = "; ".join(f"({i}) {hint}" for i, hint in enumerate(hints, 1))
    return f"{len(hints)} things to fix: {numbered}"


async def _settled(js: JetStreamContext, stream: str, name: str) -> ConsumerInfo:
    """The consumer's info once its acks have landed (plain acks are asynchronous).

    A timed wait: acks land within milliseconds, so 2 s is ample even on a busy machine;
    only a consumer that is really behind costs the learner the full 2 s.
    """
    latest = [await _consumer(js, stream, name)]

    async def settled() -> bool:
        latest.append(await _consumer(js, stream, name))
        return not (latest[-1].num_pending or latest[-1].num_ack_pending)

    with contextlib.suppress(TimeoutError):  # not settled: _drained() says what is left
        await wait_for(settled, timeout=2.0, what=f"consumer {name} to settle")
    return latest[-1]


def _drained(info: ConsumerInfo) -> None:
    with _all_of() as want:
        want(
            info.num_pending == 0,
            f"consumer {info.name!r} still has {info.num_pending} events to deliver: process "
            "them all",
        )
        want(
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
    with _all_of() as want:
        want(
            any(matches(s, "order.placed") for s in subjects),
            f"stream ORDERS captures {subjects}, which does not include order.placed: "
            "capture order.>",
        )
        want(
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
            raise _NotYet(
                f"ORDERS no longer holds sequence {seq}: run the exercise again"
            ) from None
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


async def _probe_last_value(js: JetStreamContext, stream: str, probe: str) -> None:
    """Publish two values for a key of the checker's own; the stream must keep only the second."""
    try:
        for value in (b"1", b"2"):
            await js.publish(probe, value, stream=stream)
        kept = (await js.stream_info(stream, subjects_filter=probe)).state.subjects or {}
        last = await js.get_last_msg(stream, probe)
    except nats.js.errors.APIError as err:
        raise _NotYet(
            f"{stream} refused an update of a key ({err.description}): a last-value stream must "
            "replace the old value, not refuse the new one (discard old)"
        ) from None
    finally:
        with contextlib.suppress(nats.errors.Error):
            await js.purge_stream(stream, subject=probe)
    _require(
        kept.get(probe) == 1 and last.data == b"2",
        f"after two updates of {probe}, {stream} kept {kept.get(probe, 0)} "
        "messages for it: set max_msgs_per_subject=1",
    )


async def _check_04(js: JetStreamContext) -> str:
    info = await _stream(js, "PRICES")
    subjects = info.config.subjects or []
    # A symbol nobody listed, new at each check: the stream must capture it and keep its last.
    probe = "price.CHECK" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    counts = (await js.stream_info("PRICES", subjects_filter="price.*")).state.subjects or {}
    missing = [x for x in _PRICE_SYMBOLS if f"price.{x}" not in counts]
    extra = {k: v for k, v in sorted(counts.items()) if v > 1}
    published = info.state.last_seq
    with _all_of() as want:
        want(
            any(matches(s, probe) for s in subjects),
            f"stream PRICES captures {subjects}, so a price for a new symbol such as "
            f"{probe} would not be stored: capture price.* (one token, any symbol)",
        )
        want(not missing, f"PRICES has no price for {missing}: publish on price.<symbol>")
        want(
            not extra,
            f"PRICES keeps several prices per symbol {extra}: keep only the latest "
            "(max_msgs_per_subject=1)",
        )
        want(
            published >= 2 * len(_PRICE_SYMBOLS),
            f"only {published} prices were ever published to PRICES: publish at least two per "
            "symbol, so that newer prices replace older ones",
        )
    await _probe_last_value(js, "PRICES", probe)  # only now: each probe adds to last_seq
    return (
        "PRICES keeps one price per symbol, older prices were replaced, and a symbol of the "
        "check's own kept only its update"
    )


async def _check_05(js: JetStreamContext) -> str:
    await _stream(js, "ORDERS")
    info = await _settled(js, "ORDERS", "billing")
    filters = set(consumer_filters(info.config))
    with _all_of() as want:
        want(
            filters == {"order.placed"},
            f"billing filters {sorted(filters) or 'nothing (every subject)'}; use order.placed",
        )
        want(
            info.config.durable_name == "billing",
            "billing is not durable (the server deletes a consumer without a durable name "
            "once it has been inactive, 5 s by default): create it with durable name billing",
        )
    placed = [
        seq async for seq, raw in stream_messages(js, "ORDERS") if raw.subject == "order.placed"
    ]
    _require(bool(placed), "ORDERS holds no order.placed event: publish some first")
    delivered = info.delivered.stream_seq if info.delivered else 0
    deliveries = info.delivered.consumer_seq if info.delivered else 0
    acked_deliveries = info.ack_floor.consumer_seq if info.ack_floor else 0
    seen = f"billing has delivered up to sequence {delivered} and acknowledged up to {_floor(info)}"
    policy = getattr(info.config.deliver_policy, "value", info.config.deliver_policy)
    _require(
        deliveries > 0 or bool(info.num_pending),
        f"ORDERS holds {len(placed)} order.placed events, and billing has none to deliver: "
        f"its deliver policy {policy} starts after them; create billing with the default "
        "deliver policy all",
    )
    _require(
        deliveries > 0,
        f"ORDERS holds {len(placed)} order.placed events and billing has delivered none of "
        "them: run your handler with billing.run(...)",
    )
    with _all_of() as want:
        want(
            info.num_pending == 0 and delivered >= placed[-1],
            f"{seen}; {info.num_pending} order.placed events (up to sequence {placed[-1]}) "
            "were never delivered: process them all",
        )
        want(
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
    """careful's configuration, then the gaps between deliveries that the learner's log saw.

    The verdict on the gaps depends on timing: they are measured in the learner's
    process, so a busy machine stretches or shrinks them. :func:`window` accepts a gap
    from 0.8 x its backoff step - 0.05 s to 1.25 x + 0.25 s (0.11..0.5 s for a 0.2 s
    step), where the gaps of a right answer were within 5 ms of the step on two cores
    running three busy loops besides; a plain nak comes back in milliseconds, run()'s
    default nak after 1 s. A gap outside says so, with the range.
    """
    from edalab.course.charts.redelivery import DeliveryLog, on_time, window

    _require(
        isinstance(log, DeliveryLog),
        "pass the DeliveryLog you gave run() as its observer: await check('06', js, log)",
    )
    assert isinstance(log, DeliveryLog)
    info = await _settled(js, "TASKS", "careful")
    backoff = [float(b) for b in info.config.backoff or []]
    with _all_of() as want:
        want(info.config.max_deliver == 4, f"max_deliver is {info.config.max_deliver}; set 4")
        want(len(backoff) == 3, f"backoff is {backoff}; give three delays")
        want(
            not backoff or min(backoff) >= 0.1,
            f"backoff is {backoff}; make each delay at least 0.1 s",
        )
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
    off: list[str] = []  # every gap off its backoff step, as observed
    for seq in dict.fromkeys(r.seq for r in mine):
        got = [r for r in mine if r.seq == seq]
        for before, after in itertools.pairwise(got):
            gap = after.at - before.at
            step = steps[min(before.delivery, 3)]
            low, high = window(step)
            if not on_time(gap, step):
                off.append(
                    f"sequence {seq}: delivery {after.delivery} came {gap:.2f} s after delivery "
                    f"{before.delivery}, where your backoff says {step:g} s (accepted "
                    f"{low:g}..{high:g} s)"
                )
        full += [r.delivery for r in got] == [1, 2, 3, 4]
    _require(
        not off,
        "; ".join(off[:3])
        + (f"; and {len(off) - 3} more" if len(off) > 3 else "")
        + ". A nak sets its own delay (and plain nak none): raise TransientError without a "
        "delay and run with on_transient='let_expire', so the backoff applies (if you did, "
        "this machine was too busy to time it: run it again)",
    )
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
    policy = getattr(info.config.deliver_policy, "value", info.config.deliver_policy)
    with _all_of() as want:
        want(
            info.config.deliver_policy == DeliverPolicy.BY_START_SEQUENCE,
            f"audit's deliver policy is {policy}; use by_start_sequence",
        )
        want(
            info.config.opt_start_seq == 3,
            f"audit starts at sequence {info.config.opt_start_seq or '(none)'}; use "
            "opt_start_seq=3",
        )
    _drained(info)
    return "audit delivered " + _delivered_once(info, 3, stream.state.last_seq)


#: Exercise 02's fixed probes: subject -> whether the mailer wants it (user.<part>.updated,
#: user.deleted). Each check adds a user.<part>.updated with a part drawn at random.
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
    # A part nobody has named yet, new at each check: only a wildcard design receives it.
    unnamed = f"user.{''.join(secrets.choice(string.ascii_lowercase) for _ in range(8))}.updated"
    probes = {**_PROBES_02, unnamed: True}
    got = await _deliveries(nc, list(patterns), list(probes))
    missing = [s for s, wanted in probes.items() if wanted and not got[s]]
    extra = [s for s, wanted in probes.items() if not wanted and got[s]]
    twice = [s for s in probes if got[s] > 1]
    if missing or extra or twice:
        arrived = ", ".join(f"{s}{' x' + str(got[s]) if got[s] > 1 else ''}" for s in got)
        seen = f"subscribed to {list(patterns)}, the server delivered: {arrived or 'nothing'}"
        hints = []
        if missing:
            made_up = (
                f"; {unnamed} is a part this check made up just now, as a future producer would"
            )
            new_part = made_up if unnamed in missing else ""
            hints.append(
                f"missing {', '.join(missing)} (a '*' token matches any one field, so "
                f"you need not list them{new_part})"
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
        f"of {len(probes)} probe subjects the server delivered exactly the "
        f"{len(wanted) + 1} the mailer wants, once each: {', '.join(wanted)}, and "
        "user.<part>.updated for a part named at random"
    )


async def _check_08(js: JetStreamContext, registry: Any = None) -> str:
    from edalab._versioning import SchemaRegistry, compare_models

    _require(
        isinstance(registry, SchemaRegistry), "pass your SchemaRegistry: check('08', js, registry)"
    )
    assert isinstance(registry, SchemaRegistry)
    versions = registry.versions("user.created")
    _require(versions[-1:] == [4], f"user.created versions are {versions}; add version 4")
    _require(
        3 in versions,
        f"user.created versions are {versions}, without version 3 to compare version 4 "
        "with: run the lesson's registry cells again, then add version 4 to that registry",
    )
    v3, v4 = registry.model("user.created", 3), registry.model("user.created", 4)
    await _stream(js, "USERS")
    count = 0
    with _all_of() as want:
        added = sorted(set(v4.model_fields) - set(v3.model_fields))
        has_country = want(
            "country" in v4.model_fields,
            f"version 4's model adds {added or 'no field'} to version 3's "
            f"({', '.join(v3.model_fields)}): declare the new field, country: str = 'unknown'",
        )
        compat = compare_models(v3, v4)
        want(compat.compatible, f"v4 breaks v3 consumers: {'; '.join(compat.breaking)}")
        async for seq, raw in stream_messages(js, "USERS"):
            try:
                event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
            except EdalabError as err:
                raise _NotYet(f"USERS message {seq} is not an event: {err}") from None
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
            country = (upcast.data or {}).get("country") if has_country else ""
            _require(
                isinstance(country, str),
                f"sequence {seq} (version {event.version}) came out as version 4 with country "
                f"{country!r}: an old event does not know its country, so give it the "
                "exercise's default, country: str = 'unknown'",
            )
            count += 1
    return f"all {count} known-version user.created events replay as version 4"


async def _check_09(js: JetStreamContext) -> str:
    from edalab._publishing import MSG_ID

    info = await _stream(js, "LEDGER")
    storage = str(getattr(info.config.storage, "value", info.config.storage))
    _require(
        storage == "file",
        f"LEDGER uses {storage} storage; expected file storage, which survives a server "
        "crash: create it with storage='file' (fresh_stream's default)",
    )
    ids: dict[str, int] = {}
    by_n: dict[int, set[str]] = {}
    async for seq, raw in stream_messages(js, "LEDGER"):
        try:
            event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
        except EdalabError as err:
            raise _NotYet(f"LEDGER message {seq} is not an event: {err}") from None
        msg_id = (raw.headers or {}).get(MSG_ID)
        _require(
            msg_id == event.id,
            f"LEDGER message {seq} (event {event.id}) carries Nats-Msg-Id {msg_id!r}; expected "
            "its event id, so that a retry of it is dropped (publish_events sets it)",
        )
        ids[event.id] = ids.get(event.id, 0) + 1
        if isinstance(event.data, dict) and isinstance(event.data.get("n"), int):
            by_n.setdefault(event.data["n"], set()).add(event.id)
    twice = sorted(i for i, n in ids.items() if n > 1)
    _require(
        not twice,
        f"LEDGER stores {len(twice)} events more than once (e.g. {twice[0] if twice else ''} "
        f"{ids[twice[0]] if twice else 0} times); expected each once: retry with the same "
        "Nats-Msg-Id, inside the stream's duplicate window",
    )
    renamed = sorted(n for n, names in by_n.items() if len(names) > 1)
    _require(
        not renamed,
        f"ledger entry n={renamed[0] if renamed else ''} is stored under "
        f"{len(by_n[renamed[0]]) if renamed else 0} event ids ({len(renamed)} entries like "
        "it); expected one: resend the same Event objects, not new ones made again",
    )
    missing = sorted(set(range(200)) - set(by_n))
    _require(
        not missing,
        f"LEDGER holds {len(by_n)} of the 200 ledger entries; missing n={missing[:5]}...; "
        "expected all 200: send everything not acknowledged again after the restart",
    )
    _require(len(ids) == 200, f"LEDGER holds {len(ids)} events; expected exactly the 200 entries")
    return "LEDGER holds each of the 200 entries exactly once, each with its Nats-Msg-Id"


async def _check_10(js: JetStreamContext, charge: Any = None) -> str:
    """Each payment charged once, counted in the server's history of each key.

    The handler runs for one payment from two workers at once and again as a redelivery,
    and for a payment another process has already charged. Those runs share this
    process, so a lock here would serialise them: the last step does what only another
    process can. It charges a fresh payment first, as another process would between your
    check and your write, then sends the write your handler made (its subject, headers
    and value, renamed to that payment) to the server. A conditional write (key-value
    ``create``: ``Nats-Expected-Last-Subject-Sequence: 0``) is refused; a plain put is
    stored as a second charge. No step depends on timing.
    """
    import asyncio

    from edalab._idempotency import ProcessedIds

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
    between = f"check10-{stamp}-c"

    async def call(event: Event, what: str) -> None:
        try:
            await charge(event)
        except Exception as err:
            raise _NotYet(
                f"charge raised {type(err).__name__}: {err} on {what}; a charge already "
                "made is not an error: return normally, so the message is acknowledged"
            ) from None

    with _all_of() as want:
        await asyncio.gather(call(raced, "two workers at once"), call(raced, "two workers at once"))
        await call(raced, "a redelivery")
        history = await kv.history(raced.id) if await store.seen(raced.id) else []
        _require(bool(history), f"nothing was recorded under {raced.id!r} in 'charges'")
        want(
            len(history) == 1,
            f"two racing workers and one redelivery charged {raced.id!r} {len(history)} times; "
            "write the charge with kv.create (or ProcessedIds.record), which only one caller "
            "wins",
        )
        await store.record(elsewhere.id, b"900")  # another process charged it before
        await call(elsewhere, "an event another process already charged")
        writes = len(await kv.history(elsewhere.id))
        want(
            writes == 1,
            f"an event another process had charged was charged again ({writes} writes): "
            "check the bucket on the server, not memory in this process",
        )
        yours = await js.get_msg(status.stream_info.config.name or "", history[0].revision)
        await store.record(between, b"800")  # another process, between your check and write
        stored = await _replayed(js, yours, raced.id, between)
        condition = (yours.headers or {}).get("Nats-Expected-Last-Subject-Sequence")
        sent = (
            f"with Nats-Expected-Last-Subject-Sequence: {condition}"
            if condition
            else "with no condition: no Nats-Expected-Last-Subject-Sequence header"
        )
        want(
            not stored,
            "when another process charges between your check and your write, yours is "
            f"charged again: the checker charged {between!r} as another process would, then "
            f"sent the write your handler made ({sent}) under that id, and the server stored "
            f"it as charge number {len(await kv.history(between))}. A lock or a check in this "
            "process cannot see another process in time: make the write itself conditional "
            "with kv.create (or ProcessedIds.record), which the server refuses when the key "
            "exists",
        )
    return "two racing workers, a redelivery and another process: each event charged once"


async def _replayed(js: JetStreamContext, msg: RawStreamMsg, old: str, new: str) -> bool:
    """Send a stored KV write again with ``old`` renamed ``new``; whether the server stored it.

    The stored message carries the headers it was published with: the server strips none
    of the ``Nats-Expected-*`` ones (server/stream.go), so a ``create`` is sent again as one.
    """
    headers = {k: v.replace(old, new) for k, v in (msg.headers or {}).items()}
    try:
        await js.publish((msg.subject or "").replace(old, new), msg.data or b"", headers=headers)
    except nats.js.errors.APIError:
        return False  # refused: the write carried a condition the key no longer met
    return True


async def _check_11(js: JetStreamContext) -> str:
    """No letters left, the fix replayed to payments only and acked by its reader.

    Timing: the reader's plain acks are given 2 s to land (``_settled``).
    """
    from edalab import DeadLetters, JetStream

    if not isinstance(js, JetStream):  # DeadLetters replays through the connection too
        raise _NotYet("connect with edalab.connect() and use nc.jetstream()")
    dead = DeadLetters(js)
    await _stream(js, dead.stream)
    reader = dead.replay_consumer_name("PAYMENTS", "payments")
    left = await dead.letters(stream="PAYMENTS") + await dead.letters(consumer=reader)
    _require(
        not left,
        f"{len(left)} dead letters remain (consumer, reason): "
        f"{[(d.consumer, str(d.category)) for d in left]}; expected none: discard the "
        "undecodable ones, replay the negative amount with data=... (amount_cents 100)",
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
    _require(
        bool(replays),
        f"{dead.stream} holds no replay with amount_cents 100; expected one for payments: "
        "replay the rejected letter with dead.replay(letter, data=<the event, fixed>)",
    )
    target = dead.replay_subject("PAYMENTS", "payments")
    others = [subject for _, subject in replays if subject != target]
    _require(
        not others,
        f"the fixed payment was replayed on {others}; expected only {target} (payments' "
        "replay subject): replay the letter of the payments consumer, not another's",
    )
    info = await _settled(js, dead.stream, reader)
    _require(
        _floor(info) >= max(seq for seq, _ in replays) and not info.num_ack_pending,
        f"payments' replay reader {reader!r} has not handled the replay (pending "
        f"{info.num_pending}, unacknowledged {info.num_ack_pending}, acknowledged up to "
        f"{_floor(info)}); expected it acknowledged: run it with the handler",
    )
    return "no dead letters left; the fixed payment reached payments, and no other consumer"


def _concrete(pattern: str) -> str:
    """A subject that ``pattern`` matches (wildcards filled with ``probe``)."""
    return ".".join("probe" if t in ("*", ">") else t for t in pattern.split("."))


#: Every JetStream request that changes a stream or a consumer, by what it does: the
#: ``JSApi...T`` subjects of nats-server's server/jetstream_api.go (RESET is consumer.go's),
#: plus fetches from and acks for consumers not the user's. ``{s}`` a stream, ``{c}`` a
#: consumer. (``$JS.API.ACCOUNT.``, ``META.`` and ``SERVER.`` requests are served only in
#: the system account, so a user of the learner's account cannot use them anyway.)
_JS_CHANGES = (
    ("create streams", "$JS.API.STREAM.CREATE.{s}"),
    ("update streams", "$JS.API.STREAM.UPDATE.{s}"),
    ("delete streams", "$JS.API.STREAM.DELETE.{s}"),
    ("purge streams", "$JS.API.STREAM.PURGE.{s}"),
    ("delete stream messages", "$JS.API.STREAM.MSG.DELETE.{s}"),
    ("snapshot streams", "$JS.API.STREAM.SNAPSHOT.{s}"),
    ("restore streams", "$JS.API.STREAM.RESTORE.{s}"),
    ("remove stream peers", "$JS.API.STREAM.PEER.REMOVE.{s}"),
    ("evacuate stream peers", "$JS.API.STREAM.PEER.EVACUATE.{s}"),
    ("cancel stream moves", "$JS.API.STREAM.CANCEL_MOVE.{s}"),
    ("make stream leaders step down", "$JS.API.STREAM.LEADER.STEPDOWN.{s}"),
    ("create consumers", "$JS.API.CONSUMER.CREATE.{s}"),
    ("create consumers", "$JS.API.CONSUMER.CREATE.{s}.{c}.probe"),
    ("create consumers", "$JS.API.CONSUMER.DURABLE.CREATE.{s}.{c}"),
    ("delete consumers", "$JS.API.CONSUMER.DELETE.{s}.{c}"),
    ("pause consumers", "$JS.API.CONSUMER.PAUSE.{s}.{c}"),
    ("unpin consumers", "$JS.API.CONSUMER.UNPIN.{s}.{c}"),
    ("reset consumers", "$JS.API.CONSUMER.RESET.{s}.{c}"),
    ("make consumer leaders step down", "$JS.API.CONSUMER.LEADER.STEPDOWN.{s}.{c}"),
    ("fetch from other consumers", "$JS.API.CONSUMER.MSG.NEXT.{s}.{other}"),
    ("ack for other consumers", "$JS.ACK.{s}.{other}.1.1.1.0.0"),
)
#: Sent with every probe. A JetStream API request carrying a level the server does not
#: have is answered with an error before anything is done (errorOnRequiredApiLevel,
#: server/jetstream_versioning.go, nats-server >= 2.12); a publish naming another stream
#: is not stored (Nats-Expected-Stream, server/stream.go). Without a reply subject, the
#: fetch and reset handlers ignore the request (server/consumer.go).
_HARMLESS = {"Nats-Required-Api-Level": "1000000", "Nats-Expected-Stream": "EDALAB-NO-STREAM"}


def _change_probes(nc: NATS, stream: str, consumer: str, token: str) -> dict[str, str]:
    """``{subject: what}`` for every JetStream change, on the real names and made-up ones.

    The real stream and consumer are probed only on servers that honour
    Nats-Required-Api-Level (2.12+); made-up names catch wildcard grants everywhere.
    """
    version = nc.connected_server_version
    names = [(f"EDALAB_PROBE_{token}", f"probe-{token}"), (stream, f"probe-{token}")]
    if (version.major, version.minor) >= (2, 12):
        names.append((stream, consumer))
    out: dict[str, str] = {}
    for s, c in reversed(names):  # the learner's own names first: they read best
        for what, template in _JS_CHANGES:
            if "{other}" in template:
                out.setdefault(template.format(s=s, other=f"probe-{token}"), what)
            else:
                out.setdefault(template.format(s=s, c=c), what)
    return out


async def _allowed(nc: NATS, subjects: list[str], op: str) -> list[str]:
    """Those of ``subjects`` the server did not refuse (it answers a refusal with -ERR)."""
    from edalab._connection import connection_log

    log = connection_log(nc)
    since = len(log.errors) if log else 0
    subs = []
    for subject in subjects:
        if op == "publish":
            await nc.publish(subject, b"", headers=_HARMLESS)
        else:
            subs.append(await nc.subscribe(subject))
    try:  # -ERR comes before the PONG; a second round trip lets error_cb's task run
        for _ in range(2):
            await nc.flush(timeout=5)
    except nats.errors.TimeoutError:
        raise _NotYet("the server did not answer a round trip within 5 s: try again") from None
    for sub in subs:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()
    refused = {s.lower() for o, s in (log.denials(since) if log else []) if o == op}
    return [s for s in subjects if s.lower() not in refused]


async def _check_12(
    js: JetStreamContext,
    *,
    url: str = "",
    user: str = "",
    password: str = "",
    stream: str = "SHOP",
    consumer: str = "audit",
) -> str:
    """Log in as the auditor: it must fetch and ack, and the server must refuse the rest.

    Every probe is judged by the server's answer to it (a permissions violation, or
    not); none can change anything (``_HARMLESS``). Timing: each step waits at most 5 s.
    """
    import secrets

    from edalab._connection import connect, subscribe_checked
    from edalab._errors import AuthenticationError, PermissionDenied
    from edalab._security import inbox_prefix, permission_checked

    _require(bool(url and user), "pass the server and credentials: check('12', js, url=...)")
    info = await _consumer(js, stream, consumer)
    streams = [s.config for s in await js.streams_info()]
    filters = consumer_filters(info.config) or list(
        (await _stream(js, stream)).config.subjects or []
    )
    probe = _concrete(filters[0])
    # Something for the auditor to read: a probe event on a subject its consumer delivers.
    try:
        probe_ack = await js.publish(
            probe, Event.create(probe, {"probe": "exercise 12"}).to_json(), timeout=5
        )
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
                [msg] = await sub.fetch(1, timeout=5)
        except PermissionDenied as denied:
            raise _NotYet(f"{user} could not fetch from {stream}/{consumer}: {denied}") from None
        except nats.errors.TimeoutError:
            raise _NotYet(
                f"{user} fetched nothing from {stream}/{consumer} although a probe was "
                f"published on {probe}: are all its messages waiting for an ack?"
            ) from None
        try:
            async with permission_checked(nc, stream, consumer):
                await msg.ack_sync(timeout=5)
        except PermissionDenied as denied:
            raise _NotYet(
                f"{user} fetched stream message {msg.metadata.sequence.stream} but the server "
                f"refused its ack ({denied}): the message will be redelivered forever; allow "
                f"$JS.ACK.{stream}.{consumer}.>"
            ) from None
        token = secrets.token_hex(4)
        changes = _change_probes(nc, stream, consumer, token)
        allowed: dict[str, str] = {}
        for subject in await _allowed(nc, list(changes), "publish"):
            allowed.setdefault(changes[subject], subject)
        named = [f"{what} ({subject})" for what, subject in allowed.items()]
        if len(named) > 6:
            named[5:] = [f"and {len(named) - 5} more kinds of change"]
        _require(
            not allowed,
            f"{user} may "
            + ", ".join(named)
            + ": the server accepted these requests where a permissions violation was "
            f"expected (the check sent them so that they changed nothing); grant only "
            f"{stream}/{consumer}'s fetch and ack subjects, never $JS.API.> or a class of it",
        )
        subjects = [_concrete(s) for cfg in streams for s in cfg.subjects or []]
        subjects.append(f"edalab.probe.{token}")
        sent = await _allowed(nc, [*subjects, f"_INBOX.{token}"], "publish")
        _require(
            not sent,
            f"{user} may publish to {', '.join(sent)} (not refused by the server; expected "
            "a permissions violation): an auditor publishes nothing but its fetches and acks",
        )
        inboxes = [f"_INBOX.{token}", f"_INBOX_orders.{token}"]
        read = await _allowed(nc, [*inboxes, *subjects], "subscribe")
        _require(
            not read,
            f"{user} may subscribe to {', '.join(read)} (not refused by the server; expected "
            f"a permissions violation): it could read other users' replies or messages; "
            f"allow only {prefix}.>",
        )
    finally:
        await nc.close()
        with contextlib.suppress(nats.errors.Error):  # leave SHOP as the learner had it
            await js.delete_msg(stream, probe_ack.seq)
    return (
        f"{user} fetched and acked on {stream}/{consumer}, and was refused all "
        f"{len(dict(_JS_CHANGES))} kinds of stream and consumer change, publishing, and other "
        "inboxes and subjects"
    )


async def _check_13(js: JetStreamContext) -> str:
    info = await _stream(js, "AUDIT")
    _require(
        info.config.num_replicas == 3,
        f"AUDIT has {info.config.num_replicas} replica(s); expected 3: create it in the "
        "cluster with num_replicas=3",
    )
    cluster = info.cluster
    leader = cluster.leader if cluster else None
    _require(
        bool(leader),
        "AUDIT has no leader right now; expected one: is a majority of its nodes running?",
    )
    replicas = (cluster.replicas if cluster else None) or []
    _require(
        len(replicas) == 2,
        f"AUDIT's leader {leader} reports {len(replicas)} follower(s); expected 2",
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
    _require(
        info.state.messages == 200,
        f"AUDIT holds {info.state.messages} messages; expected 200: 100 before stopping a "
        "follower and 100 while it is down",
    )
    ids = [event.id for event in await _events(js, info)]
    _require(
        len(set(ids)) == 200,
        f"AUDIT's 200 messages hold only {len(set(ids))} distinct event ids; expected 200: "
        "some events were stored twice; publish with Nats-Msg-Id (publish_events does) and "
        "retry with it",
    )
    return "AUDIT is replicated three times, every follower current, with 200 distinct events"


_AWARD = "shop.points.awarded"


def _awards(events: list[Event]) -> dict[str, list[Event]]:
    """``{payment id: its shop.points.awarded events}``."""
    out: dict[str, list[Event]] = {}
    for event in events:
        if event.type == _AWARD and isinstance(event.data, dict):
            out.setdefault(str(event.data.get("payment_id")), []).append(event)
    return out


async def _redeliver_17(
    js: JetStreamContext, handler: Any, payments: list[Event]
) -> tuple[Any, dict[str, list[Event]]]:
    """Deliver every payment to ``handler`` once more; what it published, read on the wire.

    The awards are read from a core subscription, so a copy the stream dropped as a
    duplicate is seen too; whatever the redelivery stored is deleted again afterwards
    (after the duplicate window a copy is stored), so the learner's SHOP is left as it was.
    """
    from edalab import EventConsumer, JetStream, NotAnEdalabJetStream
    from edalab._nats import connection_of

    try:
        nc = connection_of(js)
    except NotAnEdalabJetStream as err:
        raise _NotYet(str(err)) from None
    assert isinstance(js, JetStream)  # connection_of accepted it
    info = await _stream(js, "SHOP")
    wire = [await nc.subscribe(subject) for subject in info.config.subjects or ["shop.>"]]
    await nc.flush()
    with contextlib.suppress(nats.js.errors.NotFoundError):  # left by an interrupted check
        await js.delete_consumer("SHOP", "edalab-check-17")
    again = await EventConsumer.create(
        js, "SHOP", "edalab-check-17", filter_subject="shop.payment.captured"
    )
    try:  # max_events ends the run at once; 5 s of silence (a loaded machine) ends it too
        report = await again.run(handler, timeout=5.0, max_events=len(payments), double_ack=True)
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer("SHOP", "edalab-check-17")
        await nc.flush()  # the server sent our copies before this round trip's PONG
        seen: list[Event] = []
        for sub in wire:
            with contextlib.suppress(nats.errors.TimeoutError):
                while True:
                    msg = await sub.next_msg(timeout=0.05)
                    with contextlib.suppress(EdalabError):
                        seen.append(Event.from_json(msg.data, subject=msg.subject))
            await sub.unsubscribe()
        ours = {e.id for e in seen if e.type == _AWARD}
        after = (await js.stream_info("SHOP")).state.last_seq
        for seq in range(info.state.last_seq + 1, after + 1):
            with contextlib.suppress(nats.errors.Error):
                raw = await js.get_msg("SHOP", seq)
                if Event.from_json(raw.data or b"", subject=raw.subject).id in ours:
                    await js.delete_msg("SHOP", seq)
    return report, _awards(seen)


async def _check_17(js: JetStreamContext, handler: Any = None) -> str:
    """One award per payment stored, and the same award id published on a redelivery.

    The verdict does not depend on SHOP's duplicate window: the ids are compared, and
    whatever the redelivery stored is deleted. Timing: shop-loyalty's acks are given
    2 s to land; the redelivery ends after every payment or 5 s without one.
    """
    _require(handler is not None, "pass your handler: await check('17', js, handler=award)")
    info = await _stream(js, "SHOP")
    events = await _events(js, info)
    payments = [e for e in events if e.type == "shop.payment.captured"]
    _require(bool(payments), "SHOP holds no shop.payment.captured: run the capstone first")
    _drained(await _settled(js, "SHOP", "shop-loyalty"))
    stored = _awards(events)
    for pay in payments:
        given = stored.get(pay.id, [])
        _require(
            bool(given),
            f"payment {pay.id} (order {pay.data.get('order_id')}) has no {_AWARD} "
            "with its payment_id: did shop-loyalty run over the whole stream?",
        )
        want = int(pay.data.get("amount_cents", 0)) // 100
        got = [a.data.get("points") for a in given]
        _require(all(p == want for p in got), f"payment {pay.id} is worth {want} points, not {got}")
        ids = sorted({a.id for a in given})
        _require(
            len(ids) == 1,
            f"payment {pay.id} has {len(given)} awards with different ids {ids}; expected one: "
            "a redelivery made a new award; derive the award's id from the payment's id",
        )
        _require(
            len(given) == 1,
            f"payment {pay.id} has {len(given)} awards, all with id {ids[0]}; expected one: "
            "they were stored further apart than "
            "SHOP's duplicate window, beyond which Nats-Msg-Id drops nothing (lesson 10). "
            "Rebuild the shop, then run shop-loyalty once",
        )
    report, published = await _redeliver_17(js, handler, payments)
    _require(
        report.handled == len(payments) and not report.errors,
        f"the checker delivered {len(payments)} payments to your handler again; it handled "
        f"{report.handled}, with errors {report.errors[:1]}; expected each handled without error",
    )
    for pay in payments:
        award_id = stored[pay.id][0].id
        ids = sorted({a.id for a in published.get(pay.id, [])})
        _require(
            bool(ids),
            f"delivered payment {pay.id} again, your handler published no {_AWARD}; expected "
            f"the award again with its id {award_id}, which Nats-Msg-Id drops as a duplicate "
            "(a handler that skips what it remembers in memory awards again after a restart)",
        )
        _require(
            ids == [award_id],
            f"delivered payment {pay.id} again, your handler published an award with id "
            f"{', '.join(i for i in ids if i != award_id)}; the one stored has id {award_id}; "
            "expected the same id: derive it from the payment's id, so that Nats-Msg-Id drops "
            "the copy (the checker deleted the copies it caused)",
        )
    return (
        f"each of the {len(payments)} payments is awarded once, and delivered again it "
        "published an award with the same id (the checker left SHOP as it was)"
    )


_SHIP_PARTITIONS = 4
#: The check's own shipment keys. Under the server's FNV-1a hash (getHashPartition,
#: server/subject_transform.go) two of them fall in each of 4 partitions, whether the key
#: alone ({{partition(4,1)}}) or the whole subject ({{partition(4)}}) is hashed.
_SHIP_PROBES = tuple(f"edalab-probe-{i:02d}" for i in range(8))
_SHIP_HINT = "map shipment.* to shipment.{{partition(4,1)}}.{{wildcard(1)}}"


async def _stored_as(js: JetStreamContext) -> dict[str, set[str]]:
    """Publish each probe key twice; where SHIPMENTS stored it (the probes are deleted again)."""
    where: dict[str, set[str]] = {}
    seqs: list[int] = []
    try:
        for key in _SHIP_PROBES + _SHIP_PROBES:
            ack = await js.publish(f"shipment.{key}", b"{}", stream="SHIPMENTS", timeout=5)
            seqs.append(ack.seq)
            stored = (await js.get_msg("SHIPMENTS", ack.seq)).subject or ""
            where.setdefault(key, set()).add(stored)
    except nats.errors.NoRespondersError:
        raise _NotYet(
            f"no stream stores shipment.{_SHIP_PROBES[0]}: give SHIPMENTS the subjects shipment.*"
        ) from None
    except nats.js.errors.APIError as err:
        raise _NotYet(f"SHIPMENTS refused a shipment ({err.description})") from None
    finally:
        for seq in seqs:  # the learner's stream keeps only the learner's shipments
            with contextlib.suppress(nats.errors.Error):
                await js.delete_msg("SHIPMENTS", seq)
    return where


def _routed(where: dict[str, str], filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """``{consumer: probe keys it receives}``; fails if a key reaches no consumer or two."""
    got: dict[str, list[str]] = {name: [] for name in filters}
    for key, subject in where.items():
        mine = [n for n, fs in filters.items() if any(matches(f, subject) for f in fs)]
        _require(
            len(mine) == 1,
            f"shipment.{key} was stored as {subject}, which "
            + (f"{len(mine)} consumers {mine} receive" if mine else "no consumer receives")
            + f"; expected exactly one: give each ship-N one partition, {_SHIP_HINT}",
        )
        got[mine[0]].append(key)
    return got


async def _check_14(js: JetStreamContext) -> str:
    """Where the server stores the check's own keys decides, not the transform's text.

    Timing: each consumer's plain acks are given 2 s to land (``_settled``).
    """
    await _stream(js, "SHIPMENTS")
    where = await _stored_as(js)
    moved = {k: sorted(v) for k, v in where.items() if len(v) > 1}
    _require(
        not moved,
        "the same key was stored on different subjects "
        + ", ".join(f"shipment.{k} as {' and '.join(v)}" for k, v in list(moved.items())[:2])
        + f"; expected one partition per key, always the same: {_SHIP_HINT}",
    )
    stored = {key: subjects.pop() for key, subjects in where.items()}
    same = [k for k, subject in stored.items() if subject == f"shipment.{k}"]
    _require(
        not same,
        f"SHIPMENTS stored shipment.{same[0] if same else ''} unchanged; expected "
        f"shipment.<partition>.<key>: {_SHIP_HINT} (the stream's subject_transform)",
    )
    filters: dict[str, list[str]] = {}
    acked = 0
    for p in range(_SHIP_PARTITIONS):
        consumer = await _settled(js, "SHIPMENTS", f"ship-{p}")
        _require(
            consumer.config.max_ack_pending == 1,
            f"ship-{p} has max_ack_pending={consumer.config.max_ack_pending}; expected 1, so "
            "that each partition is processed in order",
        )
        _drained(consumer)
        acked += _floor(consumer)
        filters[f"ship-{p}"] = consumer_filters(consumer.config) or [">"]
    _require(
        acked > 0,
        "none of ship-0..ship-3 has acknowledged a shipment yet: publish a few shipments "
        "and let each consumer process its partition",
    )
    got = _routed(stored, filters)
    idle = [name for name, keys in got.items() if not keys]
    _require(
        not idle,
        f"none of the {len(_SHIP_PROBES)} probe keys reached {', '.join(idle)}; they were "
        f"stored as {', '.join(sorted({s.replace(k, '<key>') for k, s in stored.items()}))}; "
        f"expected 4 partitions, one consumer each: {_SHIP_HINT}",
    )
    return (
        f"{len(_SHIP_PROBES)} probe keys, each published twice, stayed in one partition "
        "each and reached exactly one of the 4 consumers; every consumer got some"
    )


async def _check_18(js: JetStreamContext) -> str:
    """billing is the STAN subscription translated, and delivered each message once.

    Timing: the callback's plain acks are given 2 s to land (``_settled``).
    """
    stream = await _stream(js, "MIGRATION")
    info = await _settled(js, "MIGRATION", "billing")
    cfg = info.config
    policy = getattr(cfg.deliver_policy, "value", cfg.deliver_policy)
    _require(
        cfg.deliver_policy == DeliverPolicy.BY_START_SEQUENCE and cfg.opt_start_seq == 2,
        f"billing has deliver_policy={policy}, opt_start_seq={cfg.opt_start_seq}; expected "
        "by_start_sequence and 2: that is StartAtSequence(2)",
    )
    _require(
        cfg.ack_wait == 10,
        f"billing has ack_wait={cfg.ack_wait} s; expected 10: AckWait(10*time.Second) "
        "(nats-py takes seconds)",
    )
    _require(
        cfg.max_ack_pending == 5,
        f"billing has max_ack_pending={cfg.max_ack_pending}; expected 5: that is MaxInflight(5)",
    )
    acks = str(getattr(cfg.ack_policy, "value", cfg.ack_policy))
    _require(
        acks == "explicit",
        f"billing has ack_policy={acks}; expected explicit: SetManualAckMode acks each message",
    )
    _require(
        info.num_ack_pending == 0,
        f"billing delivered {info.num_ack_pending} message(s) that nobody acknowledged: with "
        "manual_ack=True (SetManualAckMode) your callback must call await msg.ack()",
    )
    _drained(info)
    return "billing delivered " + _delivered_once(info, 2, stream.state.last_seq)


async def _check_16(js: JetStreamContext) -> str:
    from edalab._tracing import CAUSATION_ID, CORRELATION_ID, TraceContext, derived_id

    await _stream(js, "ORDERS")
    placed_id = "order-ex16"
    cause = derived_id(placed_id, "stock.reserved")
    want_id = derived_id(cause, "billing.charged")
    trace_ids, charged = set(), []
    async for seq, raw in stream_messages(js, "ORDERS"):
        try:
            event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
            if event.id == placed_id:
                trace = TraceContext.from_headers(raw.headers)
                trace_ids.add(trace.trace_id if trace else "")
        except EdalabError as err:
            raise _NotYet(f"ORDERS message {seq}: {err}") from None
        if event.type == "billing.charged" and (event.data or {}).get("order_id") == "ex16":
            charged.append((event, raw.headers or {}))
    _require(bool(trace_ids), "no order.placed for ex16 in ORDERS: run the exercise's first cell")
    _require(
        bool(charged),
        "ORDERS holds no billing.charged for order ex16; expected one: call "
        "on_reserved(reserved_id), twice",
    )
    _require(
        len(charged) == 1,
        f"ORDERS holds {len(charged)} billing.charged events for ex16 (ids "
        f"{sorted(e.id for e, _ in charged)}); expected one: a redelivery made a new event; "
        "derive its id from the cause with derived_id(cause_id, 'billing.charged')",
    )
    event, headers = charged[0]
    _require(
        event.id == want_id,
        f"billing.charged has id {event.id!r}; expected {want_id!r}, derived from the cause "
        "with derived_id(cause_id, 'billing.charged'), which any redelivery derives again",
    )
    _require(
        headers.get(CAUSATION_ID) == cause,
        f"Causation-Id is {headers.get(CAUSATION_ID)!r}; expected {cause!r}, the id of the "
        "stock.reserved event that caused the charge (flow_headers(..., causation_id=...))",
    )
    _require(
        headers.get(CORRELATION_ID) == placed_id,
        f"Correlation-Id is {headers.get(CORRELATION_ID)!r}; expected {placed_id!r}, the id "
        "of the flow's first event, order.placed (flow_headers(..., correlation_id=...))",
    )
    try:
        trace = TraceContext.from_headers(headers)
    except EdalabError as err:
        raise _NotYet(str(err)) from None
    _require(
        trace is not None and trace.trace_id in trace_ids,
        f"billing.charged's traceparent is {headers.get('traceparent')!r}; expected one in "
        f"the order's trace, {sorted(trace_ids)[0]!r}: use order_trace.child(...)",
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
    except (nats.errors.Error, EdalabError, TimeoutError) as err:
        result = _unexpected(exercise, err)
    else:
        _record_pass(exercise)
        result = CheckResult(exercise, True, message)
    if not report:  # a re-check (`edalab progress`): not an attempt, nothing to report
        return result
    from edalab.course.hints import note_check

    note_check(exercise, result.passed)  # an attempt after a hint opens the solution
    return await _report(result)


def _unexpected(exercise: str, err: Exception) -> CheckResult:
    """The one-line answer to an error no checker foresaw (a nats-py error, a timeout).

    A learner sees what went wrong and what to try, never a traceback. The test suite
    replaces this function with one that raises, so that a checker tripping on a case
    the tests know is a failing test, not a quiet "not yet".
    """
    said = " ".join(str(err).split()) or "no details"
    return CheckResult(
        exercise,
        False,
        f"the check stopped at an error it did not expect ({type(err).__name__}: {said}): "
        "run the exercise's cells again from the top and check again; if it repeats, "
        "show this line to your instructor",
    )


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

    from edalab._state import state_dir

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

    from edalab._errors import PayloadError

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
