"""The library's and the course's internals that some tests exercise directly, in one place.

Every other test imports public names only (``edalab``, ``edalab.testing``,
``edalab.course``). These are unit tests of helpers that have no fair public form: making
them public would widen the API for the tests' sake alone. Each import says why.
"""

from __future__ import annotations

# Where fresh_stream records which notebook kernel holds a stream: the refusal test plays
# another kernel by writing that record, so it needs the record's path.
from edalab.course._lesson import _claim as stream_claim

__all__ = ["stream_claim"]
