"""A live picture of a stream and its consumers, in the notebook, while later cells run.

``board = await view(js, "ORDERS")`` then ``board`` in a cell: the stream drawn as a strip
of messages (sequence numbers, first and last; messages gone from the front or deleted
from inside are grey), every consumer as a row with a marker at its delivered position
(▼) and its ack floor (|), the messages in flight between them (delivered, not yet
acknowledged: ``num_ack_pending``), its figures (``num_pending``, ``num_ack_pending``,
``num_redelivered``, ``num_waiting`` and its deliveries so far), and the
last few advisories on the stream (max deliveries, terminated, consumer deleted). Lessons
03, 05, 06, 07, 11 and 14 use it.

**How it updates.** An asyncio task in the kernel's event loop asks JetStream's info API
(``stream_info`` and ``consumers_info``, plus the deleted sequence numbers when the stream
has any) at most four times a second, and pushes a new picture to the notebook only when
something changed; it listens to the advisory subjects
``$JS.EVENT.ADVISORY.CONSUMER.{MAX_DELIVERIES,MSG_TERMINATED,DELETED}.<stream>.*``
(nats-server's ``server/jetstream_api.go``). It uses a connection of its own to the
learner's server (so a cell that closes ``nc`` does not stop it), reconnecting for ever:
while the server is down it says "server unavailable, retrying" and resumes when the
server is back; a consumer that disappears stays on the picture marked "deleted".
``board.close()`` stops it (the picture stays, marked "closed"); re-running the cell
replaces the old view of that stream, so no task is left behind.

**Redeliveries.** Every delivery, first or again, advances a consumer's
``delivered.consumer_seq`` (the picture's "deliveries"); ``delivered.stream_seq`` (the
▼) is the newest message delivered. When the deliveries outrun the messages, some went
out again, whatever the cause: a nak, an ``ack_wait`` that ran out, a backoff step.
``num_redelivered`` is the server's count of the messages still unacknowledged that went
out more than once. Every figure is the server's own, so the picture of a moment does not
depend on when the view happened to look.

**Toolkit: anywidget (0.11) on ipywidgets.** The picture is drawn in Python, once, as SVG
(:meth:`StreamSnapshot.svg`): the same drawing is the live widget's content, the static
picture a stored notebook and the course book keep (the output's ``image/svg+xml``), and
what :meth:`View.snapshot` shows, so the live and static pictures cannot disagree. The
widget only carries that SVG to the page and, in a dozen lines of JavaScript
(``view.js``, shipped in the package, no CDN), flashes what changed since the last
picture, so a learner sees *what moved*. Plain ipywidgets has no way to ship that script
without a JupyterLab extension of our own to build and version; anywidget's wheel
carries its JupyterLab extension (no network at run time, nothing to build) and takes
the script as a string, and it is a small, maintained layer on ipywidgets' own comm
protocol. Where no widget manager runs (nbval, nbconvert, GitHub, the book), the output's
SVG and text stand in.

    >>> StreamSnapshot("ORDERS", first_seq=1, last_seq=3, messages=3).text().splitlines()[0]
    'stream ORDERS: live · messages 3 · first_seq 1 · last_seq 3'
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo, StreamInfo
from nats.js.client import JetStreamContext

from .._errors import NotAnEdalabJetStream
from .._nats import JetStream, connection_of, stream_deleted

__all__ = ["Advisory", "ConsumerState", "StreamSnapshot", "View", "view"]

#: At most this many looks at the server, and pictures pushed, per second.
UPDATES_PER_SECOND = 4
#: The advisories the view listens to (``<kind>.<stream>.<consumer>`` follows each).
ADVISORY_KINDS = {
    "MAX_DELIVERIES": "max deliveries",
    "MSG_TERMINATED": "terminated",
    "DELETED": "consumer deleted",
}
#: How many advisories the picture keeps (the most recent).
ADVISORIES_SHOWN = 5
#: How many sequence numbers the strip shows at most (the stream's tail beyond that).
CELLS = 40

LIVE = "live"
UNAVAILABLE = "server unavailable, retrying"
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """One consumer as the picture draws it: positions (stream sequence numbers) and figures."""

    name: str
    delivered: int = 0  #: stream sequence of the last message delivered
    ack_floor: int = 0  #: every message up to here is acknowledged
    num_pending: int = 0
    num_ack_pending: int = 0
    num_redelivered: int = 0
    num_waiting: int = 0
    deliveries: int = 0  #: deliveries so far, redeliveries included (delivered.consumer_seq)
    deleted: bool = False

    @classmethod
    def of(cls, info: ConsumerInfo) -> ConsumerState:
        """From nats-py's ``ConsumerInfo``."""
        delivered = info.delivered.stream_seq or 0 if info.delivered else 0
        dseq = info.delivered.consumer_seq or 0 if info.delivered else 0
        return cls(
            name=str(info.name),
            delivered=delivered,
            ack_floor=info.ack_floor.stream_seq or 0 if info.ack_floor else 0,
            num_pending=info.num_pending or 0,
            num_ack_pending=info.num_ack_pending or 0,
            num_redelivered=info.num_redelivered or 0,
            num_waiting=info.num_waiting or 0,
            deliveries=dseq,
        )


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory the view heard: what happened, to which consumer and message."""

    kind: str  #: "max deliveries", "terminated" or "consumer deleted"
    consumer: str
    stream_seq: int | None = None
    deliveries: int | None = None
    reason: str = ""
    #: when the server sent it (its ``timestamp``); not drawn
    at: datetime | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, subject: str, data: bytes) -> Advisory | None:
        """From an advisory message (``None`` for one the view does not show)."""
        tokens = subject.split(".")
        if len(tokens) < 7 or tokens[4] not in ADVISORY_KINDS:
            return None
        try:
            body = json.loads(data)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        seq, deliveries = body.get("stream_seq"), body.get("deliveries")
        return cls(
            kind=ADVISORY_KINDS[tokens[4]],
            consumer=".".join(tokens[6:]),
            stream_seq=int(seq) if isinstance(seq, int) else None,
            deliveries=int(deliveries) if isinstance(deliveries, int) else None,
            reason=str(body.get("reason") or ""),
            at=_timestamp(body.get("timestamp")),
        )

    def __str__(self) -> str:
        words = [self.kind, self.consumer]
        if self.stream_seq is not None:
            words.append(f"seq {self.stream_seq}")
        if self.deliveries is not None:
            words.append(f"after {self.deliveries} deliveries")
        if self.reason:
            words.append(f"reason {self.reason!r}")
        return " ".join(words)


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """A stream and its consumers at one moment: what the picture draws, as data.

    Equal snapshots draw equal pictures; the view pushes a picture only when the
    snapshot changed.

        >>> s = StreamSnapshot("T", first_seq=3, last_seq=4, messages=2)
        >>> [s.gone(n) for n in (1, 2, 3, 4)]
        [True, True, False, False]
    """

    stream: str
    status: str = LIVE  #: "live", "server unavailable, retrying", "closed", "stream ... not found"
    first_seq: int = 0
    last_seq: int = 0
    messages: int = 0
    deleted: tuple[int, ...] = ()  #: deleted from inside (below first_seq is gone too)
    consumers: tuple[ConsumerState, ...] = ()
    advisories: tuple[Advisory, ...] = ()
    #: when the stream was created (a stream deleted and created again is another picture)
    created: datetime | None = None

    @classmethod
    def of(
        cls,
        info: StreamInfo,
        consumers: Iterable[ConsumerInfo],
        *,
        before: StreamSnapshot | None = None,
        deleted: Sequence[int] = (),
        advisories: Iterable[Advisory] = (),
    ) -> StreamSnapshot:
        """From nats-py's infos; consumers the last look had and this one lacks are "deleted".

        A stream created again since the last look (``fresh_stream`` at the top of a
        lesson run twice) starts a new picture: the old stream's consumers and advisories
        are not carried over.
        """
        created = info.created
        if before is not None and before.created != created:
            before = None
        old = {c.name: c for c in before.consumers} if before else {}
        now = {str(c.name): ConsumerState.of(c) for c in consumers if c.name is not None}
        for name, c in old.items():
            if name not in now:
                now[name] = replace(c, deleted=True, num_waiting=0)
        st = info.state
        return cls(
            stream=str(info.config.name),
            first_seq=st.first_seq,
            last_seq=st.last_seq,
            messages=st.messages,
            deleted=tuple(sorted(deleted)),
            consumers=tuple(now[n] for n in sorted(now)),
            advisories=tuple(
                a for a in advisories if a.at is None or created is None or a.at >= created
            )[-ADVISORIES_SHOWN:],
            created=created,
        )

    def gone(self, seq: int) -> bool:
        """The message ``seq`` is no longer in the stream (removed from the front, or deleted)."""
        return seq < self.first_seq or seq in self.deleted

    def window(self) -> tuple[int, int]:
        """The first and last sequence numbers the strip shows (at most :data:`CELLS`)."""
        hi = max([self.last_seq, 1, *(c.delivered for c in self.consumers)])
        return max(1, hi - CELLS + 1), hi

    def text(self) -> str:
        """The same state as plain text (the output's ``text/plain``)."""
        lines = [
            f"stream {self.stream}: {self.status} · messages {self.messages} · "
            f"first_seq {self.first_seq} · last_seq {self.last_seq}"
        ]
        if self.deleted:
            lines.append(f"deleted: {', '.join(map(str, self.deleted))}")
        if self.consumers:
            from ._lesson import Table

            rows = [
                [c.name + (" (deleted)" if c.deleted else ""), c.delivered, c.ack_floor,
                 c.num_pending, c.num_ack_pending, c.num_redelivered, c.num_waiting,
                 c.deliveries]
                for c in self.consumers
            ]  # fmt: skip
            heads = ["consumer", "delivered", "ack_floor", "num_pending", "num_ack_pending",
                     "num_redelivered", "num_waiting", "deliveries"]  # fmt: skip
            lines.append(repr(Table(heads, rows)))
        lines += [f"advisory: {a}" for a in self.advisories]
        return "\n".join(lines)

    def svg(self) -> str:
        """The picture, as a standalone SVG document (deterministic: no time, no ids)."""
        return _Drawing(self).svg()


def _timestamp(value: Any) -> datetime | None:
    """An advisory's RFC 3339 ``timestamp`` (nanoseconds cut to micro), or ``None``."""
    if not isinstance(value, str):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    except ValueError:
        return None


class _Drawing:
    """Lays a snapshot out: a strip of cells, a row per consumer, the advisories below."""

    W = 840
    X0, X1 = 110, 530  # the strip's left and right edges
    FIG = 545  # where the figures start
    TOP = 34  # the strip's top
    ROW = 36  # one consumer's row

    def __init__(self, s: StreamSnapshot) -> None:
        self.s = s
        self.lo, self.hi = s.window()
        self.cell = min(28.0, (self.X1 - self.X0) / (self.hi - self.lo + 1))
        self.parts: list[str] = []

    def x(self, seq: int) -> float:
        """The left edge of ``seq``'s cell (clamped to the strip)."""
        seq = min(max(seq, self.lo), self.hi + 1)
        return self.X0 + (seq - self.lo) * self.cell

    def text(self, x: float, y: float, words: str, cls: str = "", key: str = "", **at: Any) -> None:
        attrs = "".join(f' {k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in at.items())
        if key:
            attrs += f' data-key="{html.escape(key)}"'
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}"{attrs}>{html.escape(words)}</text>'
        )

    def svg(self) -> str:
        s = self.s
        rows = len(s.consumers)
        adv_top = self.TOP + 44 + rows * self.ROW + 18
        height = adv_top + 16 + 15 * max(1, len(s.advisories)) + 22
        status_cls = "ok" if s.status == LIVE else "bad" if s.status != CLOSED else "dim"
        self.text(4, 16, f"stream {s.stream}", "title")
        figures = f"messages {s.messages} · first_seq {s.first_seq} · last_seq {s.last_seq}"
        self.text(self.FIG, self.TOP + 14, figures, key="stream", data_value=figures)
        self.text(self.W - 6, 16, s.status, status_cls, key="status", text_anchor="end",
                  data_value=s.status)  # fmt: skip
        self.strip()
        for i, c in enumerate(s.consumers):
            self.consumer(c, self.TOP + 44 + i * self.ROW)
        if not s.consumers:
            self.text(4, self.TOP + 60, "no consumers yet", "dim")
        self.advisories(adv_top)
        self.legend(height - 8)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.W}" height="{height}" '
            f'viewBox="0 0 {self.W} {height}" font-family="sans-serif" font-size="11" '
            f'class="edalab-view-picture">'
            f"<style>{_STYLE}</style>"
            f'<rect class="ev-bg" x="0" y="0" width="{self.W}" height="{height}"/>'
            # Every class is ev-*, and the style is scoped to the picture: inlined in the
            # page (the live widget), it must not restyle JupyterLab's own elements.
            + re.sub(r'class="(\w+)"', r'class="ev-\1"', "".join(self.parts))
            + "</svg>"
        )

    def strip(self) -> None:
        y, h = self.TOP, 20
        self.text(4, y + 14, "messages", "dim")
        every = 1 if self.cell >= 18 else 5
        for seq in range(self.lo, self.hi + 1):
            x = self.x(seq)
            state = "gone" if self.s.gone(seq) else "msg" if seq <= self.s.last_seq else "none"
            self.parts.append(
                f'<rect class="{state}" x="{x:.1f}" y="{y}" width="{self.cell - 1:.1f}" '
                f'height="{h}" data-key="seq:{seq}" data-value="{state}"/>'
            )
            if seq % every == 0 or seq in (self.lo, self.hi):
                cx = x + (self.cell - 1) / 2
                self.text(cx, y + h + 11, str(seq), "seq", text_anchor="middle")

    def consumer(self, c: ConsumerState, y: int) -> None:
        cls = "dim" if c.deleted else "name"
        self.text(4, y + 14, c.name[:16], cls)
        if not c.deleted:
            # In flight: delivered, not yet acknowledged (at most num_ack_pending of them).
            if c.delivered > c.ack_floor and c.num_ack_pending:
                x0, x1 = self.x(c.ack_floor + 1), self.x(c.delivered + 1)
                self.parts.append(
                    f'<rect class="flight" x="{x0:.1f}" y="{y + 4}" '
                    f'width="{max(x1 - x0 - 1, 2):.1f}"'
                    f' height="14" data-key="{html.escape(c.name)}:in_flight"'
                    f' data-value="{c.ack_floor}-{c.delivered}"/>'
                )
            xa = self.x(c.ack_floor + 1) - 0.5
            self.parts.append(
                f'<line class="floor" x1="{xa:.1f}" x2="{xa:.1f}" y1="{y}" y2="{y + 22}" '
                f'data-key="{html.escape(c.name)}:ack_floor" data-value="{c.ack_floor}"/>'
            )
            if c.delivered >= self.lo:
                xd = self.x(c.delivered) + (self.cell - 1) / 2
                self.parts.append(
                    f'<path class="delivered" d="M{xd - 5:.1f},{y - 1} L{xd + 5:.1f},{y - 1} '
                    f'L{xd:.1f},{y + 8} Z" data-key="{html.escape(c.name)}:delivered" '
                    f'data-value="{c.delivered}"/>'
                )
            elif c.delivered:
                self.text(self.X0 + 2, y + 14, f"◂ delivered {c.delivered}", "dim")
        self.text(4, y + 27, f"seq {c.delivered} · floor {c.ack_floor}", "small")
        if c.deleted:
            self.text(self.FIG, y + 14, "deleted", "bad", key=f"{c.name}:deleted",
                      data_value="deleted")  # fmt: skip
            return
        one = f"num_pending {c.num_pending} · num_ack_pending {c.num_ack_pending}"
        two = (
            f"num_redelivered {c.num_redelivered} · num_waiting {c.num_waiting} · "
            f"deliveries {c.deliveries}"
        )
        self.text(self.FIG, y + 10, one, key=f"{c.name}:pending", data_value=one)
        self.text(self.FIG, y + 24, two, key=f"{c.name}:redelivered", data_value=two)

    def advisories(self, y: int) -> None:
        self.text(4, y, "advisories", "dim")
        if not self.s.advisories:
            self.text(self.X0, y, "none yet", "dim")
        for i, a in enumerate(self.s.advisories):
            self.text(self.X0, y + 15 * i, str(a)[:110], "adv", key=f"advisory:{i}",
                      data_value=str(a))  # fmt: skip

    def legend(self, y: int) -> None:
        x = self.X0
        self.parts.append(f'<path class="delivered" d="M{x},{y - 9} L{x + 10},{y - 9} '
                          f'L{x + 5},{y} Z"/>')  # fmt: skip
        self.text(x + 14, y, "delivered", "dim")
        self.parts.append(f'<line class="floor" x1="{x + 80}" x2="{x + 80}" y1="{y - 10}" '
                          f'y2="{y + 2}"/>')  # fmt: skip
        self.text(x + 86, y, "ack floor", "dim")
        self.parts.append(f'<rect class="flight" x="{x + 150}" y="{y - 9}" width="16" '
                          'height="10"/>')  # fmt: skip
        self.text(x + 170, y, "in flight (delivered, not acknowledged)", "dim")
        self.parts.append(f'<rect class="gone" x="{x + 390}" y="{y - 9}" width="10" height="10"/>')
        self.text(x + 404, y, "gone (removed or deleted)", "dim")


