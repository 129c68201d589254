"""One business flow drawn from its events' headers: who caused what (notebook 16).

Each event is a box in its service's lane, in stream order; an arrow joins each
event to its cause (``Causation-Id``). The title names the one trace id that every
hop carried in ``traceparent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from edalab.course.charts import plain_numbers

__all__ = ["Hop", "draw_trace"]


@dataclass(frozen=True)
class Hop:
    """One event of a flow: its stream sequence, subject, id, cause and span."""

    seq: int
    subject: str
    event_id: str
    causation_id: str | None
    trace_id: str
    span_id: str


def draw_trace(hops: list[Hop]) -> Figure:
    """A lane per service (the subject's first token), an arrow from each cause."""
    lanes = list(dict.fromkeys(h.subject.split(".")[0] for h in hops))
    where = {h.event_id: (h.seq, lanes.index(h.subject.split(".")[0])) for h in hops}
    import matplotlib.pyplot as plt  # pyplot: the notebook's inline backend shows the figure

    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.7 * len(lanes)))
    for hop in hops:
        x, y = where[hop.event_id]
        ax.annotate(hop.subject, (x, y), ha="center", va="center", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "#e8f0fe", "ec": "#4a6fa5"})  # fmt: skip
        if hop.causation_id in where:
            cx, cy = where[hop.causation_id]
            ax.annotate("", (x, y), (cx, cy), arrowprops={"arrowstyle": "->", "color": "#888"})
    plain_numbers(ax, integer_x=True)
    ax.set_yticks(range(len(lanes)), lanes)  # after plain_numbers: the lanes are names
    ax.set_xlabel("stream sequence")
    seqs = [h.seq for h in hops]
    ax.set_xlim(min(seqs) - 1, max(seqs) + 1)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    traces = {h.trace_id for h in hops}
    ax.set_title(f"one order, one trace id: {', '.join(t[:12] + '...' for t in traces)}")
    fig.tight_layout()
    return fig
