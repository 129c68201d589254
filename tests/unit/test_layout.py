"""tests/ in folders, one per kind of test; each folder's name is a registered marker."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def test_each_test_file_is_in_a_folder_named_by_a_registered_marker() -> None:
    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    markers = {m.split(":")[0] for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]}
    folders = {p.parent.name for p in TESTS.glob("*/test_*.py")}
    assert folders <= markers, folders - markers
    assert not list(TESTS.glob("test_*.py")), "a test file belongs in tests/<kind>/"


def test_a_test_carries_its_folders_marker(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("server") is None


def test_no_two_test_files_share_a_name() -> None:
    """The folders have no __init__.py: pytest imports each test file by its bare name, and a
    second file of the same name in another folder fails to import in the same run."""
    names = [p.name for p in TESTS.glob("*/test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
