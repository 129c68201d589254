"""The checker of exercise 18 (notebook 18_from_nats_streaming).

The task: a STAN subscription translated.
"""

from __future__ import annotations

from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from ._core import _delivered_once, _drained, _require, _settled, _stream


async def checker(js: JetStreamContext) -> str:
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
