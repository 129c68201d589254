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

#: Exercises whose checker needs more than the JetStream context.
NEEDS_MORE = {
    "02": "needs your subscription patterns: run its check cell in notebook 02",
    "03": "needs your PubAcks: run its check cell in notebook 03",
    "12": "needs the auditor's credentials: run it in notebook 12",
}


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


async def progress(js: JetStreamContext) -> Table:
    """Run every checker that needs only the server; a table of exercise, state, detail.

    An exercise that fails now but passed a check earlier on this machine (a later
    notebook recreated its stream, say) shows as ``passed before``.
    """
    earlier = recorded_passes()
    rows = []
    for key, spec in EXERCISES.items():
        if key in NEEDS_MORE:
            state = "passed before" if key in earlier else "skipped"
            rows.append([key, spec.notebook, state, NEEDS_MORE[key]])
            continue
        result: CheckResult = await check(key, js)
        if result:
            rows.append([key, spec.notebook, "pass", result.message])
        elif key in earlier:
            detail = f"passed on {earlier[key]}; the server has changed since: {result.message}"
            rows.append([key, spec.notebook, "passed before", detail])
        else:
            rows.append([key, spec.notebook, "not yet", result.message])
    return Table(["exercise", "notebook", "state", "detail"], rows)


def student_copy(notebook: dict[str, Any]) -> dict[str, Any]:
    """A student's copy of a notebook (nbformat 4 JSON): solutions out, exercises blank.

    Cells tagged ``solution`` are removed; code cells from the ``## Exercise`` heading on
    lose their outputs and execution counts, so the checker's verdict is the student's own.

        >>> nb = {"cells": [
        ...     {"cell_type": "markdown", "source": "## Exercise", "metadata": {}},
        ...     {"cell_type": "code", "source": "x = 1", "metadata": {"tags": ["solution"]},
        ...      "outputs": [], "execution_count": 1},
        ...     {"cell_type": "code", "source": "check()", "metadata": {},
        ...      "outputs": [{"output_type": "stream"}], "execution_count": 2}]}
        >>> [c["source"] for c in student_copy(nb)["cells"]]
        ['## Exercise', 'check()']
        >>> student_copy(nb)["cells"][1]["outputs"]
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
            continue
        if in_exercise and cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    out["cells"] = cells
    return out
