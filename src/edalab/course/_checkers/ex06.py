"""The checker of exercise 06 (notebook 06_acks_and_redelivery).

The task: consumer careful: max_deliver, backoff.
"""

from __future__ import annotations

import itertools
from typing import Any

from nats.js.client import JetStreamContext

from ._core import _all_of, _drained, _require, _settled


async def checker(js: JetStreamContext, log: Any = None) -> str:
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
