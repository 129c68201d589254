"""A student copy run with its answer cells as shipped: every check says "not yet", no traceback.

Each notebook's student copy (``student_copy``: solutions replaced by ``# YOUR CODE HERE``)
runs top to bottom in a fresh kernel with its own embedded nats-server, as Run All would
for a learner who has not written anything yet. The lesson code above the exercise must
not already answer it, and the check cell must say what to write (not raise a
``NameError`` on its own arguments).

These runs execute most of the course (about as long as the notebook tests): they are
marked ``student`` and each notebook is one test, so ``-k`` and ``-n`` select and spread
them. They run in ``make test`` with the other unit tests.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from edalab.course.exercises import EXERCISES
from edalab.course.workshop import ANSWER_PROMPT, student_copy

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {p.name[:2]: p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
CHECK = re.compile(r"await check\(\s*[\"'](\d\d)[\"']")

pytestmark = pytest.mark.student


def _text(output: dict[str, Any]) -> str:
    """What an output shows: a stream's text, a result's text/plain, an error's name and value."""
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return str(output.get("data", {}).get("text/plain", ""))


def run_student_copy(number: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Run notebook ``number``'s student copy to the end (errors kept); return its cells."""
    copy = student_copy(json.loads(NOTEBOOKS[number].read_text()))
    nb = nbformat.reads(json.dumps(copy), as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "EDALAB_CLASS")}
    env["EDALAB_STATE_DIR"] = str(tmp_path / "state")
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOKS[number].parent)}},
    )
    client.execute(env=env)
    return [dict(c) for c in nb.cells]


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_empty_answer_is_not_yet(number: str, tmp_path: Path) -> None:
    """Run All with the answer cell as shipped ends in the check's "not yet", never an error."""
    cells = run_student_copy(number, tmp_path)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert any(ANSWER_PROMPT in c["source"] for c in code), "no answer cell"
    errors = [
        (i, _text(o))
        for i, c in enumerate(code)
        if "raises-exception" not in c.get("metadata", {}).get("tags", [])
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{number}: Run All stops at code cell {errors[0][0]}: {errors[0][1]}"
    checks = [c for c in code if CHECK.search(c["source"])]
    assert checks, f"{number}: no check cell"
    verdict = "".join(_text(o) for o in checks[-1]["outputs"])
    assert f"✘ exercise {number} not yet" in verdict, f"{number}: {verdict!r}"
    assert "Traceback" not in verdict
    placeholder = any(
        re.match(r"\w+ = None  # your answer", "".join(c["source"]))
        for c in json.loads(NOTEBOOKS[number].read_text())["cells"]
        if c["cell_type"] == "code"
    )
    if placeholder:  # the check judges the learner's (empty) answer, not a lesson variable
        assert "is still None: write your answer" in verdict, f"{number}: {verdict!r}"
