"""Server management: finding the binary, start/stop/restart, ensure_server, connect, CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edalab import (
    NatsServer,
    ServerBinaryNotFound,
    ServerStartError,
    ServerUnreachableError,
    connect,
    ensure_server,
    find_nats_server,
    wait_for,
)
from edalab.course.cli import main as cli
from tests.internals import local_servers, probe, read_state, wait_pid_gone


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No NATS_URL, no recorded edalab server, no embedded server from another test."""
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path / "state"))
    local_servers.stop()
    yield tmp_path
    local_servers.stop()


def test_finds_the_binary_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The binary is found next to the interpreter even when PATH lacks the venv."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("EDALAB_NATS_SERVER", raising=False)
    found = find_nats_server()
    assert found.parent == Path(sys.executable).parent


def test_override_must_be_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A wrong EDALAB_NATS_SERVER is reported, not silently replaced."""
    monkeypatch.setenv("EDALAB_NATS_SERVER", str(tmp_path / "nope"))
    with pytest.raises(ServerBinaryNotFound, match="EDALAB_NATS_SERVER"):
        find_nats_server()


def test_start_stop_frees_store_and_port(tmp_path: Path) -> None:
    """A server answers while running; after stop nothing answers and temp dirs are gone."""
    srv = NatsServer()
    srv.start()
    url, store = srv.url, Path(str(srv.store_dir))
    assert probe(url) is None
    assert store.is_dir()
    srv.stop()
    assert probe(url) is not None
    assert not store.exists()
    assert not srv.running


async def test_async_context_manager_and_jetstream() -> None:
    """`async with NatsServer()` gives a JetStream-enabled server."""
    async with NatsServer() as srv:
        nc = await connect(srv.url)
        info = await nc.jetstream().account_info()
        assert info.limits is not None
        await nc.close()
    assert not srv.running


async def test_restart_keeps_streams_on_the_same_store(tmp_path: Path) -> None:
    """Restarting reuses port and store: a file-backed stream and its messages survive."""
    with NatsServer(store_dir=tmp_path / "store") as srv:
        nc = await connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.one", b"1")
        await nc.close()
        port = srv.port
        await asyncio.to_thread(srv.restart)
        assert srv.port == port
        nc = await connect(srv.url)
        info = await nc.jetstream().stream_info("KEEP")
        assert info.state.messages == 1
        await nc.close()


def test_bad_config_fails_with_the_log(tmp_path: Path) -> None:
    """A server that exits at start raises ServerStartError quoting the server's log."""
    srv = NatsServer(config="this is { not valid", run_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        srv.start()
    assert time.monotonic() - started < 10
    assert "exited" in info.value.reason or "not healthy" in info.value.reason
    srv.stop()


def test_sync_interval_reaches_the_config(tmp_path: Path) -> None:
    """sync_interval is written into the jetstream block and the server accepts it."""
    with NatsServer(sync_interval="always", run_dir=tmp_path) as srv:
        assert 'sync_interval: "always"' in srv.config_file.read_text()
        assert probe(srv.url) is None


async def test_connect_to_dead_url_fails_fast_naming_it() -> None:
    """Connecting where nothing listens fails in seconds with the URL in the message."""
    with NatsServer() as srv:
        url = srv.url
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as info:
        await connect(url, timeout=3)
    assert time.monotonic() - started < 5
    assert info.value.url == url and url in str(info.value)


async def test_cancelling_a_connect_in_flight_propagates_and_leaves_no_attempt() -> None:
    """A cancelled connect raises CancelledError (not ServerUnreachableError) and ends its
    attempt. The first server is frozen (SIGSTOP): the kernel still accepts the TCP
    connection, but no INFO comes, so nats-py's attempt hangs there until cancelled."""
    with NatsServer() as frozen, NatsServer() as running:
        assert frozen.pid is not None
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            url = f"{frozen.url},{running.url}"
            connecting = asyncio.create_task(connect(url, timeout=30, dont_randomize=True))

            def attempts() -> list[asyncio.Task[object]]:
                return [
                    t
                    for t in asyncio.all_tasks()
                    if getattr(t.get_coro(), "__qualname__", "") == "Client.connect"
                ]

            async def in_flight() -> bool:
                return bool(attempts())

            await wait_for(in_flight, timeout=10, what="nats-py's connection attempt")
            [attempt] = attempts()
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(connecting, 5)
            assert attempt.done()
        finally:
            os.kill(frozen.pid, signal.SIGCONT)


async def test_connect_to_a_non_nats_port_fails_clearly() -> None:
    """A port that answers with something else than NATS is named as such."""

    async def other(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(other, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    with pytest.raises(ServerUnreachableError, match="not a NATS server"):
        await connect(f"nats://127.0.0.1:{port}", timeout=2)
    srv.close()


def test_ensure_server_prefers_a_reachable_nats_url(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, nats_url: str
) -> None:
    """A reachable NATS_URL wins."""
    monkeypatch.setenv("NATS_URL", nats_url)
    handle = ensure_server()
    assert handle.source == "NATS_URL" and handle.url == nats_url


def test_ensure_server_falls_back_from_a_dead_nats_url(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreachable NATS_URL is reported, and an embedded server is started instead."""
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:1")
    handle = ensure_server()
    assert handle.source == "embedded"
    assert probe(handle.url) is None
    assert "not reachable" in capsys.readouterr().err
    assert ensure_server() == handle, "a second call reuses the embedded server"
    assert local_servers.embedded is not None and local_servers.embedded.url == handle.url


def test_cli_start_status_stop_and_ensure_server_uses_it(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edalab server start` records a server that ensure_server reuses; stop ends it."""
    assert cli(["server", "status"]) == 1
    assert cli(["server", "start", "--store", str(isolated / "store")]) == 0
    state = read_state()
    assert state is not None and state.alive()
    try:
        assert cli(["server", "start"]) == 0
        assert "already running" in capsys.readouterr().out
        handle = ensure_server()
        assert handle.source == "edalab server" and handle.url == state.url
        assert cli(["server", "status"]) == 0
        assert state.url in capsys.readouterr().out
    finally:
        assert cli(["server", "stop"]) == 0
    assert probe(state.url) is not None
    assert read_state() is None


def test_cli_status_says_when_the_recorded_server_is_gone(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stale state file (the server was killed) is reported clearly."""
    assert cli(["server", "start"]) == 0
    state = read_state()
    assert state is not None
    os.kill(state.pid, 9)
    assert wait_pid_gone(state.pid, 5)
    capsys.readouterr()
    assert cli(["server", "status"]) == 1
    assert "is gone" in capsys.readouterr().out
    assert ensure_server().source == "embedded"


async def test_start_after_kill_reuses_port_and_store(tmp_path: Path) -> None:
    """After kill -9, start() comes back on the same port with the stream intact."""
    with NatsServer(store_dir=tmp_path / "store") as srv:
        nc = await connect(srv.url)
        await nc.jetstream().add_stream(name="K", subjects=["k.>"])
        await nc.jetstream().publish("k.1", b"1")
        await nc.close()
        url = srv.url
        srv.kill()
        assert probe(url) is not None
        await asyncio.to_thread(srv.start)
        assert srv.url == url
        nc = await connect(srv.url)
        assert (await nc.jetstream().stream_info("K")).state.messages == 1
        await nc.close()
