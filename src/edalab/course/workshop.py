"""Tools for instructors: reset the course's server state, check everyone's progress.

``edalab reset`` deletes the streams, consumers and key-value buckets *the course
creates* (listed here, nothing else), so a workshop can start again from a clean
server. ``edalab progress`` runs the exercise checkers against the server and
prints which pass.

    deleted = await reset(js)
    table = await progress(js)
"""

from __future__ import annotations

import contextlib
import copy
import re
import textwrap
from typing import Any

import nats.js.errors
from nats.js.client import JetStreamContext

from edalab.course.exercises import EXERCISES, CheckResult, check, recorded_passes
from edalab.course.manifest import course_buckets, course_streams
from edalab.streams import Table

__all__ = ["COURSE_BUCKETS", "COURSE_STREAMS", "progress", "reset", "student_copy"]

#: Streams the notebooks create (consumers go with their stream), from the manifest.
COURSE_STREAMS = course_streams()

#: Key-value buckets the notebooks create, from the manifest.
COURSE_BUCKETS = course_buckets()


async def course_state(js: JetStreamContext) -> tuple[list[str], list[str]]:
    """Which course streams and buckets exist on the server now."""
    streams = {s.config.name for s in await js.streams_info()}
    found = [s for s in COURSE_STREAMS if s in streams]
    buckets = [b for b in COURSE_BUCKETS if f"KV_{b}" in streams]
    return found, buckets


async def reset(js: JetStreamContext) -> list[str]:
    """Delete the course's streams and buckets; return what was deleted."""
    streams, buckets = await course_state(js)
    deleted = []
    for name in streams:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
            deleted.append(f"stream {name}")
    for bucket in buckets:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_key_value(bucket)
            deleted.append(f"bucket {bucket}")
    return deleted


#: How wide ``edalab progress`` may print (a terminal, a projector).
PROGRESS_WIDTH = 100


async def progress(js: JetStreamContext, *, width: int = PROGRESS_WIDTH) -> Table:
    """Run every checker that needs only the server; a table of exercise, state, detail.

    An exercise that fails now but passed a check earlier on this machine (a later
    notebook recreated its stream, say) shows as ``passed before``. The detail wraps
    onto continuation rows so that no line is wider than ``width``.
    """
    earlier = recorded_passes()
    rows = []
    for key, spec in EXERCISES.items():
        if spec.needs:  # the learner's objects (a handler, a log): only the notebook has them
            state = "passed before" if key in earlier else "in notebook"
            needs = ", ".join(spec.needs)
            detail = f"run the last cell of {spec.notebook}: the check needs its {needs}"
            rows.append([key, spec.notebook, state, detail])
            continue
        result: CheckResult = await check(key, js, report=False)
        if result:
            rows.append([key, spec.notebook, "pass", result.message])
        elif key in earlier:
            detail = f"passed on {earlier[key]}; the server has changed since: {result.message}"
            rows.append([key, spec.notebook, "passed before", detail])
        else:
            rows.append([key, spec.notebook, "not yet", result.message])
    return _wrapped(Table(["exercise", "notebook", "state", "detail"], rows), width)


def _wrapped(table: Table, width: int) -> Table:
    """The same table with its last column wrapped so that each line fits ``width``."""
    cells = [table.headers] + [[str(c) for c in r] for r in table.rows]
    lead = sum(max(len(row[i]) for row in cells) + 2 for i in range(len(table.headers) - 1))
    room = max(20, width - lead)
    rows: list[list[str]] = []
    for row in table.rows:
        lines = textwrap.wrap(str(row[-1]), room) or [""]
        rows.append([*map(str, row[:-1]), lines[0]])
        rows += [[""] * (len(row) - 1) + [line] for line in lines[1:]]
    return Table(table.headers, rows)


#: The one line an answer cell starts with (nbgrader's convention).
ANSWER_PROMPT = "# YOUR CODE HERE"


def _answer_cell(solution: dict[str, Any]) -> dict[str, Any]:
    """An empty code cell, with the prompt, where the solution was (same id, no tags).

    A solution whose metadata names a ``placeholder`` (``"award = None"``) starts with
    it, so that the check cell's arguments exist before the learner writes anything and
    the check says what to write instead of raising ``NameError``.
    """
    placeholder = solution.get("metadata", {}).get("placeholder", "")
    lines = [
        f"{line}  # a placeholder: your code below replaces it"
        for line in placeholder.split(";")
        if line.strip()
    ]
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": "".join(f"{line}\n" for line in [*lines, ANSWER_PROMPT]),
    }
    if "id" in solution:
        cell["id"] = solution["id"]
    return cell


def student_copy(notebook: dict[str, Any]) -> dict[str, Any]:
    """A student's copy of a notebook (nbformat 4 JSON): solutions out, exercises blank.

    Each cell tagged ``solution`` becomes an empty code cell holding one prompt line
    (``# YOUR CODE HERE``, as nbgrader does), so there is a place for the answer; code
    cells from the ``## Exercise`` heading on lose their outputs and execution counts,
    so the checker's verdict is the student's own.

        >>> nb = {"cells": [
        ...     {"cell_type": "markdown", "source": "## Exercise", "metadata": {}},
        ...     {"cell_type": "code", "source": "x = 1", "metadata": {"tags": ["solution"]},
        ...      "outputs": [], "execution_count": 1},
        ...     {"cell_type": "code", "source": "check()", "metadata": {},
        ...      "outputs": [{"output_type": "stream"}], "execution_count": 2}]}
        >>> [c["source"].strip() for c in student_copy(nb)["cells"]]
        ['## Exercise', '# YOUR CODE HERE', 'check()']
        >>> student_copy(nb)["cells"][2]["outputs"]
        []
    """
    out = copy.deepcopy(notebook)
    cells = []
    in_exercise = False
    for cell in out["cells"]:
        source = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown" and re.search(r"^## Exercise", source, re.M):
            in_exercise = True
        if "solution" in cell.get("metadata", {}).get("tags", []):
            cells.append(_answer_cell(cell))
            continue
        if in_exercise and cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    out["cells"] = cells
    return out
