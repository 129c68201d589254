"""A stand-in identity provider, and a server whose logins an auth callout decides (lesson 21).

:class:`People` is a small JSON file of people: a name, a team and a bcrypt hash of the
password (the file never holds a password). Notebook ``21_many_teams`` writes one and
lets an :class:`edalab.AuthCalloutService` decide logins from it; the exercise checker
and the fault test start the same set-up with :func:`callout_server`.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "people.json"
    >>> people = People.write(path, {"ann": ("a", "ann-pw")}, rounds=4)
    >>> people.verify("ann", "ann-pw"), people.verify("ann", "guess"), people.get("zed")
    (True, False, None)
    >>> people.get("ann")
    Person(name='ann', team='a')
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edalab import (
    AuthCalloutService,
    NatsServer,
    NKey,
    auth_callout_config,
    connect,
)

from .._confidential import write_private
from ._lesson import lesson_server

__all__ = ["CalloutLab", "People", "Person", "callout_server"]


@dataclass(frozen=True)
class Person:
    """One person of the directory (the hash stays out of the repr)."""

    name: str
    team: str
    password_hash: str = field(repr=False)


class People:
    """The directory: who exists, in which team, and whether a password is theirs."""

    def __init__(self, people: Mapping[str, Person]) -> None:
        self._people = dict(people)

    @classmethod
    def write(
        cls, path: Path | str, people: Mapping[str, tuple[str, str]], *, rounds: int = 4
    ) -> People:
        """Write ``{name: (team, password)}`` to ``path`` (mode 0600), passwords hashed."""
        import bcrypt  # the course's dependency (the lab extra), as for class mode

        entries = {
            name: {
                "team": team,
                "bcrypt": bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode(),
            }
            for name, (team, password) in people.items()
        }
        write_private(Path(path), json.dumps(entries, indent=2) + "\n")
        return cls.load(path)

    @classmethod
    def load(cls, path: Path | str) -> People:
        """Read a directory written by :meth:`write`."""
        data = json.loads(Path(path).read_text())
        return cls({n: Person(n, str(e["team"]), str(e["bcrypt"])) for n, e in data.items()})

    def get(self, name: str) -> Person | None:
        """The person called ``name``, or ``None`` when there is none."""
        return self._people.get(name)

    def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (``False`` for an unknown name too)."""
        import bcrypt

        person = self._people.get(name)
        if person is None:
            return False
        return bool(bcrypt.checkpw(password.encode(), person.password_hash.encode()))

    def __len__(self) -> int:
        return len(self._people)

    def __repr__(self) -> str:
        return f"<People: {', '.join(sorted(self._people))}>"


@dataclass
class CalloutLab:
    """A running server whose logins a callout service decides (see :func:`callout_server`)."""

    server: NatsServer
    service: AuthCalloutService
    timeout: float


@contextlib.asynccontextmanager
async def callout_server(
    name: str,
    decide: object,
    accounts: Sequence[str] = ("TEAM_A", "TEAM_B"),
    *,
    timeout: float = 1.0,
) -> AsyncIterator[CalloutLab]:
    """A lesson server with ``auth_callout``, and a callout service answering with ``decide``.

    ``decide(request)`` is the service's callable (a :class:`~edalab.Grant` or ``None``);
    ``timeout`` is the server's auth timeout. Stops both on the way out.
    """
    import secrets

    issuer = NKey.create("account")
    password = secrets.token_urlsafe(12)
    config = auth_callout_config(issuer, "auth", password, list(accounts), timeout=timeout)
    srv = lesson_server(name, config=config)
    try:
        nc = await connect(srv.url, user="auth", password=password, name="auth-callout")
        try:
            service = AuthCalloutService(nc, issuer, decide)  # type: ignore[arg-type]
            async with service:
                yield CalloutLab(srv, service, timeout)
        finally:
            await nc.close()
    finally:
        srv.stop()
