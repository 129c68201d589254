"""The checker of exercise 07 (notebook 07_durable_consumers_and_replay).

The task: durable audit from sequence 3.
"""

from __future__ import annotations

from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from ._core import _all_of, _delivered_once, _drained, _settled, _stream


async def checker(js: JetStreamContext) -> str:
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
