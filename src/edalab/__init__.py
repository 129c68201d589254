"""edalab: event-driven architecture on NATS JetStream, the helpers of the workbook.

    >>> import edalab
    >>> edalab.subject("user", "created")
    'user.created'

Modules: ``events`` (the envelope), ``subjects`` (naming), ``server`` (run and find
a nats-server), ``connection`` (connect, permission checks), ``context`` (a JetStream
context that keeps its connection, for the bulk paths), ``streams`` and
``publishing`` (notebook 03), ``consuming`` (notebooks 05-07), ``versioning``
(notebook 08), ``deadletters`` and ``idempotency`` (notebook 09), ``security``
(notebook 12), ``cluster`` (notebook 13), ``testing`` (pytest fixtures), ``errors``.
The course itself (lessons, exercise checkers, workshop tools, benchmarks, the
capstone shop) is the separate package ``edalab.course``, built on these.
"""

from edalab.connection import connect, publish_checked, subscribe_checked
from edalab.consuming import Delivery, EventConsumer, RunReport, ensure_consumer
from edalab.context import JetStream, NotAnEdalabJetStream, jetstream
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
from edalab.publishing import IngestReport, ingest_events, publish_event, publish_events
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
    "IngestReport",
    "JetStream",
    "NatsServer",
    "NoStreamError",
    "NotAnEdalabJetStream",
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
    "ingest_events",
    "jetstream",
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
