"""Secrets stay secret: no password, token or seed in an error, repr, log, CLI output or file."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from edalab import (
    AuthenticationError,
    InvalidURLError,
    NatsServer,
    ServerHandle,
    ServerStartError,
    ServerUnreachableError,
    User,
    authorization_config,
    connect,
    nkey_user,
)
from edalab.course.cli import main as cli
from tests.internals import (
    ServerState,
    mask_url,
    read_cluster_state,
    redact,
    running_server,
    save_cluster_state,
    secrets_in_config,
    write_private,
)

ANN_PW = "ann-s3cret-pw"
ADMIN_PW = "admin-s3cret-pw"
TOKEN = "tok-s3cret-42"
SECRETS = (ANN_PW, ADMIN_PW, TOKEN, "wrong-s3cret")


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


def assert_hidden(*texts: str) -> None:
    """None of the course's secrets (nor a seed) appears in any of ``texts``."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} shown in: {text}"
        assert "SUA" not in text, f"an nkey seed shown in: {text}"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, str]]:
    """A server with password users ann and admin, and an nkey user bot."""
    bot, seed = nkey_user("bot")
    users = [User("ann", password=ANN_PW), User("admin", password=ADMIN_PW), bot]
    run_dir = tmp_path_factory.mktemp("secured-run")
    with NatsServer(config=authorization_config(users), run_dir=run_dir) as srv:
        yield srv, seed


def with_credentials(url: str, userinfo: str) -> str:
    """``nats://host:port`` with ``userinfo@`` put in."""
    return url.replace("nats://", f"nats://{userinfo}@")


