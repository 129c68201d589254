"""edalab: event-driven architecture on NATS JetStream, the helpers of the workbook.

    >>> import edalab
    >>> edalab.subject("user", "created")
    'user.created'

This module is the API: every public name is imported from ``edalab`` itself
(``from edalab import connect, EventConsumer``); the modules behind it are private
(``_streams``, ``_consuming``, ...) and may change between versions.
``_nats`` is the one module that talks to nats-py beyond its public client API.
Two documented subpackages sit beside it: ``edalab.testing`` is the pytest plugin
(fixtures ``nats_server``, ``nc``, ``js``) and the only module that imports pytest;
``edalab.course`` is the course itself (lessons, exercise checkers, workshop tools,
benchmarks, the capstone shop, and the lessons' own helpers such as ``fresh_stream``,
``lesson_server`` and the tables), built on this API. The library never imports the course.
"""

from ._accounts import (
    AUTH_CALLOUT_SUBJECT,
    Account,
    AccountQuota,
    AccountUser,
    AuthCalloutService,
    Grant,
    JWTError,
    LoginRequest,
    NKey,
    Operator,
    UserCredentials,
    auth_callout_config,
    decode_jwt,
    encode_jwt,
    operator_config,
    push_account,
)
from ._binary import find_nats_server
from ._cloudevents import (
    from_binary,
    from_message,
    from_structured,
    to_binary,
    to_structured,
)
from ._cluster import NatsCluster, stream_leader, wait_until_current
from ._concurrency import aggregate_version, append
from ._connection import connect, publish_checked, subscribe_checked
from ._consuming import (
    Delivery,
    EventConsumer,
    RunReport,
    ensure_consumer,
    stored_event_ids,
)
from ._deadletters import DeadLetter, DeadLetters
from ._discovery import ServerHandle, ensure_server
from ._errors import (
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
    NotAnEdalabJetStream,
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
from ._events import Event, utc_now
from ._factories import EventFactory, FixedClock
from ._idempotency import ProcessedIds
from ._nats import Connection, JetStream, jetstream
from ._outbox import Outbox, OutboxRelay
from ._priority import PriorityPuller, ensure_priority_consumer, pinned_client, unpin
from ._publishing import (
    MSG_ID,
    IngestReport,
    ingest_events,
    publish_event,
    publish_events,
)
from ._reasons import Reason
from ._replication import wait_replicated
from ._security import (
    User,
    authorization_config,
    consumer_permissions,
    inbox_prefix,
    jetstream_user,
    nkey_user,
    permission_checked,
)
from ._server import NatsServer
from ._sharing import ConfigAccount, Export, Import, accounts_config, share_consumer
from ._snapshots import Snapshot, SnapshotError, restore_stream, snapshot_stream
from ._streams import ensure_stream, stream_messages
from ._subjects import matches, overlaps, split_version, subject, validate_subject
from ._tracing import (
    CAUSATION_ID,
    CORRELATION_ID,
    TraceContext,
    derived_id,
    flow_headers,
)
from ._versioning import SchemaRegistry, compare_models
from ._waiting import wait_for

__version__ = "0.1.0"

__all__ = [
    "AUTH_CALLOUT_SUBJECT",
    "CAUSATION_ID",
    "CORRELATION_ID",
    "MSG_ID",
    "Account",
    "AccountQuota",
    "AccountUser",
    "AuthCalloutService",
    "AuthenticationError",
    "ConcurrencyConflict",
    "ConfigAccount",
    "Connection",
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
    "Export",
    "FixedClock",
    "Grant",
    "HandlerError",
    "Import",
    "IngestReport",
    "InvalidURLError",
    "JWTError",
    "JetStream",
    "LoginRequest",
    "NKey",
    "NatsCluster",
    "NatsServer",
    "NoStreamError",
    "NotAnEdalabJetStream",
    "Operator",
    "Outbox",
    "OutboxRelay",
    "PayloadError",
    "PermanentError",
    "PermissionDenied",
    "PriorityPuller",
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
    "Snapshot",
    "SnapshotError",
    "StreamConfigConflict",
    "StreamError",
    "SubjectError",
    "TraceContext",
    "TransientError",
    "UnknownVersionError",
    "UpcastError",
    "User",
    "UserCredentials",
    "accounts_config",
    "aggregate_version",
    "append",
    "auth_callout_config",
    "authorization_config",
    "compare_models",
    "connect",
    "consumer_permissions",
    "decode_jwt",
    "derived_id",
    "encode_jwt",
    "ensure_consumer",
    "ensure_priority_consumer",
    "ensure_server",
    "ensure_stream",
    "find_nats_server",
    "flow_headers",
    "from_binary",
    "from_message",
    "from_structured",
    "inbox_prefix",
    "ingest_events",
    "jetstream",
    "jetstream_user",
    "matches",
    "nkey_user",
    "operator_config",
    "overlaps",
    "permission_checked",
    "pinned_client",
    "publish_checked",
    "publish_event",
    "publish_events",
    "push_account",
    "restore_stream",
    "share_consumer",
    "snapshot_stream",
    "split_version",
    "stored_event_ids",
    "stream_leader",
    "stream_messages",
    "subject",
    "subscribe_checked",
    "to_binary",
    "to_structured",
    "unpin",
    "utc_now",
    "validate_subject",
    "wait_for",
    "wait_replicated",
    "wait_until_current",
]

# Errors show (in tracebacks and reprs) under the name users import: edalab.SubjectError.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and issubclass(_obj, Exception):
        _obj.__module__ = "edalab"
del _name, _obj
