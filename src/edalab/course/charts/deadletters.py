"""The dead-letter flow, drawn from the server's state after a run (notebook ``11_dead_letters``).

:func:`flow_state` reads, for one stream: each consumer's deliveries and acks, the
letters each consumer left (by category), and each replay reader's deliveries and acks;
:func:`draw` turns that into a picture: stream → consumers → dead letters → replay →
the one consumer that gave up::

    state = await flow_state(js, dead, "PAYMENTS")
    draw(state)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nats.js.client import JetStreamContext

from ..._deadletters import DeadLetters

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ConsumerFlow", "FlowState", "draw", "flow_state"]


@dataclass(frozen=True)
class ConsumerFlow:
    """One consumer of the stream: what it was handed and acked, what it gave up on."""

    name: str
    delivered: int
    acked: int
    letters: dict[str, int] = field(default_factory=dict)  # category -> count (held now)
    replays: int = 0  # replays held for this consumer in the dead-letter stream
    replays_unacked: int = 0  # of those, not yet handled by its replay reader


@dataclass(frozen=True)
class FlowState:
    """The stream, its consumers and the dead-letter stream, as read from the server."""

    stream: str
    messages: int
    dead_stream: str
    letters: int
    replays: int
    consumers: list[ConsumerFlow]


async def flow_state(js: JetStreamContext, dead: DeadLetters, stream: str) -> FlowState:
    """Read the flow of ``stream``'s messages into consumers, dead letters and replays."""
    info = await js.stream_info(stream)
    letters = await dead.letters(stream=stream)
    by_consumer: dict[str, Counter[str]] = {}
    for letter in letters:
        by_consumer.setdefault(letter.consumer, Counter())[str(letter.category)] += 1
    readers = {c.name: c for c in await js.consumers_info(dead.stream)}
    dead_info = await js.stream_info(dead.stream, subjects_filter=f"{dead.replay_prefix}.>")
    replayed = dead_info.state.subjects or {}
    consumers = []
    for c in sorted(await js.consumers_info(stream), key=lambda c: c.name):
        reader = readers.get(dead.replay_consumer_name(stream, c.name))
        consumers.append(
            ConsumerFlow(
                name=c.name,
                delivered=c.delivered.stream_seq if c.delivered else 0,
                acked=c.ack_floor.stream_seq if c.ack_floor else 0,
                letters=dict(sorted(by_consumer.get(c.name, Counter()).items())),
                replays=replayed.get(dead.replay_subject(stream, c.name), 0),
                replays_unacked=((reader.num_pending or 0) + (reader.num_ack_pending or 0))
                if reader
                else 0,
            )
        )
    return FlowState(
        stream=stream,
        messages=info.state.messages,
        dead_stream=dead.stream,
        letters=len(letters),
        replays=sum(replayed.values()),
        consumers=consumers,
    )


_W, _H = 0.3, 0.34  # box width and height, in data units


def _box(ax: Axes, x: float, y: float, text: str, color: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x - _W / 2, y - _H / 2), _W, _H, boxstyle="round,pad=0.02", fc=color, ec="0.3"
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str, at: float = 0.5
) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3"})
    x, y = start[0] + at * (end[0] - start[0]), start[1] + at * (end[1] - start[1])
    ax.text(
        x,
        y,
        label,
        ha="center",
        va="center",
        fontsize=8,
        color="0.2",
        bbox={"fc": "white", "ec": "none", "pad": 1},
    )


def draw(state: FlowState) -> Figure:
    """Stream → each consumer (acked) → dead letters (held, by category) → replay reader."""
    import matplotlib.pyplot as plt

    rows = max(1, len(state.consumers))
    fig, ax = plt.subplots(figsize=(10, 1.2 + 1.5 * rows))
    ax.set_xlim(-0.02, 1.62)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.axis("off")
    middle = (rows - 1) / 2
    stream_at, dead_at = (0.15, middle), (1.35, middle)
    _box(ax, *stream_at, f"stream {state.stream}\n{state.messages} messages", "#dbe9f6")
    _box(
        ax,
        *dead_at,
        f"{state.dead_stream}\n{state.letters} letters held\n{state.replays} replays",
        "#f6dada",
    )
    for row, c in enumerate(state.consumers):
        y = rows - 1 - row
        _box(ax, 0.75, y, f"consumer {c.name}\nacked up to seq {c.acked}", "#e3f2df")
        _arrow(ax, (0.3, stream_at[1]), (0.6, y), f"delivered up to {c.delivered}")
        gave_up = ", ".join(f"{n} {k}" for k, n in c.letters.items()) or "no letter held"
        _arrow(ax, (0.9, y), (1.2, dead_at[1]), gave_up, at=0.45)
        if c.replays:
            ax.annotate(
                "",
                xy=(0.8, y - _H / 2),
                xytext=(dead_at[0], dead_at[1] - _H / 2),
                arrowprops={
                    "arrowstyle": "->",
                    "color": "tab:green",
                    "lw": 1.5,
                    "connectionstyle": "arc3,rad=-0.35",
                },
            )
            handled = c.replays - c.replays_unacked
            ax.text(
                1.08,
                y - 0.45,
                f"replayed to {c.name} only: {c.replays}, handled {handled}",
                ha="center",
                fontsize=8,
                color="tab:green",
            )
    ax.set_title(f"Dead-letter flow of {state.stream}: who gave up on what, who got the replay")
    plt.close(fig)
    return fig
