"""Pictures the lessons draw from the live state of their own run (matplotlib).

One module per picture (``charts.stream``, ``charts.redelivery``, ...); each takes
figures a cell measured or read from the server and returns a ``Figure``. matplotlib
is the workbook's dependency (``[lab]``), not the library's: each function imports it when
called, so ``import edalab.course`` works without it.

    >>> from edalab.course.charts import plain_numbers
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> plain_numbers(ax) is ax
    True
    >>> plt.close(fig)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plain_numbers"]


def plain_numbers(ax: Axes, *, integer_x: bool = False, integer_y: bool = False) -> Axes:
    """Tick labels in plain numbers on both axes: no offsets, no ``2x10^0`` notation."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for axis, integer in ((ax.xaxis, integer_x), (ax.yaxis, integer_y)):
        if axis.get_scale() == "linear":
            formatter: Any = ScalarFormatter(useOffset=False)
            formatter.set_scientific(False)
            axis.set_major_formatter(formatter)
        else:  # a log axis: label 1, 10, 100 rather than 10^0, 10^1, 10^2
            axis.set_major_formatter("{x:g}")
            axis.set_minor_formatter("")
        if integer:
            axis.set_major_locator(MaxNLocator(integer=True))
    return ax