_STYLE = " ".join(
    f".edalab-view-picture .ev-{rule}"
    for rule in [
        "bg{fill:#fff}", "title{font-weight:bold;font-size:13px}", "dim{fill:#888}",
        "ok{fill:#1a7f37}", "bad{fill:#c62828;font-weight:bold}", "name{font-weight:bold}",
        "seq{fill:#555;font-size:9px}", "small{fill:#666;font-size:9px}", "adv{fill:#333}",
        "msg{fill:#cfe3ff;stroke:#3b73b9}", "gone{fill:#e3e3e3;stroke:#bbb}",
        "none{fill:none;stroke:#eee}", "flight{fill:#ffb74d;opacity:.75}",
        "floor{stroke:#1a7f37;stroke-width:3}", "delivered{fill:#3b73b9}",
    ]
)  # fmt: skip


class Picture:
    """A static picture of a snapshot: SVG for a page, text for a terminal (what nbval compares)."""

    def __init__(self, snapshot: StreamSnapshot) -> None:
        self.snapshot = snapshot

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        return {"text/plain": self.snapshot.text(), "image/svg+xml": self.snapshot.svg()}

    def __repr__(self) -> str:
        return self.snapshot.text()


#: The views open in this kernel, by stream: opening one again replaces the old.
_OPEN: dict[str, View] = {}


