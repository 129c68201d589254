"""Accounts written in a server's configuration file: each its own users, streams and
subjects, sharing only what one exports and another imports (notebook
``20_topology_and_recovery``; signed JWT accounts are ``edalab._accounts``).

An account is a namespace: a subject published in one is not seen in another, and
each has its own JetStream (its own streams, its own ``$JS.API``). To let a partner
read one consumer of a stream, the owner *exports* the few API subjects that serve it
and the partner *imports* them, under a prefix of its choosing::

    exports, imports = share_consumer("SHOP", "ORDERS", "partner")
    config = accounts_config([
        ConfigAccount("SHOP", [User("shop", password="pw")], exports=exports),
        ConfigAccount("PARTNER", [User("ann", password="pw")], imports=imports),
    ])
    # PARTNER: nc.jetstream(prefix="$JS.SHOP.API") fetches and acks SHOP's ORDERS/partner

Everything not exported stays out of reach: the partner's own ``$JS.API`` knows only
its own streams.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._nats import shared_consumer_subjects
from ._security import User

__all__ = ["ConfigAccount", "Export", "Import", "accounts_config", "share_consumer"]


@dataclass(frozen=True)
class Export:
    """A subject an account offers to others.

    A **service** export answers requests sent to ``subject`` (``stream_response``: with
    several messages, as a fetch does); a stream export (``service=False``) sends the
    messages published on ``subject`` to every importer.
    """

    subject: str
    service: bool = True
    stream_response: bool = False

    def entry(self) -> dict[str, object]:
        """This export as an entry of the account's ``exports`` list."""
        if not self.service:
            return {"stream": self.subject}
        out: dict[str, object] = {"service": self.subject}
        if self.stream_response:
            out["response_type"] = "stream"
        return out


@dataclass(frozen=True)
class Import:
    """A subject taken from another ``account``'s exports; ``to`` is its local name."""

    account: str
    subject: str
    to: str | None = None
    service: bool = True

    def entry(self) -> dict[str, object]:
        """This import as an entry of the account's ``imports`` list."""
        kind = "service" if self.service else "stream"
        out: dict[str, object] = {kind: {"account": self.account, "subject": self.subject}}
        if self.to:
            out["to"] = self.to
        return out


@dataclass
class ConfigAccount:
    """An account: its users, whether it has JetStream, what it exports and imports."""

    name: str
    users: list[User]
    jetstream: bool = True
    exports: list[Export] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)

    def entry(self) -> dict[str, object]:
        """This account as the value of its entry in the server's ``accounts`` block."""
        out: dict[str, object] = {"users": [u.entry() for u in self.users]}
        if self.jetstream:
            out["jetstream"] = "enabled"
        if self.exports:
            out["exports"] = [e.entry() for e in self.exports]
        if self.imports:
            out["imports"] = [i.entry() for i in self.imports]
        return out


def accounts_config(accounts: Sequence[ConfigAccount]) -> str:
    """The ``accounts { ... }`` block of a nats-server configuration.

    >>> print(accounts_config([ConfigAccount("A", [User("ann", password="pw")])]))
    accounts {
      "A": {
        "users": [{"user": "ann", "password": "pw"}],
        "jetstream": "enabled"
      }
    }
    """
    names = [a.name for a in accounts]
    if len(set(names)) != len(names):
        raise ValueError(f"account names must be unique: {names}")
    users = [u.name for a in accounts for u in a.users]
    if len(set(users)) != len(users):
        raise ValueError(f"user names must be unique across accounts: {users}")
    # The server's configuration format accepts JSON values.
    # One line per user, export and import, so a printed configuration reads well.
    blocks = []
    for a in accounts:
        fields = []
        for key, value in a.entry().items():
            if isinstance(value, list) and len(value) > 1:
                items = ",\n".join(f"      {json.dumps(v)}" for v in value)
                fields.append(f"    {json.dumps(key)}: [\n{items}\n    ]")
            else:
                fields.append(f"    {json.dumps(key)}: {json.dumps(value)}")
        blocks.append(f"  {json.dumps(a.name)}: {{\n" + ",\n".join(fields) + "\n  }")
    return "accounts {\n" + "\n".join(blocks) + "\n}"


def share_consumer(
    owner: str, stream: str, consumer: str, *, prefix: str | None = None
) -> tuple[list[Export], list[Import]]:
    """What ``owner`` exports, and another account imports, to read one consumer.

    The importer may ask the stream's info, fetch from the consumer and acknowledge
    what it fetched; nothing else of the owner's JetStream. The API subjects arrive
    in the importer under ``prefix`` (default ``$JS.<owner>.API``: pass it to
    ``nc.jetstream(prefix=...)``); acks keep their own subject.

    >>> exports, imports = share_consumer("SHOP", "ORDERS", "partner")
    >>> [e.subject for e in exports]  # doctest: +NORMALIZE_WHITESPACE
    ['$JS.API.STREAM.INFO.ORDERS', '$JS.API.CONSUMER.MSG.NEXT.ORDERS.partner',
     '$JS.ACK.ORDERS.partner.>']
    >>> imports[1].to
    '$JS.SHOP.API.CONSUMER.MSG.NEXT.ORDERS.partner'
    """
    pairs = shared_consumer_subjects(stream, consumer, prefix or f"$JS.{owner}.API")
    # A fetch is answered with several messages (up to its batch): a "stream" response.
    exports = [Export(subject, stream_response=(i == 1)) for i, (subject, _) in enumerate(pairs)]
    imports = [Import(owner, subject, to=to) for subject, to in pairs]
    return exports, imports
