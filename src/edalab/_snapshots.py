"""A stream's snapshot in a file, and the stream restored from it (notebook
``20_topology_and_recovery``).

nats-py has no snapshot API; the server's own protocol is driven in ``_nats``
(``stream_snapshot`` and ``stream_restore`` in the private ``_nats``). A
snapshot holds the stream's messages and its consumers with their positions (delivered,
acknowledged), so a restored stream carries on where the original was::

    taken = await snapshot_stream(js, "ORDERS", "orders.snapshot")
    info = await restore_stream(js_elsewhere, "orders.snapshot")

The file format is edalab's own, not that of ``nats stream backup`` (a directory with
``backup.json`` and ``stream.tar.s2``; restore those with ``nats stream restore``): one
JSON line (the stream's name, configuration and state at the snapshot, the size and
SHA-256 of what follows) and the server's archive after it. A file that was cut short
or changed is refused before anything is sent (:class:`SnapshotError`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import nats.errors
import nats.js.errors
from nats.js.api import StreamInfo
from nats.js.client import JetStreamContext

from ._errors import StreamError
from ._nats import ErrCode, err_code_of, stream_restore, stream_snapshot

__all__ = ["Snapshot", "SnapshotError", "restore_stream", "snapshot_stream"]

_FORMAT = "edalab-stream-snapshot/1"
_CHUNK = 128 * 1024
_MAX_HEADER = 1 << 20  # a stream's configuration and state fit easily


class SnapshotError(StreamError):
    """A snapshot could not be taken, read or restored; names the stream and the file."""

    def __init__(self, stream: str, path: Path | str, reason: str) -> None:
        self.stream = stream
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"snapshot of stream {stream!r} in {str(path)!r}: {reason}")


@dataclass(frozen=True)
class Snapshot:
    """What a snapshot file holds: the stream, its messages and consumers, the bytes."""

    stream: str
    path: Path
    messages: int
    first_seq: int
    last_seq: int
    consumers: int
    bytes: int


def _header(stream: str, answer: dict[str, Any], size: int, digest: str) -> bytes:
    head = {
        "format": _FORMAT,
        "stream": stream,
        "config": answer.get("config", {}),
        "state": answer.get("state", {}),
        "bytes": size,
        "sha256": digest,
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n"


class _Writer:
    """A snapshot's bytes as they arrive: a ``.part`` file beside the target, and their hash."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.file = self.part.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def discard(self) -> None:
        self.file.close()
        self.part.unlink(missing_ok=True)

    def finish(self, header: bytes) -> None:
        """The file: the header line, then the bytes received."""
        self.file.close()
        with self.path.open("wb") as out, self.part.open("rb") as data:
            out.write(header)
            while chunk := data.read(_CHUNK):
                out.write(chunk)
        self.part.unlink()


async def snapshot_stream(
    js: JetStreamContext, name: str, path: Path | str, *, timeout: float = 5.0
) -> Snapshot:
    """Write a snapshot of stream ``name`` (messages, consumers and their positions) to ``path``.

    The stream keeps taking writes meanwhile; the snapshot is the state when the server
    began it. The file is edalab's own format (a JSON header line, then the server's
    archive), read back by :func:`restore_stream`; ``nats stream restore`` does not read
    it. Raises :class:`SnapshotError` naming the stream and the file when the server
    refuses or the transfer stops.

        taken = await snapshot_stream(js, "ORDERS", "orders.snapshot")
        taken.messages, taken.consumers
    """
    path = Path(path)
    out = _Writer(path)
    try:
        answer = await stream_snapshot(js, name, out.write, timeout=timeout)
    except nats.js.errors.APIError as err:
        out.discard()
        why = (
            "there is no such stream"
            if err_code_of(err) == ErrCode.STREAM_NOT_FOUND
            else f"the server said: {err.description} (code {err.code})"
        )
        raise SnapshotError(name, path, why) from err
    except (nats.errors.Error, TimeoutError) as err:
        out.discard()
        raise SnapshotError(name, path, f"the transfer stopped ({err!r})") from err
    out.finish(_header(name, answer, out.size, out.digest.hexdigest()))
    state = answer.get("state", {})
    return Snapshot(
        stream=name,
        path=path,
        messages=int(state.get("messages", 0)),
        first_seq=int(state.get("first_seq", 0)),
        last_seq=int(state.get("last_seq", 0)),
        consumers=int(state.get("consumer_count", 0)),
        bytes=out.size,
    )


