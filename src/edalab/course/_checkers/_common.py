"""The library's non-public names the checkers use, imported in this one place.

Everything else comes from the public ``edalab`` namespace.
"""

from edalab._connection import connection_log
from edalab._consuming import consumer_filters
from edalab._nats import connection_of
from edalab._state import state_dir

__all__ = [
    "connection_log",
    "connection_of",
    "consumer_filters",
    "state_dir",
]
