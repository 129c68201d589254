"""Build the committed notebooks from their sources and execute them.

Sources live in ``tools/notebooks/NN_name.py`` (jupytext "percent" format:
``# %%`` starts a code cell, ``# %% [markdown]`` a prose cell, and
``# %% tags=["solution"]`` tags one). This script turns each into
``notebooks/NN_name.ipynb``, runs it top to bottom in a fresh kernel with its
own embedded nats-server, and stores the outputs that nbval then checks.

    python tools/build_notebooks.py              # all notebooks
    python tools/build_notebooks.py 02 03        # those whose name starts so

Run it through ``make notebooks`` so NATS_URL is unset as in ``make test``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tools" / "notebooks"
TARGET = ROOT / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def build(source: Path) -> Path:
    """Convert one source, execute it, write the .ipynb; return its path."""
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata.pop("jupytext", None)
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell.id = f"{source.stem[:2]}-{i:03d}"  # stable ids: rebuilding changes no ids
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(TARGET)}}
    )
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            # A live view (edalab.course.view) without its kernel is dead: the stored output
            # keeps the static picture (its SVG and text), which nbval compares.
            output.get("data", {}).pop(WIDGET_VIEW, None)
    nb.metadata.pop("widgets", None)  # the widgets' state: model ids and script, per run
    out = TARGET / f"{source.stem}.ipynb"
    nbformat.write(nb, out)
    return out


def main(prefixes: list[str]) -> int:
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    chosen = [s for s in sources if not prefixes or any(s.stem.startswith(p) for p in prefixes)]
    if not chosen:
        print(f"no notebook sources match {prefixes}", file=sys.stderr)
        return 1
    for source in chosen:
        print(f"building {source.stem} ...", flush=True)
        build(source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
