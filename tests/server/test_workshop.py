"""Workshop tools: reset, progress, student copies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edalab import EventConsumer, ProcessedIds, connect
from edalab.course import fresh_stream
from edalab.course.cli import main as cli
from edalab.course.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A server of this test's own (reset must not touch the session server's streams)."""
    from edalab import NatsServer

    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path / "state"))
    with NatsServer() as srv:
        yield srv


async def test_reset_deletes_only_what_the_course_created(own_server, capsys) -> None:
    """Course streams and buckets go; a stream of the user's own stays."""
    nc = await connect(own_server.url)
    js = nc.jetstream()
    await fresh_stream(js, "ORDERS", ["order.>"])
    await EventConsumer.create(js, "ORDERS", "billing")
    await ProcessedIds.open(js, "processed-ids")
    await fresh_stream(js, "MY_OWN", ["mine.>"])
    assert await asyncio_cli(["reset", "--url", own_server.url]) == 1  # no tty, no --yes
    assert await asyncio_cli(["reset", "--yes", "--url", own_server.url]) == 0
    out = capsys.readouterr().out
    assert "stream ORDERS" in out and "bucket processed-ids" in out
    names = {s.config.name for s in await js.streams_info()}
    assert names == {"MY_OWN"}
    await nc.close()


async def _ok(event):
    """A handler that accepts every event."""


async def asyncio_cli(argv: list[str]) -> int:
    """The CLI runs its own event loop: call it from a thread."""
    import asyncio

    return await asyncio.to_thread(cli, argv)


async def test_progress_prints_a_table_of_exercises(own_server, capsys) -> None:
    """progress shows each exercise; one solved on the server shows as pass."""
    nc = await connect(own_server.url)
    js = nc.jetstream()
    await _last_prices(js)
    await nc.close()
    assert await asyncio_cli(["progress", "--url", own_server.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["exercise", "notebook", "state", "detail"]
    table = lines[: lines.index("")]  # the legend follows a blank line
    rows = [line for line in table[2:] if not line.startswith(" ")]  # not continuation rows
    states = {line.split()[0]: line.split()[2] for line in rows}
    assert max(len(line) for line in lines) <= 100
    assert states["04"] == "passed"
    assert states["05"] == "not"  # "not yet"
    assert states["12"] == "in"  # "in notebook": it needs the auditor's credentials
    assert "run the check cell of 12_security" in " ".join(lines)
    assert [line.split()[0] for line in rows] == sorted(EXERCISES)  # each exercise, in order
    legend = lines[lines.index("states:") :]
    for state in ("passed", "passed before", "in notebook", "not yet"):
        assert any(line.startswith(state + "  ") for line in legend), state


async def _last_prices(js) -> None:
    """Exercise 04 solved: the last price per symbol, after two prices each."""
    await fresh_stream(js, "PRICES", ["price.*"], max_msgs_per_subject=1)
    for symbol in ("AAPL", "MSFT", "NVDA"):
        for price in range(2):
            await js.publish(f"price.{symbol}", str(price).encode())


def test_reset_without_a_server_says_so(monkeypatch, tmp_path, capsys) -> None:
    """No --url, no NATS_URL, no edalab server: a clear error, nothing started."""
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    assert cli(["reset", "--yes"]) == 2
    assert "no server to work on" in capsys.readouterr().err


def test_student_copies_drop_solutions_and_clear_exercise_outputs(tmp_path: Path) -> None:
    """Every notebook is copied; no solution cell survives; exercise checks have no output."""
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_student.py"), str(tmp_path)], check=True
    )
    originals = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in originals]
    for path in tmp_path.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        assert not any("solution" in c["metadata"].get("tags", []) for c in nb["cells"])
        prompts = [c for c in nb["cells"] if "# YOUR CODE HERE" in "".join(c["source"])]
        original = json.loads((ROOT / "notebooks" / path.name).read_text())
        solutions = [c for c in original["cells"] if "solution" in c["metadata"].get("tags", [])]
        assert len(prompts) == len(solutions), path.name  # an answer cell for each solution
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and "check(" in "".join(cell["source"]):
                assert cell["outputs"] == [] and cell["execution_count"] is None
    original = json.loads((ROOT / "notebooks" / "03_publishing.ipynb").read_text())
    assert any("solution" in c["metadata"].get("tags", []) for c in original["cells"])


