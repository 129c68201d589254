"""The checker of exercise 03 (notebook 03_publishing).

The task: ORDERS with a 5-minute dedup window, a resend dropped.
"""

from __future__ import annotations

from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from edalab import matches

from ._core import _all_of, _events, _NotYet, _require, _stream


def _ack_fields(ack: Any) -> tuple[str, int, bool]:
    """``(stream, seq, duplicate)`` of a PubAck, or why it is not one."""
    if not isinstance(ack, PubAck):
        raise _NotYet(f"{ack!r} is not a PubAck: pass what js.publish / publish_event returned")
    return ack.stream, ack.seq, bool(ack.duplicate)


async def checker(js: JetStreamContext, acks: Any = None) -> str:
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
