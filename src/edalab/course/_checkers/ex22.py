"""The checker of exercise 22 (notebook 22_workbook_to_service).

The task: the middleware stack of a FastStream payments service, as a function of the
charges bucket (``middlewares(charges) -> list``). The checker builds a FastStream
broker with it, on the learner's server, and runs a payments handler of its own:

- order ``ok`` is charged, then the consumer is reset and the order delivered again:
  it must be charged once (the idempotency guard);
- order ``busy`` fails with ``TransientError`` on its first delivery: it must be
  redelivered (a nak, not a term) and charged once;
- order ``poison`` fails with ``PermanentError``: it must be terminated at once, and
  the server's advisory must land in the dead letters (not acknowledged and lost, not
  retried until ``max_deliver``);
- order ``garbled`` is no event at all (its body is not JSON): terminated at once too,
  which needs the guard *inside* ``Failures`` (the guard decodes to find the event id);
- the charges are recorded in the bucket passed to ``middlewares`` (not another one);
- each charge's payment event is stored once: after the reset the guard sends the
  recorded payment again, and ``EventPublishing``'s ``Nats-Msg-Id`` lets the stream
  drop it.

FastStream is imported when the check runs (the library works without it).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import nats.js.errors
from nats.js.client import JetStreamContext

from edalab import (
    DeadLetter,
    DeadLetters,
    Event,
    JetStream,
    NotAnEdalabJetStream,
    PermanentError,
    ProcessedIds,
    Reason,
    TransientError,
    publish_event,
    wait_for,
)

from ._common import connection_of
from ._core import _NotYet, _require

STREAM = "CHECK22"
SUBJECT = "check22.order.placed"
PAID = "check22.payment.captured"
DURABLE = "check22-payments"
BUCKET = "check22-charges"
_MAX_DELIVER = 3


def _url(js: JetStreamContext) -> str:
    try:
        nc = connection_of(js)
    except NotAnEdalabJetStream as err:
        raise _NotYet(str(err)) from None
    url = nc.connected_url
    _require(url is not None, "the notebook's connection is not connected: run its first cell")
    assert url is not None
    return f"{url.scheme}://{url.hostname}:{url.port}"


class _Run:
    """One checker run: the orders, the handler's charges, what the server gave up on."""

    def __init__(self) -> None:
        self.charged: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.payments = 0  # payment events the stream holds at the end

    async def pay(self, event: Event) -> Event:
        order = str(event.data["order_id"])
        self.deliveries[order] += 1
        if order == "busy" and self.deliveries[order] == 1:
            raise TransientError("payment provider busy", delay=0.05)
        if order == "poison":
            raise PermanentError("an order of no goods")
        self.charged[order] += 1
        return Event.create(PAID, {"order_id": order}, id=f"check22-paid-{order}")


