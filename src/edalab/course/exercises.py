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
from functools import partial
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
from edalab.server import wait_for
from edalab.streams import stream_messages
from edalab.subjects import matches

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
    "10": _check_10,
    "11": _check_11,
    "12": _check_12,
    "13": _check_13,
    "17": _check_17,
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
        return CheckResult(exercise, False, str(hint))
    _record_pass(exercise)
    return CheckResult(exercise, True, message)


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
