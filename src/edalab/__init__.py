"""edalab: event-driven architecture on NATS JetStream, the helpers of the workbook.

>>> import edalab
>>> edalab.subject("user", "created")
'user.created'
"""

from edalab.errors import (
    ConsumerConfigConflict,
    ConsumerError,
    EdalabError,
    EventDecodeError,
    EventError,
    NoStreamError,
    PayloadError,
    PublishError,
    ServerBinaryNotFound,
    ServerError,
    ServerStartError,
    ServerUnreachableError,
    StreamConfigConflict,
    StreamError,
    SubjectError,
    UnknownVersionError,
)
from edalab.events import Event, utc_now
from edalab.server import NatsServer, ServerHandle, connect, ensure_server, find_nats_server
from edalab.subjects import matches, overlaps, split_version, subject, validate_subject

__version__ = "0.1.0"

__all__ = [
    "ConsumerConfigConflict",
    "ConsumerError",
    "EdalabError",
    "Event",
    "EventDecodeError",
    "EventError",
    "NatsServer",
    "NoStreamError",
    "PayloadError",
    "PublishError",
    "ServerBinaryNotFound",
    "ServerError",
    "ServerHandle",
    "ServerStartError",
    "ServerUnreachableError",
    "StreamConfigConflict",
    "StreamError",
    "SubjectError",
    "UnknownVersionError",
    "connect",
    "ensure_server",
    "find_nats_server",
    "matches",
    "overlaps",
    "split_version",
    "subject",
    "utc_now",
    "validate_subject",
]
