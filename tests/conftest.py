"""Shared fixtures: one real nats-server for the session (edalab.testing, a pytest plugin)."""

from __future__ import annotations

import itertools
import re

import pytest

_ids = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Keep the tests' edalab state out of the user's home; make sure edalab's fixtures load.

    The fixtures (``nats_server``, ``nats_url``, ``nc``, ``js``) come from the plugin the
    package declares (entry point ``pytest11``); an editable install made before that
    entry point existed lacks it, and then the plugin module is loaded here.
    """
    import os
    import tempfile

    os.environ.setdefault("EDALAB_STATE_DIR", tempfile.mkdtemp(prefix="edalab-test-state-"))
    os.environ.pop("EDALAB_CLASS", None)  # a student's shell: the tests bring their own servers
    manager = config.pluginmanager
    if not manager.has_plugin("edalab") and not manager.has_plugin("edalab.testing"):
        manager.import_plugin("edalab.testing")


@pytest.fixture
def stream_name(request: pytest.FixtureRequest) -> str:
    """A stream name no other test uses, so tests sharing the server never collide."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name).strip("_").upper()
    return f"T{next(_ids)}_{name}"[:48]


@pytest.fixture
def token(stream_name: str) -> str:
    """A subject token unique to the test (lower case), for subjects of its own stream."""
    return stream_name.lower()
