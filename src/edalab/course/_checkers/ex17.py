"""The checker of exercise 17 (notebook 17_capstone).

The task: a loyalty service that awards each payment once, even when redelivered.
"""

from __future__ import annotations

import contextlib
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext

from edalab import EdalabError, Event, EventConsumer, JetStream, NotAnEdalabJetStream

from ._common import connection_of
from ._core import _drained, _events, _NotYet, _require, _settled, _stream

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


async def checker(js: JetStreamContext, award: Any = None) -> str:
    """One award per payment stored, and the same award id published on a redelivery.

    The verdict does not depend on SHOP's duplicate window: the ids are compared, and
    whatever the redelivery stored is deleted. Timing: shop-loyalty's acks are given
    2 s to land; the redelivery ends after every payment or 5 s without one.
    """
    handler = award
    _require(handler is not None, "pass your handler: await check('17', js, award=award)")
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
