"""The library stands alone: pytest only in its plugin, which installing edalab registers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "edalab"
TEST_TOOLS = ("pytest", "pytest_asyncio", "_pytest")


def module_name(path: Path) -> str:
    """``src/edalab/course/cli.py`` -> ``edalab.course.cli``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_testing_plugin_imports_pytest() -> None:
    """No module of edalab but edalab.testing names pytest in an import."""
    offenders = [
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if p.name != "testing.py" and imported(p) & set(TEST_TOOLS)
    ]
    assert offenders == []


def test_every_library_module_imports_without_pytest() -> None:
    """With pytest unimportable, every library module and the course's checkers still import.

    (``edalab.course.bench`` is left out until it takes EventFactory from
    ``edalab._factories``; ``edalab.testing`` is the plugin and needs pytest.)
    """
    modules = sorted(
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if module_name(p) not in ("edalab.testing", "edalab.course.bench")
    )
    code = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {TEST_TOOLS!r}:
            sys.modules[name] = None  # any import of it now raises ImportError
        for name in {modules!r}:
            importlib.import_module(name)
        print(len({modules!r}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(modules))


def test_the_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    """pyproject registers edalab.testing with pytest, so installing edalab brings the fixtures."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"edalab": "edalab.testing"}


def test_a_service_test_gets_the_fixtures_from_the_plugin(tmp_path: Path) -> None:
    """A test file with no conftest uses nats_url and js from the plugin.

    Where the installed edalab predates the entry point, ``-p edalab.testing`` loads the
    module as the entry point would (both at once would register it twice).
    """
    installed = any(ep.name == "edalab" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "edalab.testing"]
    (tmp_path / "test_service.py").write_text(
        textwrap.dedent(
            '''
            import pytest
            from edalab import EventFactory, ensure_stream, publish_event

            @pytest.mark.asyncio(loop_scope="session")
            async def test_publish(nats_url, js):
                """The fixtures give a live JetStream."""
                assert nats_url.startswith("nats://")
                await ensure_stream(js, "SVC", ["svc.>"])
                ack = await publish_event(js, EventFactory()("svc.created"))
                assert ack.stream == "SVC" and ack.seq == 1
            '''
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugin, "-p", "no:cacheprovider",
         "-o", "asyncio_default_fixture_loop_scope=session", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout


def test_the_plugin_loads_without_pytest_asyncio(tmp_path: Path) -> None:
    """Without pytest-asyncio, a service's other tests still run; nc says what to install."""
    (tmp_path / "test_service.py").write_text(
        textwrap.dedent(
            '''
            def test_sync(nats_url):
                """The server fixtures need no event loop."""
                assert nats_url.startswith("nats://")

            def test_needs_a_loop(nc):
                """Asks for a fixture that needs pytest-asyncio."""
            '''
        )
    )
    installed = any(ep.name == "edalab" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "edalab.testing"]
    # A pytest_asyncio that fails to import, ahead of the installed one on the path.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pytest_asyncio.py").write_text("raise ImportError('pytest-asyncio is absent')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
         *plugin, str(tmp_path / "test_service.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "1 passed" in out.stdout and "1 error" in out.stdout, out.stdout + out.stderr
    assert "'nc' fixture needs pytest-asyncio: pip install 'edalab[test]'" in out.stdout
