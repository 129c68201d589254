"""A consumer's lag over time: pending, in flight and redelivered (notebook 14).

>>> from edalab.course.charts.lag import lag_chart
>>> fig = lag_chart([(0, 3, 1, 0), (1, 5, 2, 1), (2, 2, 0, 0)], joined_at=1)
>>> [line.get_label() for line in fig.axes[0].get_lines()][:3]
['num_pending (lag)', 'num_ack_pending (in flight)', 'num_redelivered']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from edalab.course.charts import plain_numbers

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["lag_chart"]


def lag_chart(
    samples: Sequence[tuple[int, int, int, int]], *, joined_at: int | None = None
) -> Figure:
    """Draw ``(step, num_pending, num_ack_pending, num_redelivered)`` samples as lines.

    The figure is closed in pyplot: a notebook cell that ends with it shows it once, and
    nothing is left open.

    ``joined_at`` marks the step at which a second worker joined, with a dashed line.
    """
    import matplotlib.pyplot as plt

    steps = [s[0] for s in samples]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = ("num_pending (lag)", "num_ack_pending (in flight)", "num_redelivered")
    for i, label in enumerate(labels, start=1):
        ax.plot(steps, [s[i] for s in samples], label=label, drawstyle="steps-post")
    if joined_at is not None:
        ax.axvline(joined_at, color="grey", linestyle="--", label="second worker joins")
    ax.set_xlabel("step")
    ax.set_ylabel("messages")
    ax.legend(loc="upper right", fontsize="small")
    plain_numbers(ax, integer_x=True, integer_y=True)
    fig.tight_layout()
    plt.close(fig)  # shown once, by the cell that returns it
    return fig
