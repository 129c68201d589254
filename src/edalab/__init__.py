"""edalab: event-driven architecture on NATS JetStream, the helpers of the workbook.

    >>> import edalab
    >>> edalab.subject("user", "created")
    'user.created'

Modules: ``events`` (the envelope), ``subjects`` (naming), ``server`` (run and find
a nats-server), ``streams`` and ``publishing`` (notebook 02), ``consuming``
(notebooks 03-05), ``versioning`` (notebook 07), ``exercises`` (the checkers),
``testing`` (pytest fixtures), ``errors``.
"""

from edalab.consuming import Delivery, EventConsumer, RunReport, ensure_consumer
from edalab.errors import (
    ConsumerConfigConflict,
    ConsumerError,
    EdalabError,
    EventDecodeError,
    EventError,
    HandlerError,
    NoStreamError,
    PayloadError,
    PermanentError,
    PublishError,
    ServerBinaryNotFound,
    ServerError,
    ServerStartError,
    ServerUnreachableError,
    StreamConfigConflict,
    StreamError,
    SubjectError,
    TransientError,
    UnknownVersionError,
    UpcastError,
)
from edalab.events import Event, utc_now
from edalab.publishing import publish_event, publish_events
from edalab.server import NatsServer, ServerHandle, connect, ensure_server, find_nats_server
from edalab.streams import Table, ensure_stream, fresh_stream
from edalab.subjects import matches, overlaps, split_version, subject, validate_subject
from edalab.versioning import SchemaRegistry, compare_models

__version__ = "0.1.0"

__all__ = [
    "ConsumerConfigConflict",
    "ConsumerError",
    "Delivery",
    "EdalabError",
    "Event",
    "EventConsumer",
    "EventDecodeError",
    "EventError",
    "HandlerError",
    "NatsServer",
    "NoStreamError",
    "PayloadError",
    "PermanentError",
    "PublishError",
    "RunReport",
    "SchemaRegistry",
    "ServerBinaryNotFound",
    "ServerError",
    "ServerHandle",
    "ServerStartError",
    "ServerUnreachableError",
    "StreamConfigConflict",
    "StreamError",
    "SubjectError",
    "Table",
    "TransientError",
    "UnknownVersionError",
    "UpcastError",
    "compare_models",
    "connect",
    "ensure_consumer",
    "ensure_server",
    "ensure_stream",
    "find_nats_server",
    "fresh_stream",
    "matches",
    "overlaps",
    "publish_event",
    "publish_events",
    "split_version",
    "subject",
    "utc_now",
    "validate_subject",
]
