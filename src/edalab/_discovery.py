"""Find the NATS server a notebook should use, starting one only when there is none.

:func:`ensure_server` is what notebooks call (notebook ``00_start_here``): it uses
``NATS_URL`` when set and reachable, else the server started by ``edalab server
start``, else starts one that lives as long as the kernel. In class mode
(``EDALAB_CLASS=1``, set by a student's class env file) only ``NATS_URL`` will do: a
class server that does not answer is an error saying whom to ask, never a private
server that would hide the student's work from the class. ``edalab.course.lesson_server``
gives a lesson a server of its own (to restart or crash it, notebooks ``07`` and ``09``)
through :meth:`LocalServers.lesson`.

The servers this Python process started are held by :data:`local_servers`, one
:class:`LocalServers` object (not hidden module globals): ``local_servers.stop()``
stops them all, as Python does at exit.

    >>> handle = ensure_server(quiet=True)
    >>> handle.url.startswith("nats://")
    True
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._confidential import mask_url
from ._errors import InvalidURLError, ServerError, ServerUnreachableError
from ._server import NatsServer
from ._state import read_state
from ._urls import probe

__all__ = [
    "LocalServers",
    "ServerHandle",
    "class_mode",
    "ensure_server",
    "env_credentials",
    "local_servers",
    "running_server",
]

Source = Literal["NATS_URL", "edalab server", "embedded"]


@dataclass(frozen=True)
class ServerHandle:
    """Which server a notebook uses: its URL and where it came from.

    The repr masks a password or token in the URL; ``url`` itself is what to connect to.
    """

    url: str
    source: Source

    def __repr__(self) -> str:
        return f"<NATS server at {mask_url(self.url)} ({self.source})>"

    @property
    def options(self) -> dict[str, Any]:
        """Connection options that go with this server: when ``NATS_URL`` chose it, the
        credentials the environment gives (:func:`env_credentials`), else none.

        Pass them to a plain client too: ``await nats.connect(server.url, **server.options)``.
        """
        return env_credentials() if self.source == "NATS_URL" else {}


def env_credentials(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Credentials from the environment, in the variable names the NATS CLI uses.

    ``NATS_CREDS`` (a credentials file) or ``NATS_USER`` with ``NATS_PASSWORD``
    (a class's student file sets these; see ``edalab class init``). They go with a
    server ``NATS_URL`` chose (:attr:`ServerHandle.options`), which
    :func:`~edalab.connect` applies.

        >>> env_credentials({"NATS_USER": "s01", "NATS_PASSWORD": "pw"})["user"]
        's01'
        >>> env_credentials({})
        {}
    """
    env = os.environ if environ is None else environ
    if env.get("NATS_CREDS"):
        return {"user_credentials": env["NATS_CREDS"]}
    if env.get("NATS_USER"):
        return {"user": env["NATS_USER"], "password": env.get("NATS_PASSWORD", "")}
    return {}


def class_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this is a student's process in class mode (``EDALAB_CLASS=1``).

    >>> class_mode({"EDALAB_CLASS": "1"}), class_mode({"EDALAB_CLASS": "0"}), class_mode({})
    (True, False, False)
    """
    env = os.environ if environ is None else environ
    return env.get("EDALAB_CLASS", "") not in ("", "0")


#: What a student in class mode is told when the class server does not answer.
ASK_INSTRUCTOR = (
    "you are in class mode (EDALAB_CLASS=1, from your class env file): ask your instructor "
    "whether the class server is running and whether {url} is its address. No private "
    "server was started: your checks would not reach the class (unset EDALAB_CLASS to "
    "work alone)"
)


def _class_server(env_url: str | None) -> ServerHandle:
    """Class mode: ``NATS_URL`` answers, or an error naming it and whom to ask."""
    if not env_url:
        raise ServerError(
            "class mode (EDALAB_CLASS=1) but NATS_URL is not set: load your class env file "
            "(`set -a; . sNN.env; set +a`) in the shell that starts JupyterLab, or ask your "
            "instructor for it"
        )
    try:
        why = probe(env_url.split(",")[0])
    except InvalidURLError as err:
        why = err.reason
    if why is not None:
        advice = ASK_INSTRUCTOR.format(url=mask_url(env_url))
        raise ServerUnreachableError(env_url, f"{why}; {advice}")
    return ServerHandle(env_url, "NATS_URL")


def running_server(*, quiet: bool = False) -> ServerHandle | None:
    """A server that is already there: a reachable ``$NATS_URL``, else a live ``edalab server``.

    Never starts one. An unreachable (or malformed) ``NATS_URL`` is reported on stderr,
    with any password masked, unless ``quiet``. In class mode (:func:`class_mode`) it is
    an error instead (:class:`~edalab.ServerUnreachableError`), with no fallback.
    """
    env_url = os.environ.get("NATS_URL")
    if class_mode():
        return _class_server(env_url)
    if env_url:
        try:
            why = probe(env_url.split(",")[0])
        except InvalidURLError as err:
            why = err.reason
        if why is None:
            return ServerHandle(env_url, "NATS_URL")
        if not quiet:
            print(
                f"NATS_URL={mask_url(env_url)} is not reachable ({why}); falling back",
                file=sys.stderr,
            )
    state = read_state()
    if state is not None and state.alive():
        return ServerHandle(state.url, "edalab server")
    return None


class LocalServers:
    """The servers this process started: one embedded server and one per lesson name.

    All of them are stopped when Python exits, or by :meth:`stop`.
    """

    def __init__(self) -> None:
        self.embedded: NatsServer | None = None
        self.lessons: dict[str, NatsServer] = {}
        self._at_exit = False

    def _stop_at_exit(self) -> None:
        if not self._at_exit:
            atexit.register(self.stop)
            self._at_exit = True

    def ensure_embedded(self) -> NatsServer:
        """The embedded server, started now if it is not running."""
        if self.embedded is None or not self.embedded.running:
            self._stop_at_exit()
            self.embedded = NatsServer(name="edalab-embedded").start()
        return self.embedded

    def lesson(self, name: str, **options: Any) -> NatsServer:
        """A fresh server named ``name``; one started before under that name is stopped."""
        old = self.lessons.pop(name, None)
        if old is not None:
            old.stop()
        self._stop_at_exit()
        srv = NatsServer(name=f"edalab-{name}", **options).start()
        self.lessons[name] = srv
        return srv

    def stop(self) -> None:
        """Stop every server this object started."""
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        while self.lessons:
            _, srv = self.lessons.popitem()
            srv.stop()


#: The servers this Python process started (what :func:`ensure_server` and
#: ``edalab.course.lesson_server`` use).
local_servers = LocalServers()


def ensure_server(*, quiet: bool = False) -> ServerHandle:
    """Find a usable server, starting one if needed, and say which.

    1. ``$NATS_URL`` when it is set and a NATS server answers there;
    2. the server recorded by ``edalab server start``, if it is still alive;
    3. an embedded server started now, stopped when the Python process exits
       (calling again returns the same one).

    In class mode only the first: an unreachable class server raises
    :class:`~edalab.ServerUnreachableError` naming its URL and whom to ask.
    """
    from ._cells import install

    install()  # in a notebook: errors show the learner's line, not nats-py's internals
    found = running_server(quiet=quiet)
    if found is not None:
        return found
    return ServerHandle(local_servers.ensure_embedded().url, "embedded")