async def test_a_password_in_the_url_connects_and_a_wrong_one_names_the_user(
    secured: tuple[NatsServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Credentials in the URL work; refused, the error names ann and masks the password."""
    srv, _ = secured
    nc = await connect(with_credentials(srv.url, f"ann:{ANN_PW}"))
    assert nc.is_connected
    await nc.close()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as info:
        await connect(with_credentials(srv.url, "ann:wrong-s3cret"), timeout=5)
    err = info.value
    assert err.identity == "ann", "the user from the URL, not 'anonymous'"
    assert with_credentials(srv.url, "ann:***") in str(err)
    assert_hidden(str(err), repr(err), err.url, caplog.text)


async def test_a_refused_password_option_and_token_url_are_masked(
    secured: tuple[NatsServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    """user=/password= and a bare token in the URL: refused, named, and never shown."""
    srv, _ = secured
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as by_option:
        await connect(srv.url, user="admin", password="wrong-s3cret", timeout=5)
    assert by_option.value.identity == "admin"
    with pytest.raises(AuthenticationError) as by_token:
        await connect(with_credentials(srv.url, TOKEN), timeout=5)
    assert by_token.value.identity == "token user"
    assert with_credentials(srv.url, "***") in str(by_token.value)
    for err in (by_option.value, by_token.value):
        assert_hidden(str(err), repr(err), caplog.text)


async def test_a_refused_nkey_shows_its_public_key_never_its_seed(
    secured: tuple[NatsServer, str],
) -> None:
    """An unknown nkey is named by its public key; the seed appears nowhere."""
    srv, _ = secured
    _, stranger_seed = nkey_user("stranger")
    with pytest.raises(AuthenticationError) as info:
        await connect(srv.url, nkeys_seed_str=stranger_seed, timeout=5)
    assert info.value.identity.startswith("nkey U")
    assert stranger_seed not in str(info.value) and stranger_seed not in repr(info.value)


async def test_unreachable_and_malformed_urls_mask_the_password() -> None:
    """Nothing listening, or a port that is not a number: the error keeps the user only."""
    with pytest.raises(ServerUnreachableError) as gone:
        await connect(f"nats://ann:{ANN_PW}@127.0.0.1:1", timeout=2)
    assert "nats://ann:***@127.0.0.1:1" in str(gone.value)
    with pytest.raises(InvalidURLError) as bad:
        await connect(f"nats://ann:{ANN_PW}@localhost:notaport", timeout=2)
    assert "port 'notaport'" in str(bad.value)
    assert_hidden(str(gone.value), repr(gone.value), str(bad.value), repr(bad.value))


def test_reprs_hide_the_password(secured: tuple[NatsServer, str]) -> None:
    """ServerHandle masks its URL; NatsServer leaves its configuration (with passwords) out."""
    srv, _ = secured
    handle = ServerHandle(with_credentials(srv.url, f"ann:{ANN_PW}"), "NATS_URL")
    assert repr(handle) == f"<NATS server at {with_credentials(srv.url, 'ann:***')} (NATS_URL)>"
    assert ANN_PW in srv.config, "the test must hold a secret to hide"
    assert_hidden(repr(handle), str(handle), repr(srv), str(srv))


def test_the_log_tail_in_a_start_error_is_masked(tmp_path: Path) -> None:
    """A server that fails to start quotes its log, with the configured password masked.

    nats-server appends to an existing log; a line echoing the password (as a debug
    dump of the configuration might) is planted there to prove the tail is masked.
    """
    (tmp_path / "nats-server.log").write_text(f"[DBG] authorization: ann {ANN_PW}\n")
    config = authorization_config([User("ann", password=ANN_PW)]) + "\nnot valid {{"
    srv = NatsServer(config=config, run_dir=tmp_path, start_timeout=5)
    with pytest.raises(ServerStartError) as info:
        srv.start()
    srv.stop()
    assert "ann ***" in info.value.log_tail, info.value.log_tail
    assert "Parse error" in info.value.log_tail, "stderr of the server is quoted too"
    assert_hidden(str(info.value), repr(info.value), info.value.log_tail)


def test_files_holding_credentials_are_mode_0600(
    secured: tuple[NatsServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server configuration, its log and error output, and the state files are 0600."""
    srv, _ = secured
    for path in (srv.config_file, srv.log_file, srv.error_file):
        assert mode(path) == 0o600, (path, oct(mode(path)))
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    state = ServerState(1, with_credentials(srv.url, f"ann:{ANN_PW}"), "", "", "", "now")
    state.save()
    assert mode(state.path) == 0o600
    nodes = {"n1": {"pid": 1, "url": srv.url, "monitor_url": "", "store": ""}}
    assert mode(save_cluster_state(nodes)) == 0o600
    assert read_cluster_state() == nodes


def test_write_private_makes_an_open_file_private(tmp_path: Path) -> None:
    """Rewriting a file that others could read leaves it 0600, never readable in between."""
    path = tmp_path / "creds"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new secret")
    assert path.read_text() == "new secret" and mode(path) == 0o600
    assert not list(tmp_path.glob(".creds.*")), "no temporary file left behind"


def test_mask_and_redact_cover_urls_seeds_and_config_values() -> None:
    """mask_url keeps users, hides passwords and tokens; redact hides seeds and settings."""
    _, seed = nkey_user("x")
    assert mask_url("nats://a:p@h:1,tls://tok@h:2,h:3") == "nats://a:***@h:1,tls://***@h:2,h:3"
    assert mask_url("a:p@h:1, tok@h:2") == "a:***@h:1, ***@h:2"
    text = f'password: "{ANN_PW}", token = {TOKEN}, seed {seed}, url nats://b:{ADMIN_PW}@h'
    shown = redact(text)
    assert shown == 'password: "***", token = ***, seed ***, url nats://b:***@h'
    assert redact(f"see {ANN_PW}.", [ANN_PW]) == "see ***."
    config = authorization_config([User("ann", password=ANN_PW)]) + f'\ntoken: "{TOKEN}"'
    assert set(secrets_in_config(config)) == {ANN_PW, TOKEN}


def test_an_unreachable_nats_url_is_reported_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NATS_URL with a password that does not answer is reported without the password."""
    monkeypatch.setenv("NATS_URL", f"nats://ann:{ANN_PW}@127.0.0.1:1")
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    assert running_server() is None
    err = capsys.readouterr().err
    assert "NATS_URL=nats://ann:***@127.0.0.1:1 is not reachable" in err
    assert_hidden(err)


async def cli_run(argv: list[str]) -> int:
    """The CLI runs its own event loop: call it from a thread."""
    return await asyncio.to_thread(cli, argv)


async def test_the_cli_masks_urls_and_fails_in_one_line(
    secured: tuple[NatsServer, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """reset/progress with credentials in --url: output masked; refused or bad URL: one line."""
    srv, _ = secured
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    admin = with_credentials(srv.url, f"admin:{ADMIN_PW}")
    assert await cli_run(["reset", "--yes", "--url", admin]) == 0
    out = capsys.readouterr()
    assert f"on {with_credentials(srv.url, 'admin:***')}" in out.out
    assert_hidden(out.out, out.err)
    wrong = with_credentials(srv.url, "ann:wrong-s3cret")
    for argv in (["progress", "--url", wrong], ["reset", "--yes", "--url", wrong]):
        assert await cli_run(argv) == 2
        out = capsys.readouterr()
        assert out.err.count("\n") == 1 and "refused the credentials of ann" in out.err
        assert_hidden(out.out, out.err)
    bad_urls = (
        "localhost:notaport",
        f"ann:{ANN_PW}@localhost:notaport",
        f"nats://ann:{ANN_PW}@localhost:99999",
        f"nats://ann:{ANN_PW}@[::1:4222",
        "http://x:1",
    )
    for bad in bad_urls:
        assert await cli_run(["progress", "--url", bad]) == 2
        out = capsys.readouterr()
        assert out.err.startswith("edalab: invalid NATS URL") and out.err.count("\n") == 1
        assert "Traceback" not in out.err
        assert_hidden(out.out, out.err)


def test_cli_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    """`edalab --help` and every subcommand's help read as plain text (no RST backticks)."""
    commands = [
        [],
        ["server"],
        ["server", "start"],
        ["server", "ensure"],
        ["server", "status"],
        ["cluster"],
        ["cluster", "start"],
        ["reset"],
        ["progress"],
    ]
    for argv in commands:
        with pytest.raises(SystemExit):
            cli([*argv, "--help"])
        text = capsys.readouterr().out
        assert text.startswith("usage: edalab"), argv
        assert "`" not in text, (argv, text)
