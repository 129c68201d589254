"""Idempotent stream setup, and reading a small stream without a consumer.

``js.add_stream`` fails when a stream exists with another configuration, and
silently succeeds when it is the same: a notebook cell that creates a stream
must be safe to re-run, and a changed configuration must not be ignored.
:func:`ensure_stream` (notebook ``03_publishing``) creates the stream, or
reports it unchanged, or updates what the server allows to change, or raises
:class:`~edalab.StreamConfigConflict` naming each differing field::

    setup = await ensure_stream(js, "USERS", ["user.>"])
    setup.action        # 'created', then 'unchanged' on a re-run
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import nats.js.errors
from nats.js.api import RawStreamMsg, StreamConfig, StreamInfo
from nats.js.client import JetStreamContext

from ._errors import StreamConfigConflict
from ._nats import ErrCode
from ._subjects import overlaps, validate_subject

__all__ = [
    "StreamSetup",
    "ensure_stream",
    "plain",
    "stream_messages",
]

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
