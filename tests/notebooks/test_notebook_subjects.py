"""Notebooks that share a server do not capture each other's subjects.

Most notebooks run on the one server ``ensure_server()`` finds, one after another or (in
two browser tabs) at once. A stream one notebook leaves behind must not capture what
another publishes: notebook 03 teaches "a subject no stream captures", which stops being
true once a later notebook's stream captures that subject, and two streams whose subjects
overlap cannot both exist. Derived from the notebook sources, so a new cell is checked too.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from edalab.course.manifest import LESSONS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {p.name[:2]: p.read_text() for p in (ROOT / "tools" / "notebooks").glob("[0-9]*.py")}

#: Streams that helpers create for a notebook (the calls that do it, then name and subjects).
HELPER_STREAMS = {
    "saga.setup(": ("ORDERS", ["order.>", "stock.>", "billing.>"]),  # edalab.course.saga
    "Shop(": ("SHOP", ["shop.>"]),  # edalab.course.shop
}
#: Literals that look like subjects but are never published on: 18's events all go to the
#: seed's one subject, ``events`` (``publish_event(..., subject="events")``).
NOT_SUBJECTS = {"18": {"user.created"}}
_STREAM = re.compile(
    r"(?:fresh_stream|ensure_stream)\(\s*\w+,\s*\"(\w+)\",\s*\[([^\]]*)\]"
    r"|add_stream\(\s*name=\"(\w+)\",\s*subjects=\[([^\]]*)\]"
)
#: A literal that names a concrete subject (two tokens or more), anywhere in code.
_SUBJECT = re.compile(r"\"([a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)+)\"")


def shared(number: str) -> bool:
    """Whether the notebook runs on the shared server (not a lesson server or cluster)."""
    return "ensure_server()" in SOURCES[number] and "lesson_server(" not in SOURCES[number]


def streams(number: str) -> dict[str, list[str]]:
    """The streams a notebook creates: name -> subject patterns."""
    found: dict[str, list[str]] = {}
    for m in _STREAM.finditer(SOURCES[number]):
        name, subjects = (m[1], m[2]) if m[1] else (m[3], m[4])
        found.setdefault(name, []).extend(re.findall(r"\"([^\"]+)\"", subjects))
    for call, (name, subjects) in HELPER_STREAMS.items():
        if call in SOURCES[number]:
            found.setdefault(name, []).extend(subjects)
    return found


def subjects(number: str) -> set[str]:
    """The literal subjects (and event types) in a notebook's code, comments left out."""
    code = "\n".join(line for line in SOURCES[number].splitlines() if not line.startswith("#"))
    found = set(_SUBJECT.findall(code)) - NOT_SUBJECTS.get(number, set())
    # One-token subjects ("events", "click"): those that some stream captures.
    single = {p for n in SOURCES for ps in streams(n).values() for p in ps if "." not in p}
    return found | {s for s in single if f'"{s}"' in code}


def overlap(a: str, b: str) -> bool:
    """Whether some subject matches both patterns.

    >>> overlap("order.>", "order.placed"), overlap("order.*", "payment.>")
    (True, False)
    """
    ta, tb = a.split("."), b.split(".")
    for x, y in itertools.zip_longest(ta, tb):
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and "*" not in (x, y):
            return False
    return True


SHARED = [x.number for x in LESSONS if shared(x.number)]
PAIRS = [(a, b) for a in SHARED for b in SHARED if a != b]


def test_the_audit_sees_the_course() -> None:
    """The parser finds the streams and subjects it audits (it is not vacuous)."""
    assert {"03", "10", "16", "17"} <= set(SHARED)
    assert "07" not in SHARED  # a lesson server of its own
    assert streams("10")["PAYMENTS"] == ["payment.>"]
    assert streams("16")["ORDERS"][:1] == ["order.>"]
    assert "order.placed" in subjects("05")


@pytest.mark.parametrize(("owner", "other"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_streams_capture_no_other_notebooks_subjects(owner: str, other: str) -> None:
    """A stream of one notebook captures nothing another publishes, and overlaps none of its.

    A stream of the same name is exempt: the other notebook recreates it on its own.
    """
    theirs = streams(other)
    for name, patterns in streams(owner).items():
        if name in theirs:
            continue
        for pattern in patterns:
            caught = sorted(s for s in subjects(other) if overlap(pattern, s))
            assert not caught, (
                f"{owner}'s stream {name} ({pattern}) captures {other}'s subjects {caught}"
            )
            clash = [(n, p) for n, ps in theirs.items() for p in ps if overlap(pattern, p)]
            assert not clash, f"{owner}'s stream {name} ({pattern}) overlaps {other}'s {clash}"


def _fresh_stream_in_a_kernel(nats_url: str, name: str) -> dict[str, str]:
    """Run ``fresh_stream(name)`` in a new notebook kernel; its error output, if any."""
    import nbformat
    from nbclient import NotebookClient

    cell = (
        "from edalab import connect\nfrom edalab.course import fresh_stream\n"
        f"nc = await connect({nats_url!r})\n"
        f"await fresh_stream(nc.jetstream(), {name!r}, [{name.lower() + '.>'!r}])"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute(
        env=dict(os.environ)
    )
    error = next((o for o in nb.cells[0].outputs if o.output_type == "error"), {})
    return {"ename": error.get("ename", ""), "evalue": error.get("evalue", "")}


async def test_a_stream_held_by_another_running_kernel_is_not_deleted(
    js, nats_url: str, stream_name: str
) -> None:
    """fresh_stream in a second kernel refuses, naming the notebook; once it exits, proceeds."""
    import json

    from tests.internals import stream_claim

    await js.add_stream(name=stream_name, subjects=[f"{stream_name.lower()}.>"])
    claim = stream_claim(await js.stream_info(stream_name))
    claim.parent.mkdir(parents=True, exist_ok=True)

    def held_by(pid: int) -> None:
        holder = {"notebook": "notebook 03_publishing.ipynb", "pid": str(pid)}
        claim.write_text(json.dumps({**holder, "host": socket.gethostname()}))

    held_by(os.getpid())  # this test plays 03's kernel, still running
    refused = await asyncio.to_thread(_fresh_stream_in_a_kernel, nats_url, stream_name)
    assert refused["ename"] == "StreamInUse", refused
    assert "held by notebook 03_publishing.ipynb" in refused["evalue"]
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    held_by(gone.pid)  # 03's kernel has exited
    done = await asyncio.to_thread(_fresh_stream_in_a_kernel, nats_url, stream_name)
    assert done["ename"] == "", done
    assert not claim.exists()  # the old stream's record went with it
    mine = json.loads(stream_claim(await js.stream_info(stream_name)).read_text())
    assert mine["pid"] not in (str(os.getpid()), str(gone.pid))
