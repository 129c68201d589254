"""The edalab command's help: one source (COMMANDS) for the overview and every command's help."""

from __future__ import annotations

import pytest

from edalab.course import cli


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_lists_every_command_with_the_summary_its_own_help_starts_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`edalab --help` names each runnable command with the line its own --help opens with."""
    overview = _help(capsys)
    groups = {c.rsplit(" ", 1)[0] for c in cli.COMMANDS if " " in c}
    for command, summary in cli.COMMANDS.items():
        own = _help(capsys, *command.split())
        assert summary[:1].upper() + summary[1:] in own, command
        if command not in groups:
            assert f"edalab {command} {summary}" in overview, command
    assert "edalab server start" not in (cli.__doc__ or "")  # no second list to keep in step