class View:
    """A live view of one stream; from :func:`view`.

    ``board.snapshot()`` (awaited) looks at the server now and returns the static
    :class:`Picture`; ``board.state`` is the last :class:`StreamSnapshot`;
    ``board.close()`` stops the updates.
    """

    def __init__(self, nc: NATS, stream: str, consumers: Iterable[str] | None = None) -> None:
        self.stream = stream
        self._only = None if consumers is None else set(consumers)
        self._nc = nc
        self._js = nc.jetstream(timeout=2.0)
        self._advisories: deque[Advisory] = deque(maxlen=50)
        self.state = StreamSnapshot(stream, status="opening")
        self._shown: StreamSnapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._widget: Any = None
        self._closed = False
        #: How many pictures the view pushed to the page (only changed ones count).
        self.updates = 0
        #: How many times the view has looked at the server.
        self.looks = 0
        self._looked = asyncio.Condition()

    async def _start(self) -> None:
        for kind in ADVISORY_KINDS:
            subject = f"$JS.EVENT.ADVISORY.CONSUMER.{kind}.{self.stream}.*"
            await self._nc.subscribe(subject, cb=self._heard)
        for _ in range(10):  # the first picture is a real one, even on a busy machine
            try:
                if (await self.refresh()).status != UNAVAILABLE:
                    break
            except Exception as err:  # shown on the picture, never a traceback
                self.state = replace(self.state, status=f"error: {type(err).__name__}")
                break
        self._widget = _widget(self.state)
        self._shown = self.state
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _heard(self, msg: Msg) -> None:
        advisory = Advisory.parse(msg.subject, msg.data)
        if advisory is not None:
            self._advisories.append(advisory)

    async def refresh(self) -> StreamSnapshot:
        """Look at the server once now; returns (and keeps) the new snapshot."""
        try:
            info = await self._js.stream_info(self.stream)
            consumers = [
                c
                for c in await self._js.consumers_info(self.stream)
                if self._only is None or c.name in self._only
            ]
            deleted: list[int] = []
            if info.state.num_deleted:
                deleted = await stream_deleted(self._nc, self.stream)
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                await self._nc.flush(timeout=1)  # advisories sent before our requests are in
            state = StreamSnapshot.of(
                info, consumers, before=self.state, deleted=deleted, advisories=self._advisories
            )
        except nats.js.errors.NotFoundError:
            state = replace(self.state, status=f"stream {self.stream} not found")
        except (TimeoutError, nats.errors.Error, OSError):
            state = replace(self.state, status=UNAVAILABLE)
        if self._nc.is_closed or self._closed:
            state = replace(state, status=CLOSED)
        self.state = state
        return state

    async def _run(self) -> None:
        try:
            while not self._closed:  # a cancel that a nats-py request swallowed ends it too
                try:
                    state = await self.refresh()
                except Exception as err:  # never a traceback from a background task
                    state = replace(self.state, status=f"error: {type(err).__name__}")
                self._push(state)
                self.looks += 1
                async with self._looked:
                    self._looked.notify_all()
                # The rate bound: one look per period, whatever happens in between.
                await asyncio.sleep(1 / UPDATES_PER_SECOND)
        finally:
            with contextlib.suppress(Exception):
                await self._nc.close()

    def _push(self, state: StreamSnapshot) -> None:
        if state == self._shown or self._widget is None:
            return
        self._shown = state
        self._widget.svg = state.svg()
        self._widget.status = state.status
        self.updates += 1

    async def wait_until(
        self, condition: Callable[[StreamSnapshot], bool], timeout: float = 5.0
    ) -> StreamSnapshot:
        """Wait until the view's own updates show ``condition`` (for a test or a lesson).

        Raises ``TimeoutError`` naming what the view last showed when ``timeout`` runs out.
        """
        try:
            async with self._looked:
                await asyncio.wait_for(
                    self._looked.wait_for(lambda: condition(self.state)), timeout
                )
        except TimeoutError:
            raise TimeoutError(
                f"the view did not get there in {timeout} s; it shows:\n{self.state.text()}"
            ) from None
        return self.state

    async def snapshot(self, timeout: float = 10.0) -> Picture:
        """Look now and return the static picture of this moment (an SVG in the output).

        While the server is unavailable it waits, up to ``timeout`` seconds, for the view
        to reach it again (a picture of "unavailable" when it does not).
        """
        if self._task is not None and not self._task.done():
            state = await self.refresh()
            if state.status == UNAVAILABLE:  # reconnecting (a restart): the task retries
                with contextlib.suppress(TimeoutError):
                    state = await self.wait_until(lambda s: s.status == LIVE, timeout)
            self._push(state)
        return Picture(self.state)

    def close(self) -> None:
        """Stop updating: the picture stays, marked "closed"; the view's connection closes."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.state = replace(self.state, status=CLOSED)
        self._push(self.state)
        if _OPEN.get(self.stream) is self:
            del _OPEN[self.stream]

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the view's task has ended and its connection closed."""
        self.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._nc.is_closed:
            await self._nc.close()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The asyncio task (in the kernel's loop) that keeps the picture up to date."""
        return self._task

    @property
    def running(self) -> bool:
        """Still updating (not closed, its task alive)."""
        return not self._closed and self._task is not None and not self._task.done()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = {"text/plain": self.state.text(), "image/svg+xml": self.state.svg()}
        if self._widget is not None:
            widget_view = "application/vnd.jupyter.widget-view+json"
            data = self._widget._repr_mimebundle_(**kwargs)
            if isinstance(data, tuple):  # anywidget answers (data, metadata)
                data = data[0]
            bundle[widget_view] = data[widget_view]
        return bundle

    def __repr__(self) -> str:
        return self.state.text()


def _widget(state: StreamSnapshot) -> Any:
    """The anywidget that carries the SVG to the page (``view.js`` draws it)."""
    import anywidget
    import traitlets

    here = Path(__file__).parent

    class StreamView(anywidget.AnyWidget):
        _esm = (here / "view.js").read_text()
        _css = (here / "view.css").read_text()
        svg = traitlets.Unicode("").tag(sync=True)
        status = traitlets.Unicode("").tag(sync=True)

    return StreamView(svg=state.svg(), status=state.status)


async def _own_connection(js: JetStreamContext, server: str | None) -> NATS:
    if server is None:
        if not isinstance(js, JetStream):
            raise NotAnEdalabJetStream(
                "view() connects on its own to the server your `js` talks to, and a plain "
                "nats-py context does not say which: connect with edalab.connect() and use "
                "nc.jetstream(), or pass server='nats://host:port'"
            )
        url = connection_of(js).connected_url
        if url is None:
            raise nats.errors.ConnectionClosedError
        server = f"{url.scheme}://{url.netloc}"

    async def quiet(*_: Any) -> None:
        """Disconnections show on the picture, not as log lines in the notebook."""

    for attempt in range(3):  # a busy machine can miss one connect timeout
        try:
            return await nats.connect(
                server,
                name="edalab view",
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                connect_timeout=5,
                error_cb=quiet,
                disconnected_cb=quiet,
                reconnected_cb=quiet,
                closed_cb=quiet,
            )
        except (nats.errors.Error, OSError, TimeoutError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def view(
    js: JetStreamContext,
    stream: str,
    *,
    consumers: Iterable[str] | None = None,
    server: str | None = None,
) -> View:
    """Open a live view of ``stream`` and its consumers; show it by ending the cell with it.

    It connects on its own to the server ``js`` talks to (or to ``server``), looks at
    most :data:`UPDATES_PER_SECOND` times a second, and redraws only on a change.
    Re-running the cell replaces the old view of the same stream. ``consumers`` names
    the consumers to draw (default: every consumer on the stream).

        board = await view(js, "ORDERS")
        board                      # the live picture
        ...                        # later cells publish, fetch, ack, nak
        await board.snapshot()     # a static picture of this moment
        board.close()
    """
    old = _OPEN.pop(stream, None)
    if old is not None:
        await old.aclose()
        if old._widget is not None:
            old._widget.close()
    board = View(await _own_connection(js, server), stream, consumers)
    await board._start()
    _OPEN[stream] = board
    return board


def open_views() -> list[View]:
    """The views open in this kernel (for tests: none left behind)."""
    return list(_OPEN.values())
