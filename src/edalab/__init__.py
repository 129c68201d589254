"""edalab: event-driven architecture on NATS JetStream, the helpers of the workbook.

    >>> import edalab
    >>> edalab.subject("user", "created")
    'user.created'

Modules: ``events`` (the envelope), ``factories`` (events with predictable ids and
times), ``subjects`` (naming), ``binary`` (find nats-server), ``server`` (run one),
``discovery`` (find the server a notebook uses), ``state`` (what ``edalab server``
recorded), ``processes`` (pids), ``urls`` (check and probe NATS URLs),
``confidential`` (mask secrets, private files), ``waiting`` (``wait_for``),
``connection`` (connect, permission checks), ``context`` (a JetStream context that
keeps its connection, for the bulk paths), ``streams`` and ``publishing`` (notebook
03), ``consuming`` (notebooks 05-07), ``versioning`` (notebook 08), ``idempotency``
(notebook 10), ``deadletters`` and ``reasons`` (notebook 11), ``security`` (notebook
12), ``cluster`` (notebook 13), ``outbox``, ``tracing``, ``concurrency`` and
``cloudevents`` (notebook 16), ``errors``;
``testing`` is the pytest plugin (fixtures ``nats_server``, ``nc``, ``js``) and the only
module that imports pytest.
The course itself (lessons, exercise checkers, workshop tools, benchmarks, the
capstone shop) is the separate package ``edalab.course``, built on these.
"""

from edalab.binary import find_nats_server
from edalab.connection import connect, publish_checked, subscribe_checked
from edalab.consuming import Delivery, EventConsumer, RunReport, ensure_consumer
from edalab.context import JetStream, NotAnEdalabJetStream, jetstream
from edalab.deadletters import DeadLetter, DeadLetters
from edalab.discovery import ServerHandle, ensure_server, lesson_server
from edalab.errors import (
    AuthenticationError,
    ConcurrencyConflict,
    ConsumerConfigConflict,
    ConsumerError,
    EdalabError,
    EventDecodeError,
    EventError,
    HandlerError,
    InvalidURLError,
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
    StreamInUse,
    SubjectError,
    TransientError,
    UnknownVersionError,
    UpcastError,
)
from edalab.events import Event, utc_now
from edalab.factories import EventFactory, FixedClock
from edalab.idempotency import ProcessedIds
from edalab.outbox import Outbox, OutboxRelay
from edalab.publishing import IngestReport, ingest_events, publish_event, publish_events
from edalab.reasons import Reason
from edalab.security import (
    User,
    authorization_config,
    consumer_permissions,
    inbox_prefix,
    jetstream_user,
    nkey_user,
    permission_checked,
)
from edalab.server import NatsServer
from edalab.streams import Table, ensure_stream, fresh_stream
from edalab.subjects import matches, overlaps, split_version, subject, validate_subject
from edalab.tracing import TraceContext, derived_id, flow_headers
from edalab.versioning import SchemaRegistry, compare_models
from edalab.waiting import wait_for

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "ConcurrencyConflict",
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
    "EventFactory",
    "FixedClock",
    "HandlerError",
    "IngestReport",
    "InvalidURLError",
    "JetStream",
    "NatsServer",
    "NoStreamError",
    "NotAnEdalabJetStream",
    "Outbox",
    "OutboxRelay",
    "PayloadError",
    "PermanentError",
    "PermissionDenied",
    "ProcessedIds",
    "PublishError",
    "Reason",
    "RunReport",
    "SchemaRegistry",
    "ServerBinaryNotFound",
    "ServerError",
    "ServerHandle",
    "ServerStartError",
    "ServerUnreachableError",
    "StreamConfigConflict",
    "StreamError",
    "StreamInUse",
    "SubjectError",
    "Table",
    "TraceContext",
    "TransientError",
    "UnknownVersionError",
    "UpcastError",
    "User",
    "authorization_config",
    "compare_models",
    "connect",
    "consumer_permissions",
    "derived_id",
    "ensure_consumer",
    "ensure_server",
    "ensure_stream",
    "find_nats_server",
    "flow_headers",
    "fresh_stream",
    "inbox_prefix",
    "ingest_events",
    "jetstream",
    "jetstream_user",
    "lesson_server",
    "matches",
    "nkey_user",
    "overlaps",
    "permission_checked",
    "publish_checked",
    "publish_event",
    "publish_events",
    "split_version",
    "subject",
    "subscribe_checked",
    "utc_now",
    "validate_subject",
    "wait_for",
]
