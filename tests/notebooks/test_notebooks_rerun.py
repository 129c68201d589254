"""Every notebook runs top to bottom twice in one kernel, and each cell runs twice in a row
(strict nbval checks one run)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _execute(
    nb: nbformat.NotebookNode,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    allow_errors: bool,
) -> None:
    """Run ``nb`` (outputs cleared) in a fresh kernel with its own embedded server."""
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=dict(os.environ))


#: Every notebook but 13 and 15 (a cluster, benchmarks: too slow to run each cell twice):
#: each cell twice in a row, then the whole notebook again, in one kernel.
SINGLE_CELL = [p for p in NOTEBOOKS if p.name[:2] not in ("13", "15")]
WHOLE_ONLY = [p for p in NOTEBOOKS if p not in SINGLE_CELL]


def _no_errors(nb: nbformat.NotebookNode, path: Path, cells: list[int]) -> None:
    """No cell among ``cells`` shows an error, but those that teach one."""
    for i in cells:
        cell = nb.cells[i]
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (
            f"{path.name}, second run, cell {i}: {errors[0].ename}: {errors[0].evalue}"
        )


@pytest.mark.parametrize("path", WHOLE_ONLY, ids=[p.stem for p in WHOLE_ONLY])
def test_notebook_runs_twice_in_one_kernel(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run all cells, then all cells again; only cells tagged raises-exception may fail."""
    nb = nbformat.read(path, as_version=4)
    first = len(nb.cells)
    nb.cells = nb.cells + [nbformat.from_dict(dict(c)) for c in nb.cells]
    _execute(nb, path, monkeypatch, tmp_path, allow_errors=False)
    _no_errors(nb, path, list(range(first, len(nb.cells))))


@pytest.mark.parametrize("path", SINGLE_CELL, ids=[p.stem for p in SINGLE_CELL])
def test_each_cell_twice_in_a_row_then_the_whole_notebook_again(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Re-running one cell at once works, or its error is the cell's line, type and a hint;
    then Run All again in the same kernel runs clean (but for cells that teach an error)."""
    nb = nbformat.read(path, as_version=4)
    original = list(nb.cells)
    cells = []
    for cell in original:
        cells.append(cell)
        if cell.cell_type == "code":
            again = {**dict(cell), "metadata": {**cell.metadata, "again": True}}
            cells.append(nbformat.from_dict(again))
    second = len(cells)
    nb.cells = cells + [nbformat.from_dict(dict(c)) for c in original]
    _execute(nb, path, monkeypatch, tmp_path, allow_errors=True)
    for i, cell in enumerate(nb.cells[:second]):
        if cell.cell_type != "code" or not cell.metadata.get("again"):
            continue
        if "raises-exception" in cell.metadata.get("tags", []):
            continue  # the error is the lesson, run after run
        for error in (o for o in cell.outputs if o.output_type == "error"):
            shown = error.traceback
            assert len(shown) <= 3 and shown[-1].startswith("hint: "), (
                f"{path.name}, cell {i} run again: {error.ename}: {error.evalue} "
                f"({len(shown)} traceback lines)"
            )
    _no_errors(nb, path, list(range(second, len(nb.cells))))
