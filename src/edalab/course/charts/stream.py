"""A stream and its consumers: how far each consumer has delivered and been acknowledged.

Notebook ``05_subscribing`` draws it from the server's live state; one row per consumer,
along the stream's sequence numbers:

- green up to the consumer's **ack floor** (every message up to it is acknowledged);
- orange from there to the last **delivered** sequence (delivered, ack pending);
- grey for the rest of the stream (not delivered yet, or not matching its filter).

The counts the server keeps (``num_ack_pending``, ``num_pending``) are written beside
each row, so the picture and the numbers can be read together.

    >>> from nats.js.api import ConsumerInfo, SequenceInfo, StreamInfo
    >>> stream = StreamInfo.from_response(
    ...     {"config": {"name": "ORDERS"}, "state": {"messages": 5, "first_seq": 1,
    ...      "last_seq": 5, "bytes": 0, "consumer_count": 1}})
    >>> billing = ConsumerInfo.from_response(
    ...     {"name": "billing", "stream_name": "ORDERS", "config": {},
    ...      "created": "2024-01-01T00:00:00Z", "delivered": {"consumer_seq": 3, "stream_seq": 3},
    ...      "ack_floor": {"consumer_seq": 2, "stream_seq": 2},
    ...      "num_ack_pending": 1, "num_pending": 2, "num_redelivered": 0, "num_waiting": 0})
    >>> stream_figure(stream, [billing])
    <Figure size 900x240 with 1 Axes>
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from nats.js.api import ConsumerInfo, StreamInfo
from nats.js.client import JetStreamContext

from edalab.course.charts import plain_numbers

from ..._streams import stream_messages

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["stream_chart", "stream_figure"]

_ACKED, _DELIVERED, _REST = "#4caf50", "#ff9800", "#e0e0e0"


def _counts(info: ConsumerInfo) -> tuple[int, int]:
    """``(ack floor, delivered)`` as stream sequences."""
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    delivered = info.delivered.stream_seq if info.delivered else 0
    return floor or 0, delivered or 0


def stream_figure(
    stream: StreamInfo,
    consumers: Sequence[ConsumerInfo],
    subjects: Mapping[int, str] | None = None,
) -> Figure:
    """Draw ``stream`` and each consumer's ack floor, delivered and pending counts.

    ``subjects`` (sequence -> subject), if given, labels each message in the stream's row
    with its subject's last token, so that a filtered consumer's gaps can be read.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    first = max(stream.state.first_seq or 1, 1)
    last = max(stream.state.last_seq or 0, first)
    rows = len(consumers)
    # pyplot, so that Jupyter's inline backend renders it; closed at once, so that only
    # the cell's value shows it (not also the backend's end-of-cell display)
    fig = plt.figure(figsize=(9, 1.2 + 0.6 * (rows + 1)))
    plt.close(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.16, right=0.62, bottom=0.3 if rows < 3 else 0.2, top=0.95)
    y_stream = rows
    ax.barh(y_stream, last - first + 1, left=first - 0.5, color="#90caf9", edgecolor="white")
    labels = [f"stream {stream.config.name}"]
    notes = [f"{stream.state.messages} messages, seq {first}..{last}"]
    for y, info in zip(range(rows - 1, -1, -1), consumers, strict=True):
        floor, delivered = _counts(info)
        acked_to = max(min(floor, last), first - 1)
        delivered_to = max(min(delivered, last), acked_to)
        ax.barh(y, acked_to - first + 1, left=first - 0.5, color=_ACKED)
        ax.barh(y, delivered_to - acked_to, left=acked_to + 0.5, color=_DELIVERED)
        ax.barh(y, last - delivered_to, left=delivered_to + 0.5, color=_REST)
        labels.append(info.name or "?")
        notes.append(
            f"ack floor {floor}, delivered {delivered}, "
            f"ack pending {info.num_ack_pending}, pending {info.num_pending}"
        )
    for seq, subj in (subjects or {}).items():
        if first <= seq <= last:
            token = subj.rsplit(".", 1)[-1]
            ax.text(seq, y_stream, token, ha="center", va="center", rotation=90, fontsize=7)
    ys = [y_stream, *range(rows - 1, -1, -1)]
    plain_numbers(ax, integer_x=True)
    ax.set_yticks(ys, labels)
    for y, note in zip(ys, notes, strict=True):
        ax.text(1.02, y, note, transform=ax.get_yaxis_transform(), va="center", fontsize=9)
    ax.set_xlim(first - 0.5, last + 0.5)
    ax.set_ylim(-0.6, rows + 0.6)
    ax.set_xlabel("stream sequence")
    ax.legend(
        handles=[
            Patch(color=_ACKED, label="acknowledged (up to the ack floor)"),
            Patch(color=_DELIVERED, label="delivered, ack pending"),
            Patch(color=_REST, label="not delivered (yet, or filtered out)"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, -0.12 if rows < 3 else -0.05),
        fontsize=8,
        frameon=False,
    )
    return fig


async def stream_chart(js: JetStreamContext, stream: str, *consumers: str) -> Figure:
    """Read ``stream`` and the named consumers from the server now, and draw them.

    A stream of at most 40 messages has each message labelled with its subject.
    """
    info = await js.stream_info(stream)
    states = [await js.consumer_info(stream, name) for name in consumers]
    subjects = None
    if info.state.messages <= 40:
        subjects = {seq: raw.subject or "" async for seq, raw in stream_messages(js, stream)}
    return stream_figure(info, states, subjects)
