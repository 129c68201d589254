"""Hints for the exercises, in three tiers, and the worked solution after a real attempt.

In a notebook::

    from edalab.course import check, hint
    hint("10")                   # a nudge; call again for the API to use, then the shape
    hint("10", solution=True)    # the worked solution, once you have tried

Each call shows the hints revealed so far and the next one (a nudge, then the API to
use, then the shape of the answer). Hints are recorded like checks: on this machine
(``hints.json`` in the state directory, one file per ``NATS_USER``), and in class mode
reported to the instructor's page (``class.report.<exercise>.hint``), so an instructor
sees who needed how much help. The worked solution opens once the learner has tried
after a hint: a check of that exercise that said "not yet" after the first hint, or a
pass. Running every cell of a fresh copy (whose checks fail on the empty answer cells)
opens nothing.

    >>> from edalab.course.manifest import LESSONS
    >>> sorted(HINTS) == sorted(x.number for x in LESSONS)
    True
    >>> [len(tiers) for tiers in HINTS.values()] == [3] * len(HINTS)
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edalab.course.manifest import lesson

__all__ = ["HINTS", "Hint", "hint", "hints_taken", "note_check"]

#: Three tiers per exercise: a nudge, the API to use, the shape of the answer.
HINTS: dict[str, tuple[str, str, str]] = {
    "00": (
        "Core NATS delivers a message only to subscriptions that exist when it is "
        "published: inside greet, subscribe first, then publish, then wait for it.",
        "`async def greet(nc, name)`: `sub = await nc.subscribe(f'hello.{name}')`, "
        "`await nc.publish(f'hello.{name}', data)`, `msg = await sub.next_msg(timeout=2)`; "
        "return the message (or its data).",
        "async def greet(nc, name):\n"
        "    mine = await nc.subscribe(f'hello.{name}')\n"
        "    await nc.publish(f'hello.{name}', b'hi ' + name.encode())\n"
        "    msg = await mine.next_msg(timeout=2)\n"
        "    await mine.unsubscribe()\n"
        "    return msg",
    ),
    "01": (
        "An event carries its data as a model; encoding for the Go struct puts the data "
        "in a string, and decoding gives you back an `Event` whose payload you type again.",
        "a pydantic `BaseModel`, `Event.create(type, model)`, "
        "`to_json(data_as_string=True)`, `Event.from_json(raw)`, `event.payload(Model)`; "
        "a wrong field type raises `PayloadError` (its `reason` says which field).",
        "class OrderPlaced(BaseModel): order_id: str; amount_cents: int\n"
        "back = Event.from_json(Event.create('order.placed', OrderPlaced(...))"
        ".to_json(data_as_string=True))\n"
        "back.payload(OrderPlaced); then try amount_cents='ten' inside try/except PayloadError",
    ),
    "02": (
        "Count the tokens: `*` matches exactly one token, `>` one or more at the end. "
        "The updates have exactly three tokens; the deletion has two. No subject may "
        "match two of your patterns, or the mailer gets it twice.",
        "a list of pattern strings, `patterns = [...]`, each subscribed with "
        "`await nc.subscribe(p)`; `edalab.matches(pattern, subject)` tells "
        "you offline whether a subject matches.",
        "patterns = ['user.<one token>.updated', '<the deletion subject>']\n"
        "then: await check('02', nc, patterns)",
    ),
    "03": (
        "The server drops a second publish with the same `Nats-Msg-Id` inside the "
        "stream's duplicate window, and says so in the `PubAck` (`duplicate=True`).",
        "`fresh_stream(js, 'ORDERS', ['order.>'], duplicate_window=300)`, then "
        "`publish_events` (or `publish_event`, which sets `Nats-Msg-Id` to the event id); "
        "keep every `PubAck` in one list.",
        "orders = [make('order.placed', ...) for 3 different ids]\n"
        "recreate ORDERS with duplicate_window=300\n"
        "acks = await publish_events(js, orders); acks.append(<publish orders[0] again>)",
    ),
    "04": (
        "A stream can keep a limited number of messages *per subject*: with one per "
        "subject, each symbol's subject holds its latest price only.",
        "`fresh_stream(js, 'PRICES', ['price.*'], max_msgs_per_subject=...)`, then "
        "`js.publish(f'price.{symbol}', ...)` at least twice per symbol.",
        "await fresh_stream(js, 'PRICES', ['price.*'], max_msgs_per_subject=<n>)\n"
        "for symbol in ('AAPL', 'MSFT', 'NVDA'): publish two prices on price.<symbol>",
    ),
    "05": (
        "A durable consumer with a filter reads only the matching subjects of the "
        "stream; `run` calls your handler for each event and acknowledges it when the "
        "handler returns without raising.",
        "`EventConsumer.create(js, 'ORDERS', 'billing', filter_subject=...)`, an "
        "`async def` handler taking `event`, then `await billing.run(handler, timeout=0.5)`.",
        "billing = await EventConsumer.create(js, 'ORDERS', 'billing', filter_subject=<?>)\n"
        "async def bill(event): ...  # return normally: run() acks\n"
        "await billing.run(bill, timeout=0.5)",
    ),
    "06": (
        "Redeliveries follow `backoff` only when the message is left unanswered (no "
        "nak): the handler fails the first three deliveries, and `run` must let them "
        "expire instead of nak-ing them.",
        "`EventConsumer.create(..., max_deliver=4, backoff=[...three delays...])`; a "
        "handler `(event, delivery)` raising `TransientError` while "
        "`delivery.num_delivered < 4`; `log = DeliveryLog()` and "
        "`run(..., on_transient='let_expire', observer=log.observe)`.",
        "careful = await EventConsumer.create(js, 'TASKS', 'careful', max_deliver=4, "
        "backoff=[d1, d2, d3])\n"
        "async def flaky(event, delivery): raise TransientError(...) on deliveries 1-3\n"
        "log = DeliveryLog()\n"
        "await careful.run(flaky, timeout=2, on_transient='let_expire', observer=log.observe)",
    ),
    "07": (
        "Where a consumer starts is its deliver policy, fixed when it is created; "
        "'from sequence 3' is one of the policies, with the sequence as an option.",
        "`EventConsumer.create(js, 'USERS', 'audit', deliver_policy="
        "DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=3)`, then iterate "
        "`audit.events(timeout=0.5)` and `await delivery.ack(sync=True)` each.",
        "audit = await EventConsumer.create(js, 'USERS', 'audit', deliver_policy=<?>, "
        "opt_start_seq=<?>)\n"
        "async for delivery in audit.events(timeout=0.5): await delivery.ack(sync=True)",
    ),
    "08": (
        "A new version adds a field with a default; old events reach it through an "
        "upcaster from the version before, so handlers only ever see the newest shape.",
        "subclass `UserCreatedV3`, `registry.register('user.created', 4, Model)`, "
        "`@registry.upcaster('user.created', 3)` on a function returning the new data, "
        "`compare_models(UserCreatedV3, UserCreatedV4).compatible`.",
        "class UserCreatedV4(UserCreatedV3): country: str = 'unknown'\n"
        "registry.register('user.created', 4, UserCreatedV4)\n"
        "@registry.upcaster('user.created', 3)\n"
        "def add_country(data): return {**data, 'country': ...}",
    ),
    "09": (
        "After the crash you cannot know which publishes landed: send all 200 again "
        "with the same message ids and let the server's deduplication drop the ones "
        "it already has.",
        "`fresh_stream(js, 'LEDGER', ['ledger.>'])`, `publish_events(js, entries[:100])`, "
        "`srv.kill()`, `await asyncio.to_thread(srv.start)`, then "
        "`publish_events(js, entries, retry_for=30)`.",
        "create LEDGER; publish the first 100 entries\n"
        "srv.kill(); await asyncio.to_thread(srv.start)\n"
        "acks = await publish_events(js, entries, retry_for=30)  # all 200, same events",
    ),
    "10": (
        "Checking first and writing afterwards leaves a window for two workers: make the "
        "charge and its mark one conditional write that only the first worker can make.",
        "`ProcessedIds.open(js, 'charges', history=5)` opens the bucket; its "
        "`record(key, value)` writes only if the key is new, and returns quietly when "
        "it is not.",
        "charges = await ProcessedIds.open(js, 'charges', history=5)\n"
        "async def charge(event):\n"
        "    await charges.record(<the event's id>, <amount in cents as text, encoded>)",
    ),
    "11": (
        "Each dead letter has a category: letters that are not events cannot be fixed "
        "and are discarded; the negative amount is corrected and replayed to its own "
        "consumer only, never to the original subject.",
        "`await dead.letters(stream='PAYMENTS')`, `letter.category is Reason.UNDECODABLE`, "
        "`dead.discard(letter)`, `dead.original(letter)`, "
        "`dead.replay(letter, data=...)`, then `await replays.run(book, timeout=0.5)`.",
        "for letter in await dead.letters(stream='PAYMENTS'):\n"
        "    if <undecodable>: await dead.discard(letter)\n"
        "    else: original = Event.from_json(...); await dead.replay(letter, data=<fixed json>)\n"
        "await replays.run(book, timeout=0.5)",
    ),
    "12": (
        "Least privilege for a pull consumer: it publishes no events; it may only ask "
        "its own consumer for the next messages, ack them and read its own inbox. The "
        "admin makes the stream and the consumer.",
        "`jetstream_user(User('auditor', password=..., publish=[]), consume=[('SHOP', "
        "'audit')])`, `lesson_server('12', config=authorization_config([...all users...]))`, "
        "then as admin `ensure_stream` and `ensure_consumer(..., filter_subject='order.>')`.",
        "close the old connections\n"
        "auditor = jetstream_user(User('auditor', password=..., publish=[]), consume=[...])\n"
        "srv = lesson_server('12', config=authorization_config([orders, billing, admin, "
        "auditor]))\n"
        "reconnect as admin; ensure SHOP and the durable 'audit' on order.>",
    ),
    "13": (
        "A follower is any replica that is not the stream's leader: losing it keeps the "
        "majority, so publishing goes on and the leader stays. After its restart, wait "
        "until it has caught up before checking.",
        "`ensure_stream(..., num_replicas=3)`, `stream_leader(js, 'AUDIT')`, "
        "`cluster.running_nodes()`, `cluster.kill(node)`, "
        "`asyncio.to_thread(cluster.start_node, node)`, `wait_until_current(js, 'AUDIT')`.",
        "ensure AUDIT (R3); publish 100; leader = await stream_leader(js, 'AUDIT')\n"
        "follower = <a running node that is not the leader>; cluster.kill(follower)\n"
        "publish 100 more (retry_for=30); restart the follower; await wait_until_current(...)",
    ),
    "14": (
        "The stream itself can rewrite each subject to add a partition number computed "
        "from the key; then one consumer per partition, one message in flight each.",
        "`SubjectTransform(src='shipment.*', dest='shipment.{{partition(4,1)}}."
        "{{wildcard(1)}}')` as the stream's `subject_transform`; consumers filtering "
        "`shipment.<p>.*` with `ConsumerConfig(max_ack_pending=1)`.",
        "await fresh_stream(js, 'SHIPMENTS', ['shipment.*'], subject_transform=<transform>)\n"
        "publish shipment.<key> for several keys\n"
        "for p in range(4): sub = pull_subscribe('shipment.<p>.*', durable=f'ship-{p}', ...)\n"
        "    fetch and ack until num_pending is 0",
    ),
    "15": (
        "Measure, do not guess: the same events, the same stream, only the window "
        "changes; then compare each rate with the rate at window 4096.",
        "`fresh_stream(..., storage=StorageType.FILE or MEMORY)` before each run, "
        "`publish_events(js, events, window=w)`, `time.perf_counter()` around it, "
        "and the notebook's `rate(n, started)`.",
        "for storage in (FILE, MEMORY):\n"
        "    for window in (8, 32, 128, 512, 4096): recreate PERF; time publish_events\n"
        "    print(storage, min(w for w, r in rates.items() if r >= 0.9 * rates[4096]))",
    ),
    "16": (
        "A redelivered cause must publish the *same* event: derive the id from the "
        "cause, so the second publish is a duplicate the stream drops.",
        "`derived_id(cause_id, 'billing.charged')` for the id; `flow_headers("
        "order_trace.child('billing'), correlation_id=placed.id, causation_id=cause_id)`; "
        "`publish_event(js, event, headers=headers)`.",
        "async def on_reserved(cause_id):\n"
        "    event = Event.create('billing.charged', {'order_id': 'ex16'}, id=<derived>)\n"
        "    await publish_event(js, event, headers=<flow headers>)\n"
        "await on_reserved(reserved_id); await on_reserved(reserved_id)",
    ),
    "17": (
        "Loyalty is one more consumer: for each payment it publishes one award whose id "
        "comes from the payment's id, so a redelivery repeats the same award.",
        "`event.payload(PaymentCaptured)`, `PointsAwarded(user_id=..., payment_id=event.id, "
        "points=amount_cents // 100)`, `publish_event(js, Event.create(..., id=...))`; "
        "`EventConsumer.create(js, 'SHOP', 'shop-loyalty', filter_subject=...)` and `run`.",
        "async def award(event):\n"
        "    pay = event.payload(PaymentCaptured)\n"
        "    await publish_event(js, Event.create('shop.points.awarded', PointsAwarded(...), "
        "id=f'points-for-{event.id}'))\n"
        "loyalty = await EventConsumer.create(...); await loyalty.run(award, timeout=0.5)",
    ),
    "18": (
        "Each STAN option has a JetStream counterpart: the durable name stays, the start "
        "sequence becomes a deliver policy, manual acks stay manual, AckWait and "
        "MaxInflight become `ack_wait` and `max_ack_pending`.",
        "`js.subscribe('events', cb=..., durable='billing', stream='MIGRATION', "
        "manual_ack=True, config=ConsumerConfig(deliver_policy=..., opt_start_seq=..., "
        "ack_wait=..., max_ack_pending=...))`; the callback awaits `msg.ack()`.",
        "async def handle(msg): await msg.ack(); <hand the sequence to the cell>\n"
        "billing = await js.subscribe('events', cb=handle, durable='billing', "
        "stream='MIGRATION', manual_ack=True, config=ConsumerConfig(...))\n"
        "await what the callback hands over, with a timeout",
    ),
    "19": (
        "A plain consumer shares its messages among every worker that pulls. To keep one "
        "active, the consumer needs a priority group with the `pinned_client` policy, "
        "every pull must name that group, and `priority_timeout` (how long the server "
        "waits for the pinned worker's next pull) must be short for a quick takeover.",
        "`config = {'group': 'workers', 'priority_timeout': 1.0}`; in `worker`, make one "
        "`PriorityPuller(js, stream, consumer, 'workers')` and loop: `fetch(batch=..., "
        "timeout=...)` with a timeout well below `priority_timeout`, `await handle(msg)` "
        "then `await msg.ack()` for each message.",
        "config = {'group': 'workers', 'priority_timeout': 1.0}\n"
        "async def worker(js, stream, consumer, handle):\n"
        "    puller = PriorityPuller(js, stream, consumer, 'workers')\n"
        "    while True:\n"
        "        for msg in await puller.fetch(batch=5, timeout=0.25):\n"
        "            await handle(msg)\n"
        "            await msg.ack()",
    ),
    "20": (
        "A mirror copies one stream; a stream with `sources` gathers several, and each source "
        "can rename subjects on the way. Give REPORTS no subjects of its own: then nothing "
        "can publish into it.",
        "`StreamConfig(name='REPORTS', sources=[StreamSource(name='SALES_EU', "
        "subject_transforms=[SubjectTransform(src=..., dest=...)]), ...])`; a `>` in `src` "
        "takes every deeper subject, and the same `>` in `dest` puts it back.",
        "reports = await js.add_stream(StreamConfig(name='REPORTS', sources=[\n"
        "    StreamSource(name='SALES_EU', subject_transforms=[\n"
        "        SubjectTransform(src='eu.sale.>', dest='report.eu.sale.>')]),\n"
        "    <the same for SALES_US>]))",
    ),
    "21": (
        "Three outcomes: a known person with the right password gets a Grant for their "
        "team; anyone else gets None (refused at once). Never raise: an unanswered login "
        "waits for the server's auth timeout.",
        "`person = people.get(request.user)` is None for an unknown name; "
        "`people.verify(request.user, request.password)` checks the password; "
        "`Grant(account=..., publish=[...], subscribe=[...])` lists what the user may do "
        "(a Grant without publish= allows every subject of the account).",
        "def decide(request, people):\n"
        "    person = people.get(request.user)\n"
        "    if person is None or not people.verify(request.user, request.password):\n"
        "        return None\n"
        "    own = f'team.{person.team}.>'\n"
        "    return Grant(account=f'TEAM_{person.team.upper()}', publish=[own], "
        "subscribe=[own, '_INBOX.>'])",
    ),
    "22": (
        "Three guarantees, three pieces: a redelivered order must find its charge already "
        "recorded, a transient failure must come back (a nak with a delay), a permanent one "
        "must be terminated so the server's advisory makes it a dead letter, and so must a "
        "body that is no event (the guard decodes it too: keep the guard inside Failures). "
        "Catch nothing yourself: let each error reach the piece that maps it.",
        "`from edalab.faststream import EventPublishing, Failures, IdempotencyGuard`; "
        "`Failures(delay=...)` turns TransientError into NackMessage(delay=...) and "
        "PermanentError into a +TERM with its reason; `IdempotencyGuard(charges)` records "
        "the handler's result with `charges.record`. The list is outermost first.",
        "def middlewares(charges):\n"
        "    return [EventPublishing(), Failures(delay=0.1), IdempotencyGuard(charges)]",
    ),
}

TIER_NAMES = ("a nudge", "the API to use", "the shape of the answer")


@dataclass(frozen=True)
class Hint:
    """What ``hint()`` shows: the tiers revealed so far, or the worked solution."""

    exercise: str
    tier: int
    text: str

    def __repr__(self) -> str:
        return self.text

    def __await__(self) -> Any:  # `await hint("10")`, as one writes `await check(...)`
        return _itself(self).__await__()


async def _itself(value: Hint) -> Hint:
    return value


def _journal_file() -> Path:
    """This machine's record of hints and attempts, one per user (like ``progress.json``)."""
    from .._state import state_dir

    user = "".join(c for c in os.environ.get("NATS_USER", "") if c.isalnum() or c in "-_")
    return state_dir() / (f"hints-{user}.json" if user else "hints.json")


