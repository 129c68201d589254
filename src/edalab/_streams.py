"""Idempotent stream setup, and small tables of stream and consumer state.

``js.add_stream`` fails when a stream exists with another configuration, and
silently succeeds when it is the same: a notebook cell that creates a stream
must be safe to re-run, and a changed configuration must not be ignored.
:func:`ensure_stream` (notebook ``03_publishing``) creates the stream, or
reports it unchanged, or updates what the server allows to change, or raises
:class:`~edalab._errors.StreamConfigConflict` naming each differing field::

    setup = await ensure_stream(js, "USERS", ["user.>"])
    setup.action        # 'created', then 'unchanged' on a re-run
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import nats.js.errors
from nats.js.api import ConsumerInfo, RawStreamMsg, StreamConfig, StreamInfo
from nats.js.client import JetStreamContext

from edalab._errors import StreamConfigConflict, StreamInUse
from edalab._nats import ErrCode, err_code_of
from edalab._subjects import overlaps, validate_subject

__all__ = [
    "StreamSetup",
    "Table",
    "consumer_table",
    "ensure_stream",
    "fresh_stream",
    "plain",
    "state_change",
    "stream_messages",
    "stream_table",
]

#: How many times :func:`fresh_stream` deletes and re-creates a stream that came back non-empty.
_FRESH_ATTEMPTS = 20  # about one re-creation in three needs a second one here

#: JetStream API error code: "subjects overlap with an existing stream".


@dataclass(frozen=True)
class StreamSetup:
    """What :func:`ensure_stream` did: ``created``, ``unchanged`` or ``updated``."""

    name: str
    action: Literal["created", "unchanged", "updated"]
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    info: StreamInfo | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        extra = f", changes={self.changes!r}" if self.changes else ""
        return f"StreamSetup(name={self.name!r}, action={self.action!r}{extra})"


def plain(value: Any) -> Any:
    """An enum's wire value (``'file'``, ``'by_start_sequence'``); anything else unchanged.

    >>> from nats.js.api import StorageType
    >>> plain(StorageType.FILE)
    'file'
    """
    return value.value if isinstance(value, Enum) else value


def _normalise(key: str, value: Any) -> Any:
    if key == "subjects" and value is not None:
        return sorted(value)
    return value


def _diff(existing: StreamConfig, wanted: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for key, new in wanted.items():
        old = getattr(existing, key, None)
        if _normalise(key, plain(old)) != _normalise(key, plain(new)):
            changes[key] = (plain(old), plain(new))
    return changes


async def _overlapping(js: JetStreamContext, name: str, subjects: Sequence[str]) -> list[str]:
    found = []
    for info in await js.streams_info():
        if info.config.name == name:
            continue
        theirs = info.config.subjects or []
        if any(overlaps(a, b) for a in subjects for b in theirs):
            found.append(f"{info.config.name} {theirs}")
    return found


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: Iterable[str],
    *,
    update: bool = True,
    **config: Any,
) -> StreamSetup:
    """Create stream ``name`` capturing ``subjects``, idempotently.

    ``config`` takes any :class:`nats.js.api.StreamConfig` field (``storage``,
    ``max_msgs``, ``duplicate_window`` ...). Only the fields you pass are compared
    with an existing stream; the others keep their current values. With
    ``update=False`` a difference raises instead of updating.
    """
    subs = [validate_subject(s, wildcards=True) for s in subjects]
    wanted: dict[str, Any] = {"subjects": subs, **config}
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        try:
            info = await js.add_stream(StreamConfig(name=name, **wanted))
        except nats.js.errors.APIError as err:
            if err.err_code == ErrCode.STREAM_SUBJECT_OVERLAP:
                others = await _overlapping(js, name, subs)
                raise StreamConfigConflict(
                    name,
                    f"its subjects {subs} overlap those of existing stream(s): "
                    + ", ".join(others),
                    {},
                ) from err
            raise StreamConfigConflict(name, str(err.description), {}) from err
        return StreamSetup(name, "created", info=info)
    changes = _diff(info.config, wanted)
    if not changes:
        return StreamSetup(name, "unchanged", info=info)
    if not update:
        raise StreamConfigConflict(name, "exists with another configuration", changes)
    merged = StreamConfig.from_response(info.config.as_dict())
    for key in changes:
        setattr(merged, key, wanted[key])
    try:
        info = await js.update_stream(merged)
    except nats.js.errors.APIError as err:
        raise StreamConfigConflict(
            name, f"the server refused the update: {err.description}", changes
        ) from err
    return StreamSetup(name, "updated", changes, info=info)


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
    :class:`~edalab._errors.StreamInUse` names that notebook instead, so
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
    from edalab._state import state_dir

    created = info.created.isoformat() if info.created else "unknown"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in created)
    return state_dir() / "holders" / f"{info.config.name}@{safe}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _refuse_if_held(js: JetStreamContext, name: str) -> Path | None:
    """Raise :class:`StreamInUse` when another live kernel here created ``name``.

    Returns the claim file of the stream about to be deleted (to be removed with it).
    """
    import json

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
        and _alive(int(pid))
    ):
        raise StreamInUse(name, str(holder.get("notebook", "another notebook")), int(pid))
    return claim


async def _hold(js: JetStreamContext, name: str, holder: dict[str, str]) -> None:
    """Record this kernel as the creator of stream ``name`` (best effort)."""
    import json

    claim = _claim(await js.stream_info(name))
    with contextlib.suppress(OSError):
        claim.parent.mkdir(parents=True, exist_ok=True)
        claim.write_text(json.dumps(holder) + "\n")


async def stream_messages(
    js: JetStreamContext, name: str
) -> AsyncIterator[tuple[int, RawStreamMsg]]:
    """``(sequence, message)`` for every message still in stream ``name``, in order.

    Read without a consumer.

    Deleted messages (gaps in the sequence) are skipped. One request per message: meant
    for inspecting small streams (exercise checks, dead letters), not for consuming.
    """
    info = await js.stream_info(name)
    if not info.state.messages:  # an empty stream reports first_seq 0, not a message
        return
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        try:
            msg = await js.get_msg(name, seq)
        except nats.js.errors.NotFoundError:
            continue
        yield seq, msg


class Table:
    """A small text table that renders the same way every time (for notebook outputs).

    >>> Table(["a", "b"], [[1, "x"], [22, "yy"]])
    a   b
    --  --
    1   x
    22  yy
    """

    def __init__(self, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]

    def __repr__(self) -> str:
        cells = [self.headers] + [[str(c) for c in r] for r in self.rows]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(self.headers))]
        lines = [
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
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
