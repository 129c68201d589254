"""The library and the course import without matplotlib (the workbook's ``[lab]`` extra)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: Run in a fresh interpreter: matplotlib cannot be found, as in `pip install edalab`.
_BLOCKED = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class NoMatplotlib(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] == "matplotlib":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoMatplotlib())
    import edalab
    import edalab.course
    import edalab.course.cli
    import edalab.course.exercises
    import edalab.course.charts.deadletters
    import edalab.course.charts.lag
    import edalab.course.charts.redelivery
    import edalab.course.charts.stream
    import edalab.course.charts.trace
    from edalab.course.charts.redelivery import DeliveryLog, on_time

    log = DeliveryLog()
    log.add(seq=1, delivery=1, at=0.0)
    log.add(seq=1, delivery=2, at=0.5)
    assert on_time(log.gaps()[0], 0.5)
    try:
        edalab.course.charts.lag.lag_chart([(0, 1, 0, 0)])
    except ModuleNotFoundError as err:
        print("drawing:", err.name)
    print("loaded:", sorted(m for m in sys.modules if m.partition(".")[0] == "matplotlib"))
    """
)


def test_edalab_and_the_course_import_without_matplotlib() -> None:
    """Only drawing needs matplotlib; importing, the checkers and DeliveryLog do not."""
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["drawing: matplotlib", "loaded: []"]