def _read_header(path: Path, data: BinaryIO) -> dict[str, Any]:
    line = data.readline(_MAX_HEADER)
    try:
        head: dict[str, Any] = json.loads(line)
    except ValueError:
        head = {}
    if not isinstance(head, dict) or head.get("format") != _FORMAT:
        raise SnapshotError(
            "?",
            path,
            "not a stream snapshot written by edalab.snapshot_stream (no header); a "
            "`nats stream backup` directory is restored with `nats stream restore`",
        )
    stream = head.get("stream")
    kinds = {"stream": str, "config": dict, "state": dict, "bytes": int, "sha256": str}
    bad = [key for key, kind in kinds.items() if not isinstance(head.get(key), kind)]
    if bad or not stream:
        raise SnapshotError(
            stream if isinstance(stream, str) and stream else "?",
            path,
            f"its header line is damaged ({', '.join(bad or ['stream'])} missing or of the "
            "wrong type): take the snapshot again or use an intact copy",
        )
    return head


def _verified(path: Path, data: BinaryIO, head: dict[str, Any]) -> None:
    """Refuse a file cut short or changed, before the server sees a byte of it."""
    stream, want = str(head["stream"]), int(head["bytes"])
    start = data.tell()
    have = os.fstat(data.fileno()).st_size - start
    if have != want:
        raise SnapshotError(
            stream,
            path,
            f"the file holds {have} bytes of snapshot data where {want} were written: it was "
            "cut short or added to; take the snapshot again or use an intact copy",
        )
    digest = hashlib.sha256()
    while chunk := data.read(_CHUNK):
        digest.update(chunk)
    if digest.hexdigest() != head.get("sha256"):
        raise SnapshotError(
            stream,
            path,
            "its SHA-256 differs from the one written with it: the file is damaged; take "
            "the snapshot again or use an intact copy",
        )
    data.seek(start)


def _open_checked(path: Path) -> tuple[dict[str, Any], BinaryIO]:
    """The snapshot's header, and the file positioned at its data (size and hash checked)."""
    try:
        data = path.open("rb")
    except OSError as err:
        raise SnapshotError("?", path, f"cannot read the file ({err.strerror})") from err
    try:
        head = _read_header(path, data)
        _verified(path, data, head)
    except BaseException:
        data.close()
        raise
    return head, data


def _chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(_CHUNK):
        yield chunk


async def restore_stream(
    js: JetStreamContext, path: Path | str, *, timeout: float = 5.0
) -> StreamInfo:
    """Create the stream saved in ``path`` (by :func:`snapshot_stream`) on ``js``'s server.

    The stream comes back under its own name, with every message and every consumer at
    the position it had. Only files written by :func:`snapshot_stream` are read (not a
    ``nats stream backup`` directory). The file is checked first (size and SHA-256); the server
    refuses a name already in use. Either way :class:`SnapshotError` says which stream
    and file, and why.

        info = await restore_stream(js, "orders.snapshot")
        info.state.messages
    """
    path = Path(path)
    head, data = _open_checked(path)
    with data:
        stream = str(head["stream"])
        try:
            answer = await stream_restore(js, stream, head, _chunks(data), timeout=timeout)
        except nats.js.errors.APIError as err:
            if err_code_of(err) == ErrCode.STREAM_NAME_EXIST_RESTORE:
                why = "a stream of that name exists on this server: delete it, or restore elsewhere"
            else:
                why = f"the server refused it: {err.description} (code {err.err_code or err.code})"
            raise SnapshotError(stream, path, why) from err
        except (nats.errors.Error, TimeoutError) as err:
            raise SnapshotError(stream, path, f"the transfer stopped ({err!r})") from err
    info: StreamInfo = StreamInfo.from_response(answer)  # a stream create response
    return info
