"""edalab: event-driven architecture on NATS JetStream, the helpers of the workbook.

    >>> import edalab
    >>> edalab.subject("user", "created")
    'user.created'

Modules: ``events`` (the envelope), ``subjects`` (naming), ``server`` (run and find
a nats-server), ``connection`` (connect, permission checks), ``streams`` and
``publishing`` (notebook 02), ``consuming`` (notebooks 03-05), ``versioning``
(notebook 07), ``deadletters`` and ``idempotency`` (notebook 08), ``security``
(notebook 09), ``exercises`` (the checkers), ``testing`` (pytest fixtures),
``errors``.
"""

from edalab.connection import connect, publish_checked, subscribe_checked
from edalab.consuming import Delivery, EventConsumer, RunReport, ensure_consumer
from edalab.deadletters import DeadLetter, DeadLetters
from edalab.errors import (
    AuthenticationError,
    ConsumerConfigConflict,
    ConsumerError,
    EdalabError,
    EventDecodeError,
    EventError,
    HandlerError,
    NoStreamError,
    PayloadError,
    PermanentError,
    PermissionDenied,
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
from edalab.idempotency import ProcessedIds
from edalab.publishing import publish_event, publish_events
from edalab.security import User, authorization_config, jetstream_user, nkey_user
from edalab.server import NatsServer, ServerHandle, ensure_server, find_nats_server, lesson_server
from edalab.streams import Table, ensure_stream, fresh_stream
from edalab.subjects import matches, overlaps, split_version, subject, validate_subject
from edalab.versioning import SchemaRegistry, compare_models

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "ConsumerConfigConflict",
    "ConsumerError",
    "DeadLetter",
    "DeadLetters",
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
    "PermissionDenied",
    "ProcessedIds",
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
    "User",
    "authorization_config",
    "compare_models",
    "connect",
    "ensure_consumer",
    "ensure_server",
    "ensure_stream",
    "find_nats_server",
    "fresh_stream",
    "jetstream_user",
    "lesson_server",
    "matches",
    "nkey_user",
    "overlaps",
    "publish_checked",
    "publish_event",
    "publish_events",
    "split_version",
    "subject",
    "subscribe_checked",
    "utc_now",
    "validate_subject",
]
