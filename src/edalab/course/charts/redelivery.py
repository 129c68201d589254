"""When did each message come back? Record deliveries, compare them with the plan, draw them.

Notebook ``06_acks_and_redelivery`` uses it, and so does exercise 06's checker. A
:class:`DeliveryLog` notes the time of every delivery it is shown: a raw nats-py
message (``log.record(msg)``) or, as an observer of
:meth:`edalab.EventConsumer.run`, every delivery the helper hands to your handler::

    log = DeliveryLog()
    await consumer.run(handle, observer=log.observe, on_transient="let_expire")
    log.table(expected=[0.2, 0.5, 1.0])     # offsets from each message's first delivery
    timeline({"backoff": log.offsets()})  # the picture

Times are the client's (``time.monotonic``): when the delivery reached this process.

    >>> log = DeliveryLog()
    >>> log.add(seq=1, delivery=1, at=10.0)
    >>> log.add(seq=1, delivery=2, at=10.25)
    >>> log.offsets(1)
    [0.0, 0.25]
    >>> on_time(0.25, 0.2)
    True
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.aio.msg import Msg

from edalab.course.charts import plain_numbers

from ..._consuming import Delivery
from .._lesson import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DeliveryLog", "DeliveryRecord", "on_time", "timeline", "window"]


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery: which message, which attempt, when (``time.monotonic()``)."""

    seq: int
    delivery: int
    at: float
    stream: str = ""
    consumer: str = ""
    consumer_seq: int = 0


def window(expected: float) -> tuple[float, float]:
    """The range of observed gaps accepted for an ``expected`` one, in seconds.

    A little early (this process may see the first delivery late), and rather late:
    the server's timer and a busy machine both add delay. Tight enough that a nak
    with a delay of its own does not pass for a backoff step unless it equals it.

    >>> window(1.0)
    (0.75, 1.5)
    """
    return round(expected * 0.8 - 0.05, 6), round(expected * 1.25 + 0.25, 6)


def on_time(observed: float, expected: float) -> bool:
    """Whether an observed gap is the ``expected`` one, within :func:`window`."""
    low, high = window(expected)
    return low <= observed <= high


class DeliveryLog:
    """Deliveries in the order they reached this process, with their times."""

    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []

    def add(
        self,
        *,
        seq: int,
        delivery: int,
        at: float | None = None,
        stream: str = "",
        consumer: str = "",
        consumer_seq: int = 0,
    ) -> None:
        """Note a delivery (``at`` defaults to now)."""
        at = time.monotonic() if at is None else at
        self.records.append(DeliveryRecord(seq, delivery, at, stream, consumer, consumer_seq))

    def record(self, msg: Msg) -> Msg:
        """Note a raw JetStream message's delivery now; returns the message."""
        meta = msg.metadata
        self.add(
            seq=int(meta.sequence.stream),
            delivery=int(meta.num_delivered),
            stream=meta.stream,
            consumer=meta.consumer,
            consumer_seq=int(meta.sequence.consumer),
        )
        return msg

    def observe(self, outcome: str, delivery: Delivery) -> None:
        """An observer for :meth:`edalab.EventConsumer.run`: notes each ``"deliver"``."""
        if outcome == "deliver":
            self.record(delivery.msg)

    def sequences(self) -> list[int]:
        """The stream sequences seen, in order of first delivery."""
        return list(dict.fromkeys(r.seq for r in self.records))

    def _times(self, seq: int | None) -> list[float]:
        if seq is None:
            seqs = self.sequences()
            if not seqs:
                return []
            seq = seqs[0]
        return [r.at for r in self.records if r.seq == seq]

    def offsets(self, seq: int | None = None) -> list[float]:
        """Seconds from message ``seq``'s first delivery (default: the first message's)."""
        times = self._times(seq)
        return [round(t - times[0], 6) for t in times]

    def gaps(self, seq: int | None = None) -> list[float]:
        """Seconds between consecutive deliveries of message ``seq`` (default: the first)."""
        times = self._times(seq)
        return [round(b - a, 6) for a, b in itertools.pairwise(times)]

    def table(self, expected: Sequence[float], seq: int | None = None) -> Table:
        """Each redelivery of ``seq`` (default: the first message) next to its expected gap.

        The observed gap is printed in seconds; ``on time`` says whether it falls in
        :func:`window` of the expected one.
        """
        rows = []
        for i, gap in enumerate(self.gaps(seq)):
            want = expected[min(i, len(expected) - 1)]
            rows.append([i + 2, f"{want:g} s", f"{gap:.2f} s", on_time(gap, want)])
        return Table(["delivery", "expected gap", "observed gap", "on time"], rows)

    def __repr__(self) -> str:
        return f"DeliveryLog({len(self.records)} deliveries of {len(self.sequences())} messages)"


def _clusters(xs: Sequence[float], near: float = 0.05) -> list[tuple[float, list[int]]]:
    """Deliveries too close to label apart, grouped: ``(x, [delivery numbers])``."""
    groups: list[tuple[float, list[int]]] = []
    for n, x in enumerate(xs, start=1):
        if groups and x - groups[-1][0] < near:
            groups[-1][1].append(n)
        else:
            groups.append((x, [n]))
    return groups


def timeline(
    lanes: Mapping[str, Sequence[float]],
    *,
    expected: Mapping[str, Sequence[float]] | None = None,
    title: str = "when each delivery arrived",
) -> Figure:
    """One lane per scenario: a dot for each delivery at its offset from the first.

    ``lanes`` maps a label to observed offsets (seconds); ``expected``, if given, maps
    the same labels to the planned offsets, drawn as hollow rings.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.7 * len(lanes)))
    labels = list(lanes)
    for y, label in enumerate(reversed(labels)):
        xs = list(lanes[label])
        ax.hlines(y, 0, max(xs, default=0), color="lightgray", zorder=1)
        if expected and label in expected:
            ax.scatter(
                list(expected[label]), [y] * len(expected[label]),
                s=140, facecolors="none", edgecolors="gray", zorder=2,
            )  # fmt: skip
        ax.scatter(xs, [y] * len(xs), s=50, zorder=3)
        for x, numbers in _clusters(xs):
            text = str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 9), ha="center")
    plain_numbers(ax)  # before the lane labels, which replace the y axis' formatter
    ax.set_yticks(range(len(labels)), list(reversed(labels)))
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlabel("seconds since the first delivery (rings: planned; numbers: delivery)")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)  # the cell shows the returned figure once; pyplot must not show it again
    return fig
