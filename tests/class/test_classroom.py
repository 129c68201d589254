"""Class mode: one server, one account per student, progress reported to the instructor."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edalab import (
    AuthenticationError,
    NatsCluster,
    NatsServer,
    PermissionDenied,
    connect,
    find_nats_server,
    stream_leader,
    subscribe_checked,
    wait_for,
)
from edalab.course import fresh_stream
from edalab.course.classroom import (
    PROGRESS_STREAM,
    Classroom,
    ClassWatcher,
    load_env_file,
)
from edalab.course.cli import main as cli
from edalab.course.workshop import reset
from tests.classes import class_server, creds

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Classroom, NatsServer, Path]]:
    """A class of three on one embedded server, its files written, the progress stream made."""
    out = tmp_path_factory.mktemp("class")
    with class_server(3, out, "edalab-class-test") as (classroom, srv):
        yield classroom, srv, out


def test_class_init_writes_private_credentials_and_a_config_the_server_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edalab class init` writes 0600 credentials, accounts nats-server validates, Helm values."""
    assert cli(["class", "init", "--students", "3", "--out", str(tmp_path / "c")]) == 0
    out = tmp_path / "c"
    assert "students/*.env" in capsys.readouterr().out
    for name in ["accounts.conf", "instructor.env", "helm-values.yaml", "students/s01.env"]:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in (out / "students").iterdir()) == ["s01.env", "s02.env", "s03.env"]
    student = load_env_file(out / "students" / "s02.env")
    assert student["NATS_USER"] == "s02" and student["EDALAB_CLASS"] == "1"
    conf = (out / "accounts.conf").read_text()
    assert student["NATS_PASSWORD"] not in conf  # only bcrypt hashes reach the server's files
    wrapper = tmp_path / "server.conf"
    wrapper.write_text(
        f"jetstream {{ store_dir: {json.dumps(str(tmp_path / 'js'))} }}\n"
        "include ./c/accounts.conf\n"
    )  # fmt: skip  (relative to server.conf)
    check = subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(wrapper)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    accounts = json.loads(conf.removeprefix("accounts: "))
    assert set(accounts) == {"INSTRUCTOR", "S01", "S02", "S03"}
    assert accounts["S01"]["jetstream"]["max_streams"] > 0
    helm = yaml.safe_load((out / "helm-values.yaml").read_text())
    assert helm["config"]["merge"]["accounts"] == accounts  # one generator for both
    assert helm["config"]["jetstream"]["enabled"] is True


async def test_each_student_has_their_own_streams_and_cannot_touch_anothers(room) -> None:
    """Two students create ORDERS; each sees only their own; reset deletes only the caller's."""
    _, srv, out = room
    ann = await connect(srv.url, **creds(out / "students" / "s01.env"))
    bob = await connect(srv.url, **creds(out / "students" / "s02.env"))
    try:
        ajs, bjs = ann.jetstream(), bob.jetstream()
        await fresh_stream(ajs, "ORDERS", ["order.>"])
        await fresh_stream(bjs, "ORDERS", ["order.>"])  # same name, no collision
        for i in range(5):
            await ajs.publish("order.placed", f"ann-{i}".encode())
        await bjs.publish("order.placed", b"bob-0")
        assert (await ajs.stream_info("ORDERS")).state.messages == 5
        assert (await bjs.stream_info("ORDERS")).state.messages == 1
        sub = await bjs.pull_subscribe("order.>", durable="spy", stream="ORDERS")
        got = [m.data for m in await sub.fetch(10, timeout=1)]
        unauthorized = sum(not d.startswith(b"bob") for d in got)
        assert got == [b"bob-0"] and unauthorized == 0
        with pytest.raises(PermissionDenied, match=r"class\.report"):
            await subscribe_checked(bob, "class.report.>")  # nobody reads the class's reports
        deleted = await reset(bjs)
        assert deleted == ["stream ORDERS"]
        assert (await ajs.stream_info("ORDERS")).state.messages == 5  # ann's is untouched
    finally:
        await ann.close()
        await bob.close()


async def test_a_refused_student_login_names_the_student(room) -> None:
    """A wrong password is an AuthenticationError naming the user, never showing a password."""
    _, srv, out = room
    right = load_env_file(out / "students" / "s03.env")["NATS_PASSWORD"]
    with pytest.raises(AuthenticationError) as err:
        await connect(srv.url, user="s03", password="not-" + right, timeout=3)
    assert "s03" in str(err.value) and right not in str(err.value)


