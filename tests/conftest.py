"""Shared fixtures: one real nats-server for the session (edalab.testing, a pytest plugin).

Each folder of ``tests/`` holds one kind of test, and its name is the marker its tests
carry (registered in pyproject.toml): ``pytest tests/unit`` runs in seconds,
``pytest tests -m "not faults and not browser"`` leaves those out.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

_ids = itertools.count(1)

#: The kinds of test, one folder each (what each needs: pyproject.toml's markers).
KINDS = (
    "unit", "server", "faults", "cluster", "class", "browser", "book", "packaging", "notebooks",
)  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Keep the tests' edalab state out of the user's home (a directory per xdist worker); load
    edalab's fixtures.

    The fixtures (``nats_server``, ``nats_url``, ``nc``, ``js``) come from the plugin the
    package declares (entry point ``pytest11``); an editable install made before that
    entry point existed lacks it, and then the plugin module is loaded here.
    """
    import os
    import tempfile

    os.environ.setdefault("EDALAB_STATE_DIR", tempfile.mkdtemp(prefix="edalab-test-state-"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # workers inherit the controller's dir
    if worker and not os.environ["EDALAB_STATE_DIR"].endswith(worker):
        os.environ["EDALAB_STATE_DIR"] = os.path.join(os.environ["EDALAB_STATE_DIR"], worker)
    os.environ.pop("EDALAB_CLASS", None)  # a student's shell: the tests bring their own servers
    manager = config.pluginmanager
    if not manager.has_plugin("edalab") and not manager.has_plugin("edalab.testing"):
        manager.import_plugin("edalab.testing")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its folder's kind; a test outside those folders is an error."""
    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here):
            continue  # the library's doctests (src/edalab)
        kind = item.path.relative_to(here).parts[0]
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in tests/<kind>/, {list(KINDS)}")
        item.add_marker(kind)


@pytest.fixture
def stream_name(request: pytest.FixtureRequest) -> str:
    """A stream name no other test uses, so tests sharing the server never collide."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name).strip("_").upper()
    return f"T{next(_ids)}_{name}"[:48]


@pytest.fixture
def token(stream_name: str) -> str:
    """A subject token unique to the test (lower case), for subjects of its own stream."""
    return stream_name.lower()