async def _serve(js: JetStreamContext, url: str, stack: list[Any], run: _Run) -> None:
    """Run a broker with the learner's stack until the consumer has nothing left."""
    from faststream import AckPolicy
    from faststream.nats import JStream, NatsBroker, PullSub
    from nats.js.api import ConsumerConfig

    from edalab.faststream import EventDecoder

    broker = NatsBroker(url, logger=None, middlewares=stack)  # a check prints one line
    broker.subscriber(
        SUBJECT,
        stream=JStream(STREAM, declare=False),
        durable=DURABLE,
        config=ConsumerConfig(max_deliver=_MAX_DELIVER, ack_wait=2),
        pull_sub=PullSub(batch_size=10, timeout=0.2),
        decoder=EventDecoder(),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(broker.publisher(PAID, stream=STREAM)(run.pay))

    async def quiet() -> bool:
        info = await js.consumer_info(STREAM, DURABLE)
        return not info.num_pending and not info.num_ack_pending

    await broker.start()
    try:
        await wait_for(quiet, timeout=15, what="the checker's payments consumer to settle")
    finally:
        await broker.stop()


def _stack(middlewares: Any, charges: ProcessedIds) -> list[Any]:
    """The learner's list, or "not yet" saying what is wrong with it (never a traceback)."""
    from edalab.faststream import EventPublishing, Failures, IdempotencyGuard

    try:
        stack = middlewares(charges)
    except Exception as err:  # the learner's code: its error is the answer, in one line
        said = " ".join(str(err).split())
        raise _NotYet(
            f"middlewares(charges) raised {type(err).__name__}: {said}; expected it to return "
            "the list, e.g. [EventPublishing(), Failures(delay=0.1), IdempotencyGuard(charges)] "
            "(Failures takes delay= and permanent=; max_deliver is the consumer's setting)"
        ) from None
    _require(
        isinstance(stack, list | tuple) and all(callable(m) for m in stack),
        f"middlewares(charges) returned {stack!r}; expected a list of FastStream broker "
        "middlewares, e.g. [EventPublishing(), Failures(delay=0.1), IdempotencyGuard(charges)]",
    )
    uncalled = [m.__name__ for m in stack if m in (EventPublishing, Failures, IdempotencyGuard)]
    _require(
        not uncalled,
        f"the list holds {', '.join(uncalled)} as class{'es' if len(uncalled) > 1 else ''}, "
        f"not instances: write {', '.join(f'{n}()' for n in uncalled)} "
        "(with the parentheses and their arguments, e.g. Failures(delay=0.1))",
    )
    return list(stack)


async def _letters(dead: DeadLetters, *, expect: int) -> list[DeadLetter]:
    """The letters of the checker's stream, once ``expect`` arrived (or 2 s passed)."""

    async def arrived() -> bool:
        return len(await dead.letters(stream=STREAM)) >= expect

    with contextlib.suppress(TimeoutError):
        await wait_for(arrived, timeout=2.0, what="the dead letters")
    return await dead.letters(stream=STREAM)


async def checker(js: JetStreamContext, middlewares: Any = None) -> str:
    """Three orders through a payments service built on ``middlewares(charges)``."""
    _require(
        callable(middlewares),
        "pass your function: await check('22', js, middlewares=middlewares), where "
        "middlewares(charges) returns the list for NatsBroker(middlewares=...)",
    )
    url = _url(js)
    assert isinstance(js, JetStream)  # connection_of accepted it
    charges = await ProcessedIds.open(js, BUCKET, fresh=True)
    stack = _stack(middlewares, charges)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(STREAM)
    await js.add_stream(name=STREAM, subjects=["check22.>"])
    dead = DeadLetters(js)
    await dead.setup()
    for old in await dead.letters(stream=STREAM):  # an earlier check's
        await dead.discard(old)
    for order in ("ok", "busy", "poison"):
        await publish_event(
            js, Event.create(SUBJECT, {"order_id": order}, id=f"check22-{order}"), subject=SUBJECT
        )
    # A body that is no event at all (a producer's bug): only its Nats-Msg-Id names it.
    await js.publish(SUBJECT, b"order garbled", headers={"Nats-Msg-Id": "check22-garbled"})
    run = _Run()
    try:
        await _serve(js, url, stack, run)
        await js.delete_consumer(STREAM, DURABLE)  # redeployed with its consumer reset
        await _serve(js, url, stack, run)
        letters = await _letters(dead, expect=2)
        info = await js.stream_info(STREAM, subjects_filter=PAID)
        run.payments = (info.state.subjects or {}).get(PAID, 0)
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(STREAM)
    unrecorded = [o for o in ("ok", "busy") if await charges.value(f"check22-{o}") is None]
    return _verdict(run, letters, unrecorded)


def _verdict(run: _Run, letters: list[DeadLetter], unrecorded: list[str]) -> str:
    by_order = {_ORDER_AT[letter.stream_seq]: letter for letter in letters}
    poison = by_order.get("poison")
    _require(
        poison is not None,
        f"the poison order (PermanentError) left no dead letter: observed "
        f"{run.deliveries['poison']} deliveries and no advisory; expected it terminated and "
        "captured: a middleware that catches every exception and returns acknowledges it, "
        "and it is lost. Let PermanentError through to Failures (or raise RejectMessage)",
    )
    assert poison is not None
    _require(
        poison.category is not Reason.MAX_DELIVERIES,
        f"the poison order was delivered {poison.deliveries} times before the server gave up "
        f"(max_deliver={_MAX_DELIVER}); expected it terminated at the first delivery: a "
        "PermanentError never succeeds, so retrying only delays it. Use Failures, which "
        "terminates PermanentError with its reason",
    )
    garbled = by_order.get("garbled")
    _require(
        garbled is not None,
        "the garbled order (a body that is no event) left no dead letter: observed no "
        "advisory; expected it terminated and captured: do not catch EventDecodeError "
        "yourself, let it reach Failures",
    )
    assert garbled is not None
    _require(
        garbled.category is not Reason.MAX_DELIVERIES,
        f"the garbled order (a body that is no event) was delivered {garbled.deliveries} times "
        f"before the server gave up; expected it terminated at once like the poison order: "
        "the guard decodes each message to find its event id, and its EventDecodeError "
        "went past Failures to FastStream's ack policy (a nak). List IdempotencyGuard after "
        "Failures (the list is outermost first), so Failures sees what the guard raises",
    )
    busy = by_order.get("busy")
    _require(
        busy is None and run.charged["busy"] >= 1,
        f"the busy order (TransientError) was {'terminated' if busy else 'not charged'} "
        f"after {run.deliveries['busy']} delivery: expected it retried and charged; a "
        "TransientError must become a nak with a delay (NackMessage(delay=...), as Failures "
        "does), not a term (RejectMessage)",
    )
    twice = {order: n for order, n in run.charged.items() if n > 1}
    _require(
        not twice,
        f"delivered again after its consumer was reset, order "
        f"{', '.join(f'{o} was charged {n} times' for o, n in sorted(twice.items()))}; "
        "expected once: add IdempotencyGuard(charges) last in the list, so a redelivered "
        "order finds its charge recorded and skips the handler",
    )
    _require(
        run.charged["ok"] == 1 and run.charged["busy"] == 1,
        f"order ok was charged {run.charged['ok']} times and busy {run.charged['busy']} times; "
        "expected once each: the handler never ran for an order, so something found it "
        "recorded before its first delivery, e.g. a guard on a bucket of your own that "
        "holds an earlier run's records. Use IdempotencyGuard(charges), the bucket passed in",
    )
    _require(
        run.payments == 2,
        f"the stream holds {run.payments} payment events for the 2 orders charged; expected "
        "2: after the reset the guard sends each recorded payment again, and only its "
        "Nats-Msg-Id lets the stream drop the copy. Add EventPublishing() to the list",
    )
    _require(
        not unrecorded,
        f"no charge recorded in the charges bucket ({BUCKET}) for {', '.join(unrecorded)}, "
        "though each was charged once: the guard records somewhere else. Expected "
        "IdempotencyGuard(charges), with the charges passed to middlewares(charges)",
    )
    return (
        "ok and busy charged once each (in charges) and paid once across a redelivery, busy "
        "retried after "
        "its transient failure, poison and garbled terminated at once and captured as dead "
        "letters"
    )


# The checker publishes ok, busy, poison in that order into its fresh stream.
_ORDER_AT = {1: "ok", 2: "busy", 3: "poison", 4: "garbled"}
