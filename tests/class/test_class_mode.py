"""A class that cannot silently split: one server on the class's port, no private fallback,
and an instructor's stream that stores the course's reports only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import nats.js.errors
import pytest

from edalab import NatsServer, ServerError, ServerUnreachableError, connect
from edalab.course.classroom import (
    PROGRESS_STREAM,
    Classroom,
    ensure_progress_stream,
    load_env_file,
    report_subjects,
)
from edalab.course.cli import main as cli
from edalab.testing import free_port
from tests.classes import class_server, creds


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh machine: its own state directory, no NATS_URL; its edalab server stopped after."""
    monkeypatch.delenv("NATS_URL", raising=False)
    for key in ("EDALAB_CLASS", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    cli(["server", "stop"])
    cli(["cluster", "stop"])  # none should run; should one (a regression), stop it


def test_class_init_records_the_class_url_and_port(machine: Path) -> None:
    """class.json says where students connect: the URL, its host and its port."""
    assert cli(["class", "init", "--students", "2", "--url", "nats://class.example:4333"]) == 0
    roster = json.loads((machine / "class" / "class.json").read_text())
    assert (roster["url"], roster["host"], roster["port"]) == (
        "nats://class.example:4333",
        "class.example",
        4333,
    )


def test_server_start_with_the_class_accounts_listens_on_the_class_port(
    machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`server start --config class/accounts.conf` serves the URL the students' files name,
    and the instructor's stream is there before the first student checks."""
    port = free_port()
    cli(["class", "init", "--students", "2", "--url", f"nats://127.0.0.1:{port}"])
    assert cli(["server", "start", "--config", "class/accounts.conf"]) == 0
    assert f"nats://127.0.0.1:{port}" in capsys.readouterr().out
    student = load_env_file(machine / "class" / "students" / "s01.env")

    async def work() -> int:
        nc = await connect(student["NATS_URL"], **creds(machine / "class/students/s01.env"))
        try:
            await nc.jetstream().publish("class.report.03.fail", b"{}", timeout=2)
        finally:
            await nc.close()
        teacher = await connect(student["NATS_URL"], **creds(machine / "class/instructor.env"))
        try:
            return (await teacher.jetstream().stream_info(PROGRESS_STREAM)).state.messages
        finally:
            await teacher.close()

    assert asyncio.run(work()) == 1


def test_server_start_refuses_a_running_server_without_the_class_accounts(
    machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server started before without the accounts is not silently reused for the class."""
    cli(["class", "init", "--students", "2", "--url", f"nats://127.0.0.1:{free_port()}"])
    assert cli(["server", "start"]) == 0
    capsys.readouterr()
    assert cli(["server", "start", "--config", "class/accounts.conf"]) == 2
    err = capsys.readouterr().err
    assert "already running" in err and "without any accounts" in err
    assert "edalab server stop" in err
    assert cli(["server", "stop"]) == 0
    assert cli(["server", "start", "--config", "class/accounts.conf"]) == 0
    assert cli(["server", "start", "--config", "class/accounts.conf"]) == 0  # the same: reused
    assert "already running" in capsys.readouterr().out


def _unreachable_class(monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("EDALAB_CLASS", "1")
    monkeypatch.setenv("NATS_URL", url)
    monkeypatch.setenv("NATS_USER", "s07")
    monkeypatch.setenv("NATS_PASSWORD", "pw")
    return url


def test_class_mode_with_the_class_server_down_is_an_error_not_a_private_server(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EDALAB_CLASS=1 and an unreachable NATS_URL: ensure_server() names the URL and the
    instructor, even with an edalab server of this machine's running, and starts nothing."""
    from edalab import ensure_server
    from tests.internals import local_servers

    assert cli(["server", "start"]) == 0  # a private server this machine ran earlier
    url = _unreachable_class(monkeypatch)
    with pytest.raises(ServerUnreachableError) as err:
        ensure_server()
    assert url in str(err.value) and "ask your instructor" in str(err.value)
    assert local_servers.embedded is None


def test_server_ensure_exits_non_zero_in_class_mode_when_the_class_server_is_down(
    machine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edalab server ensure` (what `make lab` runs first) fails instead of starting a server."""
    url = _unreachable_class(monkeypatch)
    assert cli(["server", "ensure"]) == 2
    err = capsys.readouterr().err
    assert url in err and "instructor" in err
    assert not (machine / "state" / "server.json").exists()


def test_class_mode_without_nats_url_says_to_load_the_env_file(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EDALAB_CLASS=1 with no NATS_URL: the error says to load the class env file."""
    from edalab import ensure_server

    monkeypatch.setenv("EDALAB_CLASS", "1")
    with pytest.raises(ServerError, match=r"NATS_URL is not set.*env file"):
        ensure_server()


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, Path]]:
    """A class of two on one server, with the instructor's stream."""
    out = tmp_path_factory.mktemp("class")
    with class_server(2, out, "edalab-class-mode-test") as (_, srv):
        yield srv, out


async def test_a_student_cannot_fill_the_instructors_stream_with_junk(classroom) -> None:
    """Only the course's exercises and verdicts are stored; junk subjects and huge bodies not."""
    srv, out = classroom
    student = await connect(srv.url, **creds(out / "students" / "s01.env"))
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    try:
        sjs, tjs = student.jetstream(), teacher.jetstream()
        before = (await tjs.stream_info(PROGRESS_STREAM)).state.messages
        for junk in ("class.report.junk.pass", "class.report.03.whatever", "class.report.99.pass"):
            with pytest.raises(nats.js.errors.NoStreamResponseError):
                await sjs.publish(junk, b"{}", timeout=2)
        with pytest.raises(nats.js.errors.APIError):  # a report is small; this is not one
            await sjs.publish("class.report.03.fail", b"x" * 100_000, timeout=2)
        assert (await tjs.stream_info(PROGRESS_STREAM)).state.messages == before
        await sjs.publish("class.report.03.fail", b"{}", timeout=2)
        await sjs.publish("class.report.03.hint", b'{"tier": 1}', timeout=2)
        info = await tjs.stream_info(PROGRESS_STREAM, subjects_filter=">")
        assert info.state.messages == before + 2
        assert set(info.state.subjects or {}) <= {
            f"class.report.s01.03.{v}" for v in ("pass", "fail", "hint")
        } | {f"class.report.s02.03.{v}" for v in ("pass", "fail", "hint")}
    finally:
        await student.close()
        await teacher.close()


async def test_an_older_wide_open_progress_stream_is_narrowed(classroom) -> None:
    """A CLASS_PROGRESS made with `class.report.*.*.*` is brought to the course's subjects."""
    srv, out = classroom
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    try:
        js = teacher.jetstream()
        info = await js.stream_info(PROGRESS_STREAM)
        info.config.subjects = ["class.report.*.*.*"]
        await js.update_stream(info.config)
        await ensure_progress_stream(js)
        assert (await js.stream_info(PROGRESS_STREAM)).config.subjects == report_subjects()
    finally:
        await teacher.close()


async def test_hints_reach_the_instructors_view_like_checks(
    classroom, monkeypatch, tmp_path
) -> None:
    """hint() in class mode reports its tier, then the solution; the page's JSON shows both,
    and the check cells stay as they were."""
    from edalab import wait_for
    from edalab.course import hint
    from edalab.course.classroom import ClassWatcher

    srv, out = classroom
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    watcher = ClassWatcher(teacher.jetstream(), ["s01", "s02"], ["05"])
    await watcher.start()
    for key, value in load_env_file(out / "students" / "s02.env").items():
        monkeypatch.setenv(key, value)  # what `set -a; . s02.env` does
    try:
        hint("05")
        shown = hint("05")
        assert "not reported" not in repr(shown)

        async def second() -> bool:
            return watcher.progress().hint("s02", "05") == "2"

        await wait_for(second, timeout=5, what="s02's second hint in the instructor's view")
        page = watcher.progress().as_json()
        assert page["hints"]["s02/05"] == "2" and page["cells"]["s02/05"] == "-"
        assert "05:2" in str(watcher.progress().table())
    finally:
        await watcher.stop()
        await teacher.close()


def test_a_class_server_for_other_machines_listens_on_every_interface(tmp_path: Path) -> None:
    """A class URL naming this machine's loopback keeps the server on loopback; any other
    host (the students' machines connect from elsewhere) makes it listen on every interface."""
    from edalab.course.cli import _class_address

    for url, host in [("nats://127.0.0.1:4333", "127.0.0.1"), ("nats://class.lan:4444", "0.0.0.0")]:
        Classroom.generate(1, bcrypt_rounds=4).write(tmp_path / host, url=url)
        assert _class_address(tmp_path / host, 0) == (host, int(url.rsplit(":", 1)[1]))
    assert _class_address(tmp_path / "0.0.0.0", 5000) == ("0.0.0.0", 5000)  # --port wins


def test_notebook_tests_ignore_a_class_env_file_in_the_shell() -> None:
    """`make test` runs notebooks on their own servers even from a student's shell."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    nb_env = next(line for line in makefile.splitlines() if line.startswith("NB_ENV :="))
    assert "-u NATS_URL" in nb_env and "-u EDALAB_CLASS" in nb_env


async def test_a_report_the_stream_does_not_take_says_whom_to_ask(classroom) -> None:
    """A stream made by an older course (no exercise 05 yet): the report says what to run."""
    from edalab.course.classroom import report_check

    srv, out = classroom
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    student = await connect(srv.url, **creds(out / "students" / "s01.env"))
    try:
        js = teacher.jetstream()
        info = await js.stream_info(PROGRESS_STREAM)
        info.config.subjects = [s for s in report_subjects() if ".05." not in s]
        await js.update_stream(info.config)
        why = await report_check(student.jetstream(), "05", True, "ok")
        assert why is not None and "edalab class progress" in why and "instructor" in why
    finally:
        await ensure_progress_stream(teacher.jetstream())
        await student.close()
        await teacher.close()


def test_the_instructors_page_shows_the_hints_each_student_needed(tmp_path: Path) -> None:
    """The page's script (run by Node with a stub document) writes 'hint 2' and 'solution'
    into the cells the JSON names, and nothing into the others."""
    import re
    import shutil
    import subprocess

    from edalab.course.classroom import PAGE, ClassProgress

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    progress = ClassProgress(
        ["s01", "s02"],
        ["05", "06"],
        {("s01", "05"): {"passed": True, "message": "ok"}},
        {("s01", "05"): {"tier": 2}, ("s02", "06"): {"tier": 3, "solution": True}},
    )
    data = json.dumps({**progress.as_json(), "reports": 3})
    script = re.search(r"<script>(.*)</script>", PAGE, re.S)
    assert script is not None
    stub = (
        "const els = {};\n"
        "globalThis.document = {getElementById: id => (els[id] ??= {innerHTML: ''})};\n"
        f"globalThis.fetch = async () => ({{json: async () => ({data})}});\n"
        "globalThis.setInterval = () => 0;\n"
        + script.group(1).replace("refresh(); setInterval(refresh, 1000);", "")
        + "\nrefresh().then(() => console.log(els.progress.innerHTML));\n"
    )
    (tmp_path / "page.js").write_text(stub)
    html = subprocess.run([node, str(tmp_path / "page.js")], capture_output=True, text=True)
    assert html.returncode == 0, html.stderr
    cells = dict(re.findall(r'data-cell="([^"]+)">(.*?)</td>', html.stdout))
    assert cells["s01/05"].startswith("pass") and "hint 2" in cells["s01/05"]
    assert "solution" in cells["s02/06"] and "hint" not in cells["s01/06"]


def test_a_local_cluster_refuses_the_class_it_could_not_serve(
    machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cluster start --config class/accounts.conf` would listen where no student looks: refused."""
    cli(["class", "init", "--students", "2", "--url", "nats://127.0.0.1:4333"])
    assert cli(["cluster", "start", "--config", "class/accounts.conf"]) == 2
    err = capsys.readouterr().err
    assert "nats://127.0.0.1:4333" in err and "edalab server start --config" in err
