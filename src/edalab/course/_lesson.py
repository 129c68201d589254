"""The lessons' helpers: what a notebook shows or needs, and a service would not.

A clean stream at the top of a lesson (:func:`fresh_stream`, which refuses to pull a
stream from under another running notebook: :class:`StreamInUse`), a server of the
lesson's own (:func:`lesson_server`), and small tables that render the same way every
time: :class:`Table`, :func:`stream_table`, :func:`consumer_table`,
:func:`state_change`, :func:`loss_report`, :func:`dead_letter_table`. All exported by
``edalab.course``; built on the library's public API (and its server bookkeeping).

    >>> loss_report([], 0, Counter()).rows
    [[0, 0, 0, 0, 0]]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nats.js.errors
from nats.js.api import ConsumerInfo, StreamInfo
from nats.js.client import JetStreamContext

from edalab import (
    DeadLetter,
    Event,
    NatsServer,
    StreamConfigConflict,
    StreamError,
    ensure_stream,
)

from .._discovery import local_servers
from .._nats import ErrCode, err_code_of
from .._processes import pid_alive
from .._state import state_dir
from .._streams import StreamSetup

__all__ = [
    "StreamInUse",
    "Table",
    "consumer_table",
    "dead_letter_table",
    "fresh_stream",
    "lesson_server",
    "loss_report",
    "state_change",
    "stream_table",
]

#: How many times :func:`fresh_stream` deletes and re-creates a stream that came back non-empty.
_FRESH_ATTEMPTS = 20  # about one re-creation in three needs a second one here


class StreamInUse(StreamError):
    """``fresh_stream`` would delete a stream that another running notebook kernel created."""

    def __init__(self, stream: str, notebook: str, pid: int) -> None:
        self.stream = stream
        self.notebook = notebook
        self.pid = pid
        super().__init__(
            f"stream {stream!r} is held by {notebook} (its kernel, process {pid}, is still "
            "running on this machine): run one notebook at a time. Shut that kernel down "
            "(Kernel > Shut Down Kernel, or the Running Terminals and Kernels tab), then run "
            "this cell again; if no such notebook is open, `edalab reset` starts over"
        )


def lesson_server(name: str, **options: Any) -> NatsServer:
    """A server of the lesson's own, for what a shared one cannot show (restarts, crashes).

    Calling it again with the same ``name`` (re-running the cell) stops the previous one
    first, so a notebook can run twice in one kernel. Stopped when Python exits.
    Options go to :class:`~edalab.NatsServer`.

        >>> srv = lesson_server("doc-example")
        >>> srv.running
        True
        >>> srv.stop()
    """
    from .._cells import install

    install()
    return local_servers.lesson(name, **options)


async def fresh_stream(
    js: JetStreamContext, name: str, subjects: Iterable[str], **config: Any
) -> StreamSetup:
    """Delete stream ``name`` if it exists, then create it: a clean slate for a lesson.

    Notebooks call this at the top so they run the same way every time,
    including twice in one kernel.

    A file-backed stream created right after its namesake was deleted can come back
    holding the deleted stream's messages (seen with nats-server 2.15: the old store
    is removed in the background), or with the deleted stream's consumers. A stream
    created here must be empty and have no consumers, so when it is not, it is deleted
    and created again, a few times, before giving up.

    In a notebook kernel the stream's holder (notebook, process) is recorded on this
    machine (in the state directory, keyed by the stream's name and creation time), and
    a stream that another kernel still running here created is not deleted:
    :class:`StreamInUse` names that notebook instead, so
    two notebooks open at once on one server cannot pull streams from under each other.
    """
    subjects = list(subjects)
    holder = _holder()
    if holder:  # in a notebook kernel: refuse to pull a stream from under another notebook
        old = await _refuse_if_held(js, name)
        if old is not None:
            old.unlink(missing_ok=True)
    for _ in range(_FRESH_ATTEMPTS):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
        try:
            setup = await ensure_stream(js, name, subjects, **config)
        except StreamConfigConflict as err:
            # A JSStreamCreateErrF (10049) carries the store's own error as its text.
            if err_code_of(err) != ErrCode.STREAM_CREATE or "error creating store" not in str(err):
                raise
        else:
            state = (await js.stream_info(name)).state  # asked again: the late write may follow
            empty = state.messages == 0 and not state.consumer_count
            if empty and state.last_seq <= (config.get("first_seq") or 1) - 1:
                if holder:
                    await _hold(js, name, holder)
                return setup
        # nats-server (seen on 2.15.1) removes a deleted file stream's store in the
        # background: a stream created at once under the same name can fail ("error
        # creating store") or recover the old messages or consumers. Nothing to await: try
        # again shortly.
        await asyncio.sleep(0.02)
    raise StreamConfigConflict(
        name, f"still holds old messages after {_FRESH_ATTEMPTS} deletes and re-creations", {}
    )


def _holder() -> dict[str, str]:
    """This process as a stream's holder, when it is a notebook kernel (else empty).

    JupyterLab tells a kernel its notebook's path in ``JPY_SESSION_NAME``.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
        return {}
    notebook = Path(os.environ.get("JPY_SESSION_NAME", "")).name
    return {
        "notebook": f"notebook {notebook}" if notebook else "another notebook",
        "pid": str(os.getpid()),
        "host": socket.gethostname(),
    }


def _claim(info: StreamInfo) -> Path:
    """This machine's record of which kernel created the stream ``info`` describes.

    Keyed by the stream's name and creation time, so the same name on another server
    (a lesson server, a cluster) is another stream.
    """
    created = info.created.isoformat() if info.created else "unknown"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in created)
    return state_dir() / "holders" / f"{info.config.name}@{safe}.json"


