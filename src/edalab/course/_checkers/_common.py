"""The library's non-public names the checkers use, imported in this one place.

Everything else comes from the public ``edalab`` namespace.
"""

from ..._connection import connection_log
from ..._consuming import consumer_filters
from ..._nats import connection_of, pin_id_of
from ..._state import state_dir

__all__ = [
    "connection_log",
    "connection_of",
    "consumer_filters",
    "pin_id_of",
    "state_dir",
]
