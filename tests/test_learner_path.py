"""A learner's path: each notebook's top, the picture and glossary, sizes, asyncio traps, README."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from edalab.course.manifest import LESSONS, PACE, lesson_top

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tools" / "notebooks"
sys.path.insert(0, str(ROOT / "tools"))
import lesson_tops  # noqa: E402


def _words(text: str) -> str:
    """Markdown with jupytext's comment marks gone and whitespace collapsed."""
    return " ".join(re.sub(r"(?m)^# ?", "", text).split())


def _source_top(notebook: str) -> str:
    """The first markdown cell of a notebook's source (jupytext percent format)."""
    text = (SOURCES / f"{notebook}.py").read_text()
    return text.split("\n# %%", 1)[0]


def _built_top(notebook: str) -> str:
    """The first cell of the committed notebook."""
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    cell = nb["cells"][0]
    assert cell["cell_type"] == "markdown", notebook
    return "".join(cell["source"])


def test_every_lesson_states_its_time_and_needs_only_earlier_lessons() -> None:
    """The manifest gives each lesson a time and prerequisites, all from earlier lessons."""
    assert set(PACE) == {x.number for x in LESSONS}
    for x in LESSONS:
        pace = PACE[x.number]
        assert 5 <= pace.minutes <= 90, (x.number, pace.minutes)
        for number, what in pace.needs:
            assert number < x.number and what, (x.number, number)


def test_each_notebook_top_says_the_manifests_time_needs_and_one_at_a_time() -> None:
    """Source and built notebook open with lesson_top(): time, needs, Restart and Run All."""
    for x in LESSONS:
        want = _words(lesson_top(x.number))
        assert "one notebook at a time" in want.lower()
        assert "Restart Kernel and Run All" in want
        assert want in _words(_source_top(x.notebook)), f"{x.notebook}.py: top != manifest"
        assert want in _words(_built_top(x.notebook)), (
            f"notebooks/{x.notebook}.ipynb: top != manifest (make notebooks NB={x.number})"
        )


def test_lesson_tops_tool_rewrites_only_the_paragraph_under_the_title() -> None:
    """The tool replaces a stale top and keeps the title and everything after it."""
    source = (SOURCES / "04_stream_policies.py").read_text()
    stale = source.replace(lesson_top("04").split(".")[0], "**About 99 minutes")
    assert stale != source
    fixed = lesson_tops.with_top(stale, "04")
    assert fixed == source
    assert lesson_tops.with_top(fixed, "04") == fixed  # idempotent