def hints_taken() -> dict[str, dict[str, Any]]:
    """Per exercise: ``tier`` (hints shown), ``tried`` (checks after the first hint),
    ``solution`` (when it was shown, or absent)."""
    try:
        data = json.loads(_journal_file().read_text())
    except (OSError, ValueError):
        return {}
    return (
        {str(k): v for k, v in data.items() if isinstance(v, dict)}
        if isinstance(data, dict)
        else {}
    )


def _save(journal: dict[str, dict[str, Any]]) -> None:
    with contextlib.suppress(OSError):  # a read-only home must not fail the hint itself
        _journal_file().parent.mkdir(parents=True, exist_ok=True)
        _journal_file().write_text(json.dumps(journal, indent=2, sort_keys=True) + "\n")


def note_check(exercise: str, passed: bool) -> None:
    """Record that a check ran (``check()`` calls this): an attempt after a hint counts."""
    journal = hints_taken()
    entry = journal.get(exercise)
    if entry is None or not entry.get("tier"):
        return  # before any hint: Run All on a fresh copy is not an attempt
    entry["tried"] = int(entry.get("tried", 0)) + 1
    _save(journal)


def hint(exercise: str, *, solution: bool = False) -> Hint:
    """The next hint of ``exercise`` (up to three), or its worked solution after an attempt.

    Recorded on this machine and, in class mode, reported to the instructor.
    """
    key = str(exercise).zfill(2)
    if key not in HINTS:
        raise ValueError(f"no exercise {exercise!r}; known: {', '.join(HINTS)}")
    journal = hints_taken()
    entry = journal.setdefault(key, {"tier": 0, "tried": 0})
    if solution:
        return _solution(key, journal, entry)
    entry["tier"] = min(3, int(entry.get("tier", 0)) + 1)
    _save(journal)
    tier = int(entry["tier"])
    note = _report(key, tier, solution=False)
    return Hint(key, tier, _tiers_text(key, tier) + note)


