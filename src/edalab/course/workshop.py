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
from pathlib import Path
from typing import Any

import nats.js.errors
from nats.js.client import JetStreamContext

from edalab.course.exercises import EXERCISES, CheckResult, check, recorded_passes
from edalab.course.manifest import course_buckets, course_streams

from ._lesson import Table

__all__ = [
    "COURSE_BUCKETS",
    "COURSE_STREAMS",
    "PROGRESS_STATES",
    "progress",
    "progress_legend",
    "reset",
    "student_copy",
    "student_work",
    "write_student_copies",
]

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


#: What each state of ``edalab progress`` means (printed under its table).
PROGRESS_STATES = {
    "passed": "the check passes on this server now",
    "passed before": "a check passed on this machine earlier; a later lesson has changed "
    "the server since. Nothing to do",
    "in notebook": "the check needs what only its notebook has (a handler, a log): run the "
    "exercise's check cell there",
    "not yet": "the check does not pass: the detail says what it saw and what to do",
}


def progress_legend(width: int = PROGRESS_WIDTH) -> str:
    """The lines under ``edalab progress``'s table: what each state means.

    >>> progress_legend().splitlines()[1].split("  ")[0]
    'passed'
    """
    column = max(map(len, PROGRESS_STATES)) + 2
    lines = ["states:"]
    for state, meaning in PROGRESS_STATES.items():
        wrapped = textwrap.wrap(meaning, width - column)
        lines.append(f"{state:<{column}}{wrapped[0]}")
        lines += [" " * column + line for line in wrapped[1:]]
    return "\n".join(lines)


async def progress(js: JetStreamContext, *, width: int = PROGRESS_WIDTH) -> Table:
    """Run every checker that needs only the server; a table of exercise, state, detail.

    Every exercise of the course is a row (from ``EXERCISES``, so from the manifest).
    An exercise that passed a check earlier on this machine shows as ``passed before``
    when it does not pass now (a later notebook recreated its stream, say), with nothing
    to do. The detail wraps onto continuation rows so that no line is wider than ``width``.
    """
    earlier = recorded_passes()
    rows = []
    for key in sorted(EXERCISES):  # course order, whichever order they were registered in
        spec = EXERCISES[key]
        before = f"passed on {earlier.get(key)}; nothing to do"
        if spec.needs:  # the learner's objects (a handler, a log): only the notebook has them
            if key in earlier:
                rows.append([key, spec.notebook, "passed before", before])
                continue
            needs = ", ".join(spec.needs)
            detail = f"run the check cell of {spec.notebook}: the check needs its {needs}"
            rows.append([key, spec.notebook, "in notebook", detail])
            continue
        result: CheckResult = await check(key, js, report=False)
        if result:
            rows.append([key, spec.notebook, "passed", result.message])
        elif key in earlier:
            changed = " (the server has changed since: a later lesson reuses what it reads)"
            rows.append([key, spec.notebook, "passed before", before + changed])
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

    The check cell's arguments exist anyway: the cell before the solution sets each to
    ``None`` (``award = None``), so the check says what to write instead of raising
    ``NameError``.
    """
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": f"{ANSWER_PROMPT}\n",
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


def _sources(notebook: dict[str, Any]) -> dict[str, str]:
    """Cell id -> source of a notebook's cells that have an id."""
    return {
        str(c["id"]): "".join(c.get("source", "")) for c in notebook.get("cells", []) if "id" in c
    }


def student_work(existing: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """What a learner wrote in ``existing``, a student copy, compared with a ``fresh`` one.

    An answer cell no longer holding just the prompt, an edited cell, a cell added: each
    is work that writing the fresh copy over it would lose. Outputs do not count.

        >>> fresh = {"cells": [{"id": "a", "cell_type": "code", "source": ANSWER_PROMPT}]}
        >>> student_work(fresh, fresh)
        []
        >>> mine = {"cells": [{"id": "a", "cell_type": "code", "source": "x = 1"},
        ...                   {"id": "n", "cell_type": "markdown", "source": "my notes"}]}
        >>> student_work(mine, fresh)
        ['an answer in cell 1', 'a cell added (cell 2)']
    """
    known = _sources(fresh)
    work = []
    for number, cell in enumerate(existing.get("cells", []), start=1):
        source = "".join(cell.get("source", ""))
        original = known.get(str(cell.get("id")))
        if original is None:
            if source.strip():
                work.append(f"a cell added (cell {number})")
        elif source.strip() != original.strip():
            answer = ANSWER_PROMPT in original  # an answer cell (after any placeholder lines)
            work.append(f"an answer in cell {number}" if answer else f"cell {number} edited")
    return work


def write_student_copies(
    notebooks: list[Path], target: Path, *, force: bool = False
) -> tuple[list[Path], dict[Path, list[str]]]:
    """Write a student copy of each notebook into ``target``; never over a learner's work.

    Returns the copies written and, for each copy left alone, what it holds
    (:func:`student_work`). ``force=True`` writes over them too.
    """
    import json

    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    kept: dict[Path, list[str]] = {}
    for path in notebooks:
        copy = student_copy(json.loads(path.read_text()))
        out = target / path.name
        if out.exists() and not force:
            try:
                work = student_work(json.loads(out.read_text()), copy)
            except ValueError:  # not a notebook any more: someone's file all the same
                work = ["a file that is not a notebook"]
            if work:
                kept[out] = work
                continue
        out.write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n")
        written.append(out)
    return written, kept
