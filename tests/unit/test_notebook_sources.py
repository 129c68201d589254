"""Each committed notebook is its source, built: same cells, same kinds, same text, same tags.

``make notebooks NB=NN`` builds ``notebooks/NN_name.ipynb`` from ``tools/notebooks/NN_name.py``
(tools/build_notebooks.py). The build adds outputs, execution counts, stable cell ids and
the kernelspec, and drops jupytext's own metadata; none of that is compared here. What is
compared is what a learner reads and what the student copies and nbval go by.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "tools" / "notebooks").glob("[0-9][0-9]_*.py"))
BUILT = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(nb: Any) -> list[tuple[str, str, list[str]]]:
    """(kind, text, tags) of each cell: what the build carries over from the source."""
    return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_has_a_source_and_every_source_a_notebook() -> None:
    assert [p.stem for p in BUILT] == [p.stem for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem[:2])
def test_notebook_matches_its_source(source: Path) -> None:
    """A source edited without `make notebooks NB=NN` (or a notebook edited by hand) fails."""
    built = ROOT / "notebooks" / f"{source.stem}.ipynb"
    want = _cells(jupytext.read(source))
    got = _cells(nbformat.read(built, as_version=nbformat.NO_CONVERT))
    rebuild = f"rebuild it: make notebooks NB={source.stem[:2]}"
    for i, (cell, expected) in enumerate(zip(got, want, strict=False)):
        assert cell == expected, f"{built.name} cell {i} differs from {source.name}: {rebuild}"
    assert len(got) == len(want), f"{built.name} has {len(got)} cells, its source {len(want)}"
