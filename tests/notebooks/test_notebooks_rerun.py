"""Every notebook runs top to bottom twice in one kernel (strict nbval checks one run)."""

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_twice_in_one_kernel(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run all cells, then all cells again; only cells tagged raises-exception may fail."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = nb.cells + [nbformat.from_dict(dict(c)) for c in nb.cells]
    _execute(nb, path, monkeypatch, tmp_path, allow_errors=False)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        run = "second" if i >= len(nb.cells) // 2 else "first"
        assert not errors, (
            f"{path.name}, {run} run, cell {i}: {errors[0].ename}: {errors[0].evalue}"
        )


#: Every notebook but 13 and 15 (a cluster, benchmarks: too slow to run twice over).
SINGLE_CELL = [p for p in NOTEBOOKS if p.name[:2] not in ("13", "15")]


@pytest.mark.parametrize("path", SINGLE_CELL, ids=[p.stem for p in SINGLE_CELL])
def test_each_cell_run_twice_in_a_row_works_or_says_what_to_run_first(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Re-running one cell at once: it works, or its error is the cell's line, type and a hint."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type == "code":
            again = {**dict(cell), "metadata": {**cell.metadata, "again": True}}
            cells.append(nbformat.from_dict(again))
    nb.cells = cells
    _execute(nb, path, monkeypatch, tmp_path, allow_errors=True)
    for i, cell in enumerate(nb.cells):
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
