"""Users, nkeys and permissions for a nats-server (notebook ``12_security``).

Generate the ``authorization`` block of a server configuration from a list of
:class:`User` s, each authenticated by a password or an nkey, each with the
subjects it may publish and subscribe to::

    ann = User("ann", password="s3cret", publish=["order.>"], subscribe=["order.>"])
    bot, seed = nkey_user("billing-bot", publish=["payment.>"], subscribe=["order.placed"])
    with NatsServer(config=authorization_config([ann, bot])) as srv:
        ...
        nc = await connect(srv.url, nkeys_seed_str=seed)

Users that use JetStream also need the JetStream API (``$JS.API.>``) and replies
(``_INBOX.>``): :func:`jetstream_user` adds them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["JETSTREAM_API", "User", "authorization_config", "jetstream_user", "nkey_user"]

#: What a JetStream client must be allowed: publish API requests, receive replies.
JETSTREAM_API = {"publish": ["$JS.API.>", "$JS.ACK.>"], "subscribe": ["_INBOX.>"]}


@dataclass
class User:
    """One user: a name, a password or an nkey (public key), and permissions.

    ``publish`` / ``subscribe`` list the subjects allowed (wildcards welcome);
    ``None`` means no restriction and ``[]`` means nothing at all. Request/reply
    needs ``_INBOX.>`` in ``subscribe``.
    """

    name: str
    password: str | None = None
    nkey: str | None = None
    publish: list[str] | None = None
    subscribe: list[str] | None = None
    deny_publish: list[str] = field(default_factory=list)
    deny_subscribe: list[str] = field(default_factory=list)

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


def jetstream_user(user: User) -> User:
    """The same user, also allowed the JetStream API and replies (when restricted at all)."""
    if user.publish is not None:
        user.publish = [*user.publish, *JETSTREAM_API["publish"]]
    if user.subscribe is not None:
        user.subscribe = [*user.subscribe, *JETSTREAM_API["subscribe"]]
    return user


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
