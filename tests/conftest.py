"""Shared fixtures: one real nats-server for the session (see edalab.testing)."""

from __future__ import annotations

import itertools
import re

import pytest

from edalab.testing import js, nats_server, nats_url, nc  # noqa: F401

_ids = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Keep the tests' edalab state (progress records, servers) out of the user's home."""
    import os
    import tempfile

    os.environ.setdefault("EDALAB_STATE_DIR", tempfile.mkdtemp(prefix="edalab-test-state-"))


@pytest.fixture
def stream_name(request: pytest.FixtureRequest) -> str:
    """A stream name no other test uses, so tests sharing the server never collide."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name).strip("_").upper()
    return f"T{next(_ids)}_{name}"[:48]


@pytest.fixture
def token(stream_name: str) -> str:
    """A subject token unique to the test (lower case), for subjects of its own stream."""
    return stream_name.lower()
