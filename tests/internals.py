"""The library's and the course's internals that some tests exercise directly, in one place.

Every other test imports public names only (``edalab``, ``edalab.testing``,
``edalab.course``). What is here are unit tests of helpers with no fair public form:
making them public would widen the API for the tests' sake alone, and testing them only
through the public API would lose the precise case each test pins. Each group says why.
(``tests/unit/test_api.py`` reads ``edalab._errors`` and the module files themselves: it
is the test of the layout, so it is not listed here.)
"""

from __future__ import annotations

# A notebook cell's one-line error (installed into IPython by ensure_server): the test
# calls the formatter without a notebook kernel (tests/notebooks/test_cells.py).
from edalab._cells import explain

# Masking secrets and writing private files: the public API never shows a secret, so a
# test can only check the masking itself by calling it (tests/server/test_secrets.py).
from edalab._confidential import mask_url, redact, secrets_in_config, write_private

# The servers this process started and the one `edalab server` recorded: the tests of
# ensure_server check which one it picked and that a stop really ended the process
# (tests/server/test_server.py, test_secrets.py, tests/class/test_class_mode.py).
from edalab._discovery import local_servers, running_server

# The short reason a pydantic error becomes in EventDecodeError/PayloadError's message
# (tests/unit/test_events.py).
from edalab._events import describe_validation_error

# The priority-group fields of a pull request and the header and status a pinned_client
# consumer answers with: wire details the public PriorityPuller hides, checked without a
# server (tests/unit/test_priority_wire.py).
from edalab._nats import PriorityPull, pin_id_of, status_of

# Wait until a process is gone: `edalab server stop` must really end the server's process
# (tests/server/test_server.py).
from edalab._processes import wait_pid_gone

# The first nats-server version with fast ingest: the tests of ingest_events skip on the
# same threshold the library checks (tests/server/test_publishing.py).
from edalab._publishing import FAST_INGEST_SINCE

# The state files of `edalab server` and `edalab cluster` (tests/server/test_server.py,
# test_secrets.py).
from edalab._state import ServerState, read_cluster_state, read_state, save_cluster_state

# Whether a server answers at a URL, without connecting a client: the server and cluster
# tests check a server is up, or really gone (tests/server/test_server.py, tests/cluster).
from edalab._urls import probe

# Which version an event's subject or type names (tests/unit/test_versioning.py).
from edalab._versioning import version_of

# Exercise 20's checker waits up to 5 s for copies that a wrong answer never makes; its
# tests shorten that wait, which needs the module (tests/server/test_exercise_20.py).
from edalab.course._checkers import ex20 as checker_20

# Where fresh_stream records which notebook kernel holds a stream: the refusal test plays
# another kernel by writing that record, so it needs the record's path
# (tests/notebooks/test_notebook_subjects.py).
from edalab.course._lesson import _claim as stream_claim

# The live views open in this kernel: re-running a view's cell must leave one per stream,
# and nothing shows that but the registry itself (tests/server/test_view.py).
from edalab.course._view import open_views

__all__ = [
    "FAST_INGEST_SINCE",
    "PriorityPull",
    "ServerState",
    "checker_20",
    "describe_validation_error",
    "explain",
    "local_servers",
    "mask_url",
    "open_views",
    "pin_id_of",
    "probe",
    "read_cluster_state",
    "read_state",
    "redact",
    "running_server",
    "save_cluster_state",
    "secrets_in_config",
    "status_of",
    "stream_claim",
    "version_of",
    "wait_pid_gone",
    "write_private",
]
