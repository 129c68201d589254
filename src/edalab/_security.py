"""Users, nkeys and least-privilege permissions for a nats-server (notebook ``12_security``).

Generate the ``authorization`` block of a server configuration from a list of
:class:`User` s, each authenticated by a password or an nkey, each with the
subjects it may publish and subscribe to::

    ann = User("ann", password="s3cret", publish=["order.>"], subscribe=["order.>"])
    bot, seed = nkey_user("billing-bot", publish=["payment.>"], subscribe=["order.placed"])
    with NatsServer(config=authorization_config([ann, bot])) as srv:
        ...
        nc = await connect(srv.url, nkeys_seed_str=seed)

Every JetStream operation is a request on a ``$JS.API.`` subject, so a user
allowed ``$JS.API.>`` may also delete or purge every stream. :func:`jetstream_user`
grants only what a role uses instead:

- a **publisher** publishes to its own subjects; the ``PubAck`` comes back on its
  reply inbox, so it needs to subscribe there and nothing in ``$JS.API``;
- a **pull consumer** publishes to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``
  (fetch), ``$JS.API.CONSUMER.INFO.<stream>.<consumer>`` (if it asks for its
  consumer's info) and ``$JS.ACK.<stream>.<consumer>.>`` (acks);
- every user gets a **private inbox prefix** ``_INBOX_<name>`` (pass it to
  ``connect(inbox_prefix=...)``) and may subscribe only to ``_INBOX_<name>.>``, so
  no user can read another's replies::

    pub = jetstream_user(User("orders", password="pw", publish=["order.>"]))
    con = jetstream_user(User("audit", password="pw", publish=[]), consume=[("SHOP", "audit")])
    nc = await connect(url, user="audit", password="pw", inbox_prefix=con.inbox_prefix)

:func:`permission_checked` turns a JetStream call that the server refused (which
nats-py reports only as a timeout) into :class:`~edalab.PermissionDenied`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

import nats.errors
from nats.aio.client import Client as NATS

from ._connection import connection_log
from ._errors import PermissionDenied, SubjectError
from ._nats import consumer_api_subjects

__all__ = [
    "User",
    "authorization_config",
    "consumer_permissions",
    "inbox_prefix",
    "jetstream_user",
    "nkey_user",
    "permission_checked",
]

_BAD_TOKEN_CHARS = set(".*> \t\r\n")


def inbox_prefix(name: str) -> str:
    """The private inbox prefix of user ``name`` (nats-py's default is ``_INBOX``).

    >>> inbox_prefix("orders")
    '_INBOX_orders'
    """
    if not name or _BAD_TOKEN_CHARS & set(name):
        raise SubjectError(
            f"_INBOX_{name}", "a user name used in an inbox prefix must be one subject token"
        )
    return f"_INBOX_{name}"


def consumer_permissions(stream: str, consumer: str, *, info: bool = True) -> list[str]:
    """The subjects a client publishes to when it pulls from and acks one consumer.

    >>> consumer_permissions("SHOP", "audit")  # doctest: +NORMALIZE_WHITESPACE
    ['$JS.API.CONSUMER.MSG.NEXT.SHOP.audit', '$JS.API.CONSUMER.INFO.SHOP.audit',
     '$JS.ACK.SHOP.audit.>']
    """
    for token in (stream, consumer):
        if not token or _BAD_TOKEN_CHARS & set(token):
            raise SubjectError(token, "a stream or consumer name must be one subject token")
    pull, info_subject, acks = consumer_api_subjects(stream, consumer)
    return [pull, info_subject, acks] if info else [pull, acks]


@dataclass
class User:
    """One user: a name, a password or an nkey (public key), and permissions.

    ``publish`` / ``subscribe`` list the subjects allowed (wildcards welcome);
    ``None`` means no restriction and ``[]`` means nothing at all. Request/reply
    needs the user's inbox in ``subscribe``: :func:`jetstream_user` adds a private
    one and sets ``inbox_prefix`` (what the client passes to ``connect``).
    """

    name: str
    password: str | None = None
    nkey: str | None = None
    publish: list[str] | None = None
    subscribe: list[str] | None = None
    deny_publish: list[str] = field(default_factory=list)
    deny_subscribe: list[str] = field(default_factory=list)
    inbox_prefix: str | None = None

    def __repr__(self) -> str:
        secret = "password=***" if self.password is not None else f"nkey={self.nkey}"
        return (
            f"User({self.name!r}, {secret}, publish={self.publish!r}, "
            f"subscribe={self.subscribe!r}, inbox_prefix={self.inbox_prefix!r})"
        )

    def __post_init__(self) -> None:
        if (self.password is None) == (self.nkey is None):
            raise ValueError(f"user {self.name!r} needs exactly one of password and nkey")

    def _permissions(self) -> dict[str, dict[str, list[str]]]:
        perms: dict[str, dict[str, list[str]]] = {}
        for op, allow, deny in (
            ("publish", self.publish, self.deny_publish),
            ("subscribe", self.subscribe, self.deny_subscribe),
        ):
            rule: dict[str, list[str]] = {}
            if allow:
                rule["allow"] = list(allow)
            elif allow is not None:
                # The server reads an empty allow list as "no restriction": deny all instead.
                deny = [">", *deny]
            if deny:
                rule["deny"] = list(deny)
            if rule:
                perms[op] = rule
        return perms

    def entry(self) -> dict[str, object]:
        """This user as an entry of the server's ``authorization.users`` list."""
        out: dict[str, object] = (
            {"user": self.name, "password": self.password}
            if self.password is not None
            else {"nkey": self.nkey}
        )
        perms = self._permissions()
        if perms:
            out["permissions"] = perms
        return out


def nkey_user(name: str, **permissions: list[str] | None) -> tuple[User, str]:
    """A new nkey user and its seed (the secret the client connects with).

    >>> user, seed = nkey_user("bot", publish=["a.>"])
    >>> user.nkey.startswith("U"), seed.startswith("SU")
    (True, True)
    """
    import nkeys

    kp = nkeys.from_seed(nkeys.encode_seed(_random_seed(), nkeys.PREFIX_BYTE_USER))
    return User(name, nkey=kp.public_key.decode(), **permissions), kp.seed.decode()  # type: ignore[arg-type]


def _random_seed() -> bytes:
    import os

    return os.urandom(32)


def jetstream_user(
    user: User, *, consume: Sequence[tuple[str, str]] = (), consumer_info: bool = True
) -> User:
    """The same user with least-privilege JetStream permissions and a private inbox.

    ``publish`` keeps the user's own subjects (a JetStream publish is a request to
    the stream's subject) and gains, for each ``(stream, consumer)`` in ``consume``,
    :func:`consumer_permissions`. ``subscribe`` keeps the user's own subjects and
    gains ``_INBOX_<name>.>`` only: ``PubAck`` s, fetched messages and API replies
    all arrive there, once the client connects with ``inbox_prefix``. Nothing in
    ``$JS.API`` beyond that is granted: no stream or consumer can be created,
    deleted or purged by this user. ``None`` lists count as empty here.

    >>> u = jetstream_user(User("audit", password="pw", publish=[]), consume=[("SHOP", "a")])
    >>> u.publish, u.subscribe, u.inbox_prefix  # doctest: +NORMALIZE_WHITESPACE
    (['$JS.API.CONSUMER.MSG.NEXT.SHOP.a', '$JS.API.CONSUMER.INFO.SHOP.a', '$JS.ACK.SHOP.a.>'],
     ['_INBOX_audit.>'], '_INBOX_audit')
    """
    prefix = inbox_prefix(user.name)
    publish = list(user.publish or [])
    for stream, consumer in consume:
        publish += consumer_permissions(stream, consumer, info=consumer_info)
    subscribe = [*(user.subscribe or []), f"{prefix}.>"]
    return replace(user, publish=publish, subscribe=subscribe, inbox_prefix=prefix)


#: Tokens of JetStream API and ack subjects, upper case on the wire.
_API_WORDS = frozenset(
    [
        "$js",
        "api",
        "ack",
        "stream",
        "consumer",
        "delete",
        "purge",
        "info",
        "msg",
        "next",
        "create",
        "update",
        "names",
        "list",
        "durable",
        "get",
        "direct",
        "snapshot",
        "restore",
        "leader",
        "stepdown",
        "peer",
        "remove",
        "pause",
        "unpin",
    ]
)


def _restore_case(subject: str, names: Sequence[str]) -> str:
    # nats-py lower-cases the server's -ERR line, subject included: put back what we know.
    known = {n.lower(): n for n in names}
    api = subject.startswith("$js.")
    return ".".join(
        known.get(t, t.upper() if api and t in _API_WORDS else t) for t in subject.split(".")
    )


@contextlib.asynccontextmanager
async def permission_checked(nc: NATS, *names: str) -> AsyncIterator[None]:
    """Raise :class:`~edalab.PermissionDenied` when the server refused what the block sent.

    A refused JetStream request (delete a stream, fetch, ``ack_sync``) reaches
    nats-py as a timeout: the server drops the request and reports the violation
    asynchronously. On a nats-py error or timeout inside the block, this looks at
    what the server reported (for connections made by :func:`edalab.connect`) and
    raises the denial instead, naming the user and the subject. nats-py hands the
    server's error over in lower case: ``names`` (streams, consumers) are shown in
    their own case, and the API's words in upper case::

        async with permission_checked(nc, "SHOP"):
            await nc.jetstream(timeout=1).delete_stream("SHOP")
    """
    log = connection_log(nc)
    since = len(log.errors) if log else 0
    try:
        yield
    except (nats.errors.Error, TimeoutError) as err:
        denials = log.denials(since) if log else []
        if log is None or not denials:
            raise
        operation, subject = denials[-1]
        raise PermissionDenied(log.identity, _restore_case(subject, names), operation) from err


def authorization_config(users: Sequence[User]) -> str:
    """The ``authorization { users = [...] }`` block for a nats-server configuration.

    >>> print(authorization_config([User("ann", password="pw", publish=["a.>"])]))
    authorization {
      users = [
        {"user": "ann", "password": "pw", "permissions": {"publish": {"allow": ["a.>"]}}}
      ]
    }
    """
    names = [u.name for u in users]
    if len(set(names)) != len(names):
        raise ValueError(f"user names must be unique: {names}")
    # The server's configuration format accepts JSON values.
    lines = ["    " + json.dumps(u.entry()) for u in users]
    return "authorization {\n  users = [\n" + "\n".join(lines) + "\n  ]\n}"