def test_binder_start_hook_starts_the_server_then_runs_the_command(tmp_path: Path) -> None:
    """binder/start launches an edalab server and then execs the given command."""
    import os

    env = {**os.environ, "EDALAB_STATE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    try:
        out = subprocess.run(
            ["bash", str(ROOT / "binder" / "start"), "edalab", "server", "status"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "edalab server started" in out.stdout and "running:" in out.stdout
    finally:
        subprocess.run(["edalab", "server", "stop"], env=env, capture_output=True, check=False)


async def test_progress_remembers_exercises_that_passed_before(own_server, capsys) -> None:
    """A check that passed is recorded; when a later lesson wipes its stream, progress says so."""
    from edalab.course.exercises import check, recorded_passes

    nc = await connect(own_server.url)
    js = nc.jetstream()
    await _last_prices(js)
    assert (await check("04", js)).passed
    assert "04" in recorded_passes()
    await fresh_stream(js, "PRICES", ["price.*"])  # a later lesson (or attempt) starts over
    await nc.close()
    assert await asyncio_cli(["progress", "--url", own_server.url]) == 0
    row = _row(capsys.readouterr().out.splitlines(), "04")
    assert "passed before" in row and "nothing to do" in row
    assert "PRICES has no price" not in row  # no instruction to redo what passed


async def test_progress_asks_nothing_of_a_notebook_exercise_that_passed(own_server, capsys) -> None:
    """An exercise checked in its notebook (06 needs the log) that passed says nothing to do."""
    from edalab.course._checkers._core import _record_pass

    _record_pass("06")
    assert await asyncio_cli(["progress", "--url", own_server.url]) == 0
    row = _row(capsys.readouterr().out.splitlines(), "06")
    assert "passed before" in row and "nothing to do" in row and "run" not in row


def _row(lines: list[str], key: str) -> str:
    """Exercise ``key``'s row of the progress table, with its wrapped detail joined."""
    start = next(i for i, line in enumerate(lines) if line.startswith(key))
    end = next(
        i for i in range(start + 1, len(lines) + 1) if i == len(lines) or lines[i][:1] != " "
    )
    return " ".join(" ".join(line.split()) for line in lines[start:end])


async def test_each_student_on_one_machine_has_their_own_record(js, monkeypatch, tmp_path) -> None:
    """Passes are recorded per NATS_USER: s02 does not see s01's on a shared machine."""
    from edalab.course.exercises import check, recorded_passes

    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NATS_USER", "s01")
    await _last_prices(js)
    assert (await check("04", js, report=False)).passed
    assert "04" in recorded_passes()
    monkeypatch.setenv("NATS_USER", "s02")
    assert "04" not in recorded_passes()


def test_make_student_needs_only_the_learners_set() -> None:
    """`make student` installs and runs with the learner's venv, never the developers' `.[dev]`."""
    plan = subprocess.run(
        ["make", "-n", "-B", "student"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert ".venv-learner/bin/python tools/make_student.py dist/student" in plan
    assert ".[dev]" not in plan and ".venv/bin/" not in plan


def test_make_student_keeps_a_copy_that_holds_answers(tmp_path: Path) -> None:
    """A second run writes over untouched copies, but keeps (and names) one with an answer."""
    tool = [sys.executable, str(ROOT / "tools" / "make_student.py"), str(tmp_path)]
    subprocess.run(tool, check=True, capture_output=True)
    mine = tmp_path / "04_stream_policies.ipynb"
    nb = json.loads(mine.read_text())
    answer = next(c for c in nb["cells"] if "# YOUR CODE HERE" in "".join(c["source"]))
    answer["source"] = "await fresh_stream(js, 'PRICES', ['price.*'])\n"
    mine.write_text(json.dumps(nb))
    untouched = tmp_path / "03_publishing.ipynb"
    untouched.write_text(untouched.read_text().replace('"outputs": []', '"outputs": [ ]', 1))
    again = subprocess.run(tool, check=True, capture_output=True, text=True).stdout
    assert "kept 04_stream_policies.ipynb: it holds your work (an answer in cell" in again
    assert "--force" in again
    assert "fresh_stream(js, 'PRICES', ['price.*'])" in mine.read_text()  # the answer stays
    assert '"outputs": [ ]' not in untouched.read_text()  # no work there: written again
    forced = subprocess.run([*tool, "--force"], check=True, capture_output=True, text=True)
    assert "kept" not in forced.stdout and "PRICES', ['price.*'])" not in mine.read_text()


async def test_progress_shows_an_exercise_added_later_in_course_order(
    own_server, monkeypatch
) -> None:
    """A checker registered after the others (00, say) appears, first, with no other change."""
    from edalab.course.exercises import Exercise
    from edalab.course.workshop import progress

    async def greeted(js) -> str:
        return "greeted"

    monkeypatch.setitem(EXERCISES, "00", Exercise("00", "00_start_here", "say hello", greeted))
    nc = await connect(own_server.url)
    try:
        table = await progress(nc.jetstream())
    finally:
        await nc.close()
    keys = [row[0] for row in table.rows if row[0]]
    assert keys == sorted(EXERCISES) and table.rows[0][:3] == ["00", "00_start_here", "passed"]
