"""The library's non-public names the checkers use, imported in this one place.

Everything else comes from the public ``edalab`` namespace.
"""

from edalab.connection import connection_log
from edalab.consuming import consumer_filters
from edalab.context import connection_of
from edalab.publishing import MSG_ID
from edalab.state import state_dir
from edalab.streams import stream_messages
from edalab.tracing import CAUSATION_ID, CORRELATION_ID

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "MSG_ID",
    "connection_log",
    "connection_of",
    "consumer_filters",
    "state_dir",
    "stream_messages",
]
