"""README's class steps, run as written on a fresh machine, end with a student's check on the
instructor's page; a student whose class server is down gets an error, not a private server."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

from edalab import wait_for
from edalab.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


def class_steps() -> tuple[list[str], list[str]]:
    """The instructor's and the student's commands: the first two ``sh`` blocks of README's
    class-mode section, one command a line (comments dropped)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Class mode", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "README's class section lost its instructor or student block"

    def commands(block: str) -> list[str]:
        lines = (line.split("  #")[0].strip() for line in block.splitlines())
        return [line for line in lines if line and not line.startswith("#")]

    return commands(blocks[0]), commands(blocks[1])


def _normal(line: str) -> list[str]:
    """A README command line as the class section writes it: comment dropped, the learner
    venv's prefix dropped (the section activates it), `...; make lab` split in two."""
    line = line.split("  #")[0].strip().replace(".venv-learner/bin/", "")
    head, lab, _ = line.partition("; make lab")
    return [head, "make lab"] if lab else [line]


def test_class_commands_shown_elsewhere_in_the_readme_are_the_class_sections() -> None:
    """A quick start that shows the class steps shows the same commands the test below runs."""
    readme = (ROOT / "README.md").read_text()
    before, section = readme.split("## Class mode", 1)
    elsewhere = before + "\n## " + section.split("\n## ", 1)[1] if "\n## " in section else before
    instructor, student = class_steps()
    shown = [
        command
        for line in elsewhere.splitlines()
        for command in _normal(line)
        if command.startswith(("edalab class ", "edalab server start --config", "set -a; . class/"))
    ]
    for command in shown:
        assert command in instructor + student, f"README shows {command!r}; its class steps differ"


def lab_first_step() -> str:
    """What `make lab` runs before JupyterLab (the Makefile's recipe, venv prefix dropped)."""
    recipe = (ROOT / "Makefile").read_text().split("\nlab: ", 1)[1].splitlines()[1]
    return recipe.strip().replace("$(LEARNER)/bin/", "")


def _machine(tmp_path: Path, name: str) -> dict[str, str]:
    """A fresh machine's environment: its own home and state, no NATS variables, edalab on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "EDALAB_"))}
    home = tmp_path / name
    home.mkdir()
    env.update(HOME=str(home), EDALAB_STATE_DIR=str(home / "state"))
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


#: The notebook's side, mirrored: notebook 00's connect cell, 04's answer, its check cell.
STUDENT_CHECK = """
import asyncio
from edalab import connect, ensure_server
from edalab.course import fresh_stream
from edalab.course import check

async def main():
    server = ensure_server()
    print("server:", server.source)
    nc = await connect(server)
    js = nc.jetstream()
    await fresh_stream(js, "PRICES", ["price.*"], max_msgs_per_subject=1)
    for symbol in ("AAPL", "MSFT", "NVDA"):
        for price in (100, 101):
            await js.publish(f"price.{symbol}", str(price).encode())
    print(await check("04", js))
    await nc.close()

asyncio.run(main())
"""


def test_readme_class_steps_end_with_a_students_check_on_the_instructors_page(
    tmp_path: Path,
) -> None:
    """Instructor: README's three commands (host, port and page port made free ones). Student:
    README's two lines, `make lab` standing for its first step, then a check. The page shows it."""
    instructor, student = class_steps()
    port = free_port()
    teacher = _machine(tmp_path, "instructor")
    *setup, serve = instructor
    assert "<your-host>:4222" in setup[0] and "--serve 8080" in serve
    view = None
    try:
        for command in setup:
            command = command.replace("<your-host>:4222", f"127.0.0.1:{port}")
            done = subprocess.run(
                shlex.split(command), cwd=tmp_path, env=teacher, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        view = subprocess.Popen(
            shlex.split(serve.replace("--serve 8080", "--serve 0")),
            cwd=tmp_path, env=teacher, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert view.stdout is not None
        page = view.stdout.readline().split()[-1]  # "live class progress: http://127.0.0.1:N/"
        assert page.startswith("http://127.0.0.1:"), page

        assert student[-1] == "make lab" and lab_first_step() == "edalab server ensure"
        script = tmp_path / "notebook.py"
        script.write_text(STUDENT_CHECK)
        lines = [*student[:-1], lab_first_step(), f"{sys.executable} {script}"]
        done = subprocess.run(
            ["bash", "-ec", "\n".join(lines)],
            cwd=tmp_path, env=_machine(tmp_path, "student"), capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "using NATS_URL" in done.stdout and "server: NATS_URL" in done.stdout
        assert "exercise 04 passed" in done.stdout and "not reported" not in done.stdout
        assert not (tmp_path / "student" / "state" / "server.json").exists()  # no private one

        def cell() -> str:
            with urllib.request.urlopen(page + "progress.json", timeout=5) as answer:
                return str(json.loads(answer.read())["cells"].get("s07/04"))

        async def arrived() -> bool:
            return cell() == "pass"

        import asyncio

        asyncio.run(wait_for(arrived, timeout=10, what="s07's check on the instructor's page"))
    finally:
        try:
            if view is not None:
                view.terminate()
                view.communicate(timeout=10)
        finally:
            subprocess.run(["edalab", "server", "stop"], env=teacher, capture_output=True)


def test_a_student_whose_class_server_is_down_gets_an_error_not_a_private_server(
    tmp_path: Path,
) -> None:
    """README's student lines with the class server down: `make lab`'s first step fails,
    naming the URL and the instructor, and leaves no server of the student's own."""
    from edalab.course.classroom import Classroom

    url = f"nats://127.0.0.1:{free_port()}"  # nobody serves the class there
    Classroom.generate(7, bcrypt_rounds=4).write(tmp_path / "class", url=url)
    _, student = class_steps()
    lines = [*student[:-1], lab_first_step()]
    env = _machine(tmp_path, "student")
    try:
        done = subprocess.run(
            ["bash", "-ec", "\n".join(lines)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
    finally:  # should there be one (the bug this test catches), stop it
        subprocess.run(["edalab", "server", "stop"], env=env, capture_output=True)
    assert done.returncode != 0
    assert url in done.stderr and "ask your instructor" in done.stderr
    assert not (tmp_path / "student" / "state" / "server.json").exists()
