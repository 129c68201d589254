"""A pytest plugin for the notebooks under nbval with pytest-xdist (``make notebooks-test``).

Each xdist worker runs whole notebooks (``--dist loadscope``: a notebook's cells stay in
order on one worker and one kernel). Notebooks that share a server reuse stream names
(03, 05 and 16 all use ORDERS), so each worker gets its own edalab state directory, and
with it its own embedded server: the kernels nbval starts inherit the worker's
environment.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Give this worker a state directory (and so a server) of its own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = os.environ.get("EDALAB_STATE_DIR")
    if worker and base:
        os.environ["EDALAB_STATE_DIR"] = os.path.join(base, worker)