def _tiers_text(key: str, tier: int) -> str:
    lines = [f"Exercise {key} ({lesson(key).notebook}), hint {tier} of 3:"]
    for i in range(tier):
        text = HINTS[key][i] if i == 2 else textwrap.fill(HINTS[key][i], 85)  # 3 is code
        lines.append(f"\n{i + 1}. {TIER_NAMES[i]}:\n" + _indent(text))
    if tier < 3:
        lines.append(f"\nNot enough? hint({key!r}) again shows {TIER_NAMES[tier]}.")
    else:
        last = (
            "That was the last hint. Write your answer and run the check; if it still "
            f"says not yet, hint({key!r}, solution=True) shows the worked solution."
        )
        lines.append("\n" + textwrap.fill(last, 88))
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _solution(key: str, journal: dict[str, dict[str, Any]], entry: dict[str, Any]) -> Hint:
    from edalab.course.exercises import recorded_passes

    tier = int(entry.get("tier", 0))
    if not entry.get("tried") and key not in recorded_passes():
        first = "" if tier else f"ask for a hint first (hint({key!r})), then "
        why = (
            f"Exercise {key}: the worked solution opens after a real attempt: {first}"
            f"write your answer and run the check cell. If it says not yet, "
            f"hint({key!r}, solution=True) shows the solution."
        )
        return Hint(key, tier, textwrap.fill(why, 88))
    entry.setdefault("solution", datetime.now(UTC).isoformat(timespec="seconds"))
    _save(journal)
    note = _report(key, tier, solution=True)
    return Hint(key, tier, f"Exercise {key}, the worked solution:\n\n{solution_code(key)}{note}")


def solution_code(exercise: str) -> str:
    """The worked solution: the notebook's cells tagged ``solution`` (one source of truth)."""
    name = lesson(exercise).notebook
    path = Path(__file__).resolve().parents[3] / "notebooks" / f"{name}.ipynb"
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"(not found here: it is in the instructor's copy of notebooks/{name}.ipynb)"
    cells = [
        "".join(c.get("source", ""))
        for c in notebook.get("cells", [])
        if "solution" in c.get("metadata", {}).get("tags", [])
    ]
    return "\n\n".join(cells) or f"(notebooks/{name}.ipynb has no solution cell)"


def _report(key: str, tier: int, *, solution: bool) -> str:
    """In class mode, tell the instructor; a note when that failed (the hint stands)."""
    from edalab.course.classroom import in_class_mode, report_hint
    from edalab.course.exercises import EXERCISES

    if not in_class_mode() or key not in EXERCISES:
        return ""
    # Its own event loop in a thread: a notebook's loop is running, a script has none.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        work = pool.submit(asyncio.run, report_hint(key, tier, solution=solution))
        why = work.result(timeout=30)  # report_hint bounds its own connect and publish
    return "" if why is None else f"\n(not reported to the instructor: {why})"
