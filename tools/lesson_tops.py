"""Write each lesson's time, needs and "one notebook at a time" under its notebook's title.

The words come from the course manifest (``edalab.course.manifest.lesson_top``, from
``PACE``); this script puts them in the first markdown cell of every source in
``tools/notebooks/``, as the paragraph right after the ``# NN · Title`` line, and touches
nothing else. tests/unit/test_course.py checks that every source and every built notebook agree
with the manifest.

    python tools/lesson_tops.py            # rewrite the sources that differ
    python tools/lesson_tops.py --check    # list the ones that differ, exit 1 if any

Then rebuild the changed notebooks (``make notebooks NB=NN``).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from edalab.course.manifest import LESSONS, lesson_top  # noqa: E402

SOURCES = ROOT / "tools" / "notebooks"
MARK = "**About "  # how the paragraph starts, so a rerun replaces it


def with_top(source: str, number: str) -> str:
    """``source`` (jupytext percent) with the manifest's top paragraph under its title."""
    lines = source.split("\n")
    if not lines[0].startswith("# %% [markdown]") or not lines[1].startswith("# # "):
        raise ValueError("the first cell is not a markdown cell opening with the title")
    rest = lines[2:]
    if len(rest) > 1 and rest[0] == "#" and rest[1].startswith("# " + MARK):
        end = 1
        while end < len(rest) and rest[end] != "#":
            end += 1
        rest = rest[end:]
    paragraph = ["# " + line for line in textwrap.wrap(lesson_top(number), 86)]
    return "\n".join([*lines[:2], "#", *paragraph, *rest])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on drift")
    args = parser.parse_args()
    stale = []
    for x in LESSONS:
        path = SOURCES / f"{x.notebook}.py"
        old = path.read_text()
        new = with_top(old, x.number)
        if new != old:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    verb = "differ from the manifest" if args.check else "rewritten"
    print(f"{len(stale)} source(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