async def _refuse_if_held(js: JetStreamContext, name: str) -> Path | None:
    """Raise :class:`StreamInUse` when another live kernel here created ``name``.

    Returns the claim file of the stream about to be deleted (to be removed with it).
    """

    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        return None
    claim = _claim(info)
    try:
        holder = json.loads(claim.read_text())
    except (OSError, ValueError):
        return claim
    pid = str(holder.get("pid", ""))
    if (
        holder.get("host") == socket.gethostname()
        and pid.isdigit()
        and int(pid) != os.getpid()
        and pid_alive(int(pid))
    ):
        raise StreamInUse(name, str(holder.get("notebook", "another notebook")), int(pid))
    return claim


async def _hold(js: JetStreamContext, name: str, holder: dict[str, str]) -> None:
    """Record this kernel as the creator of stream ``name`` (best effort)."""

    claim = _claim(await js.stream_info(name))
    with contextlib.suppress(OSError):
        claim.parent.mkdir(parents=True, exist_ok=True)
        claim.write_text(json.dumps(holder) + "\n")


class Table:
    """A small text table that renders the same way every time (for notebook outputs).

    >>> Table(["a", "b"], [[1, "x"], [22, "yy"]])
    a   b
    --  --
    1   x
    22  yy
    """

    def __init__(
        self, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, gap: int = 2
    ) -> None:
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.gap = gap  # spaces between columns (a wide grid of short cells takes 1)

    def __repr__(self) -> str:
        cells = [self.headers] + [[str(c) for c in r] for r in self.rows]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(self.headers))]
        sep = " " * self.gap
        lines = [
            sep.join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells
        ]
        lines.insert(1, sep.join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)


async def stream_table(js: JetStreamContext, *names: str) -> Table:
    """Messages and sequences of the named streams, as a :class:`Table`."""
    rows = []
    for name in names:
        info = await js.stream_info(name)
        st = info.state
        rows.append(
            [name, ",".join(info.config.subjects or []), st.messages, st.first_seq, st.last_seq]
        )
    return Table(["stream", "subjects", "messages", "first_seq", "last_seq"], rows)


def state_change(before: StreamInfo, after: StreamInfo) -> Table:
    """One stream's messages, bytes and sequences before and after a cell acted on it.

    Notebook ``04_stream_policies`` shows each limit being hit this way::

        before = await js.stream_info("RECENT")
        await js.publish("recent", b"...")
        state_change(before, await js.stream_info("RECENT"))
    """
    rows = []
    for label, info in (("before", before), ("after", after)):
        st = info.state
        rows.append([label, st.messages, st.bytes, st.first_seq, st.last_seq])
    return Table(["state", "messages", "bytes", "first_seq", "last_seq"], rows)


def _consumer_row(info: ConsumerInfo) -> list[Any]:
    return [
        info.name,
        info.num_pending,
        info.num_ack_pending,
        info.num_redelivered,
        info.delivered.stream_seq if info.delivered else 0,
        info.ack_floor.stream_seq if info.ack_floor else 0,
    ]


async def consumer_table(js: JetStreamContext, stream: str, *names: str) -> Table:
    """Pending, ack-pending and redelivered counts of the named consumers, as a :class:`Table`."""
    rows = [_consumer_row(await js.consumer_info(stream, n)) for n in names]
    return Table(
        ["consumer", "pending", "ack_pending", "redelivered", "delivered_seq", "ack_floor"], rows
    )


def loss_report(published: Sequence[Event], acknowledged: int, stored: Counter[str]) -> Table:
    """Published, acknowledged, stored, duplicates, missing: one row, for a lesson or a test."""
    missing = len({e.id for e in published} - set(stored))
    duplicates = sum(c - 1 for c in stored.values())
    return Table(
        ["published", "acknowledged", "stored", "duplicates", "missing"],
        [[len(published), acknowledged, len(stored), duplicates, missing]],
    )


def dead_letter_table(letters: Iterable[DeadLetter]) -> Table:
    """A small table of dead letters (from ``DeadLetters.list`` or ``wait_for``)."""
    return Table(
        ["id", "category", "stream", "seq", "consumer", "deliveries", "reason"],
        [
            [d.id, str(d.category), d.stream, d.stream_seq, d.consumer, d.deliveries, d.reason]
            for d in letters
        ],
    )
