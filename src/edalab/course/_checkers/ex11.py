"""The checker of exercise 11 (notebook 11_dead_letters).

The task: dead letters discarded or fixed and replayed to payments only.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from edalab import DeadLetters, JetStream, stream_messages

from ._core import _floor, _NotYet, _require, _settled, _stream


async def checker(js: JetStreamContext) -> str:
    """No letters left, the fix replayed to payments only and acked by its reader.

    Timing: the reader's plain acks are given 2 s to land (``_settled``).
    """
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