async def test_checks_in_class_mode_reach_the_instructors_live_view(
    room, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A student's check() (credentials from the env file only) shows up in the live table."""
    from edalab.course.exercises import check

    _, srv, out = room
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    watcher = ClassWatcher(teacher.jetstream(), ["s01", "s02", "s03"], ["02", "03"])
    await watcher.start()
    for key, value in load_env_file(out / "students" / "s01.env").items():
        monkeypatch.setenv(key, value)  # what `set -a; . s01.env` does for a student
    nc = await connect()  # NATS_URL + NATS_USER/NATS_PASSWORD from the environment
    try:
        result = await check("03", nc.jetstream())
        assert not result.passed and "not reported" not in result.message

        async def arrived() -> bool:
            return watcher.progress().state("s01", "03") == "fail"

        await wait_for(arrived, timeout=5, what="s01's report in the instructor's view")
        assert watcher.progress().state("s02", "03") == "-"
        info = await teacher.jetstream().stream_info(PROGRESS_STREAM)
        assert info.state.messages >= 1
    finally:
        await watcher.stop()
        await nc.close()
        await teacher.close()


def test_class_progress_prints_students_by_exercises(room, capsys) -> None:
    """`edalab class progress` connects as the instructor and prints one row per student."""
    _, srv, out = room
    assert cli(["class", "progress", "--dir", str(out), "--url", srv.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "student" and "03" in lines[0].split()
    *table, key = lines
    assert [line.split()[0] for line in table[2:]] == ["s01", "s02", "s03"]
    assert key.startswith("ok passed, x checked but not yet")
    assert max(len(line) for line in lines) <= 100  # every exercise fits a terminal


def test_the_instructor_page_shows_progress_live_in_a_browser(room) -> None:
    """`edalab class progress --serve`: Chromium sees a later report appear without a reload."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.chromium import launch, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    from edalab.course.classroom import report_check

    _, srv, out = room
    view = subprocess.Popen(
        [sys.executable, "-m", "edalab.course.cli", "class", "progress", "--dir", str(out),
         "--url", srv.url, "--serve", "0", "--for-seconds", "60"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert view.stdout is not None
        first = view.stdout.readline()  # "live class progress: http://127.0.0.1:PORT/"
        assert "http://127.0.0.1:" in first, first
        url = first.split()[-1]

        async def report() -> str | None:
            student = await connect(srv.url, **creds(out / "students" / "s02.env"))
            try:
                return await report_check(student.jetstream(), "05", True, "ok")
            finally:
                await student.close()

        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("td[data-cell='s02/05']", timeout=10_000)
            assert page.inner_text("td[data-cell='s02/05']") == "-"
            with ThreadPoolExecutor(1) as pool:  # playwright's sync API owns this thread's loop
                assert pool.submit(asyncio.run, report()).result(timeout=10) is None
            # The page refreshes itself (no reload): wait for the cell to turn green.
            page.wait_for_selector("td.pass[data-cell='s02/05']", timeout=10_000)
            ARTIFACTS = ROOT / "test-artifacts"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser-class-progress.png"))
            browser.close()
    finally:
        view.terminate()
        view.communicate(timeout=10)  # reaps it and closes its pipe


def test_the_same_accounts_run_a_three_node_cluster(tmp_path: Path) -> None:
    """The class's accounts.conf starts a routed JetStream cluster; a student gets an R3 stream."""
    room = Classroom.generate(2, bcrypt_rounds=4)
    room.write(tmp_path)
    with NatsCluster(3, base_dir=tmp_path / "nodes", config=room.accounts_conf()) as cluster:

        async def work() -> int:
            nc = await connect(cluster.urls, **creds(tmp_path / "students" / "s01.env"))
            try:
                js = nc.jetstream()
                await fresh_stream(js, "ORDERS", ["order.>"], num_replicas=3)
                await stream_leader(js, "ORDERS")  # an R3 stream takes writes once it has one
                await js.publish("order.placed", b"{}")
                info = await js.stream_info("ORDERS")
                return len(info.cluster.replicas or []) + 1 if info.cluster else 0
            finally:
                await nc.close()

        assert asyncio.run(work()) == 3


def test_five_students_at_once_lose_nothing_and_see_nothing_of_each_other(tmp_path: Path) -> None:
    """The class-size benchmark with 5 student processes: no leak, no lost report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "class_load.py"), "--students", "5",
         "--timeout", "120", "--json", str(tmp_path / "figures.json")],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["failed_students"] == []
    assert figures["checks_completed"] >= 5
    assert figures["unauthorized_deliveries"] == 0
    assert figures["lost_progress_reports"] == 0
    assert figures["events_consumed"] == 5 * 20


def test_compose_class_profile_mounts_the_generated_configuration() -> None:
    """`docker compose --profile class config`: the class service runs class/nats-server.conf."""
    from tests.unit.test_compose import _compose

    out = subprocess.run(
        [_compose(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "class", "config",
         "--format", "json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    service = json.loads(out.stdout)["services"]["class"]
    assert service["command"] == ["-c", "/etc/nats/nats-server.conf"]
    mount = next(v for v in service["volumes"] if v["target"] == "/etc/nats")
    assert Path(mount["source"]).name == "class" and mount.get("read_only")
    assert "include ./accounts.conf" in Classroom.server_conf()


def test_reset_from_the_cli_uses_the_students_credentials(room, monkeypatch, capsys) -> None:
    """`edalab reset --yes` with a student's env deletes that student's streams only."""
    _, srv, out = room

    async def make(env: str) -> None:
        nc = await connect(srv.url, **creds(out / "students" / env))
        await fresh_stream(nc.jetstream(), "USERS", ["user.>"])
        await nc.close()

    asyncio.run(make("s01.env"))
    asyncio.run(make("s03.env"))
    for key, value in load_env_file(out / "students" / "s03.env").items():
        monkeypatch.setenv(key, value)
    assert cli(["reset", "--yes"]) == 0
    assert "stream USERS" in capsys.readouterr().out

    async def still_there() -> int:
        nc = await connect(srv.url, **creds(out / "students" / "s01.env"))
        try:
            return (await nc.jetstream().stream_info("USERS")).state.messages
        finally:
            await nc.close()

    assert asyncio.run(still_there()) == 0  # s01's USERS exists (empty), s03's is gone


def _as_student(monkeypatch: pytest.MonkeyPatch, out: Path, seat: str) -> None:
    for key, value in load_env_file(out / "students" / f"{seat}.env").items():
        monkeypatch.setenv(key, value)  # what `set -a; . sNN.env` does


async def test_a_notebooks_connect_cell_logs_in_as_the_student(room, monkeypatch) -> None:
    """`server = ensure_server(); await connect(server)` and raw nats.connect both use the env."""
    import nats

    from edalab import ensure_server

    _, _, out = room
    _as_student(monkeypatch, out, "s02")
    server = ensure_server(quiet=True)
    assert server.source == "NATS_URL" and server.options["user"] == "s02"
    nc = await connect(server)  # the cell every lesson starts with
    raw = await nats.connect(server.url, **server.options)  # notebook 00's raw cell
    try:
        await nc.jetstream().account_info()
        await raw.jetstream().account_info()
    finally:
        await nc.close()
        await raw.close()


async def test_checks_on_a_lesson_server_still_report_and_progress_does_not(
    room, monkeypatch
) -> None:
    """A check whose js is another server reports to the class; `progress` never reports."""
    from edalab.course.exercises import check
    from edalab.course.workshop import progress

    _, srv, out = room
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    watcher = ClassWatcher(teacher.jetstream(), ["s01", "s02", "s03"], ["07"])
    await watcher.start()
    _as_student(monkeypatch, out, "s03")
    try:
        with NatsServer(name="edalab-lesson-07") as lesson:  # like lesson_server("07")
            nc = await connect(lesson.url)
            try:
                result = await check("07", nc.jetstream())
                assert "not reported" not in result.message

                async def arrived() -> bool:
                    return watcher.progress().state("s03", "07") == "fail"

                await wait_for(arrived, timeout=5, what="s03's report from the lesson server")
                before = watcher.reports
                await progress(nc.jetstream())  # re-checks everything, reports nothing
                await teacher.flush()
                assert watcher.reports == before
            finally:
                await nc.close()
    finally:
        await watcher.stop()
        await teacher.close()


async def test_a_pass_stays_a_pass_when_a_later_attempt_fails(room) -> None:
    """The instructor sees the best result: pass, then fail, still shows pass (also replayed)."""
    from edalab.course.classroom import read_progress, report_check

    _, srv, out = room
    student = await connect(srv.url, **creds(out / "students" / "s01.env"))
    teacher = await connect(srv.url, **creds(out / "instructor.env"))
    try:
        assert await report_check(student.jetstream(), "13", True, "ok") is None
        assert await report_check(student.jetstream(), "13", False, "broke it") is None
        table = await read_progress(teacher.jetstream(), ["s01"], ["13"])
        assert table.state("s01", "13") == "pass"
    finally:
        await student.close()
        await teacher.close()


def test_credentials_in_the_class_url_reach_no_file(tmp_path: Path) -> None:
    """Each seat logs in as itself: a password in the URL given is written nowhere."""
    classroom = Classroom.generate(2, bcrypt_rounds=4)
    classroom.write(tmp_path, url="nats://admin:instructor-s3cret@class.example:4222")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 7  # accounts, server config, Helm values, 3 env files, roster
    assert not [
        p for p in files if "instructor-s3cret" in p.read_text() or "admin@" in p.read_text()
    ]
    assert (
        load_env_file(tmp_path / "students" / "s01.env")["NATS_URL"] == "nats://class.example:4222"
    )
    assert json.loads((tmp_path / "class.json").read_text())["url"] == "nats://class.example:4222"
