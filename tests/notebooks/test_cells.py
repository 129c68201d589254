"""A notebook cell's error shows the learner's line, type and message, not nats-py's frames."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.internals import explain

ROOT = Path(__file__).resolve().parents[2]


def _run(cells: list[str], env: dict[str, str]) -> list[dict]:
    """Run code cells in a fresh kernel (errors kept); return each cell's error output."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute(env={**os.environ, **env})
    return [next((o for o in c.outputs if o.output_type == "error"), {}) for c in nb.cells]


def test_own_errors_keep_the_full_traceback() -> None:
    """An error of the learner's own code, with no usual cause, is left to IPython."""
    assert explain(ValueError("mine")) is None


def test_a_timeout_inside_nats_shows_three_lines(nats_url: str) -> None:
    """A fetch timeout: the cell's line, nats' TimeoutError, and what to run first."""
    errors = _run(
        [
            "from edalab import connect, ensure_server\nensure_server()",
            f"nc = await connect({nats_url!r})\nsub = await nc.subscribe('nothing.here')\n"
            "msg = await sub.next_msg(timeout=0.1)",
        ],
        {"NATS_URL": nats_url},
    )
    lines = errors[1]["traceback"]
    assert errors[1]["ename"] == "TimeoutError"
    assert lines[0] == "cell line 3: msg = await sub.next_msg(timeout=0.1)"
    assert lines[1] == "TimeoutError: nats: timeout"
    assert "run the cells above it first" in lines[2] and len(lines) == 3
    assert not any("CancelledError" in line for line in lines)


def test_after_a_restart_the_first_cell_says_run_setup_first(tmp_path: Path) -> None:
    """With PYTHONSTARTUP (make lab), a cell using js before setup names the setup cells."""
    startup = ROOT / "src" / "edalab" / "course" / "startup.py"
    errors = _run(["await js.publish('x', b'')"], {"PYTHONSTARTUP": str(startup)})
    assert errors[0]["ename"] == "NameError"
    assert "run the setup cells first" in "\n".join(errors[0]["traceback"])
