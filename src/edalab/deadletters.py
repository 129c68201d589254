"""Dead letters: messages a consumer gave up on, kept with the reason, ready to replay.

JetStream publishes an *advisory* whenever a consumer gives up on a message:

- ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`` when it was
  delivered ``max_deliver`` times without an ack;
- ``$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>`` when a client
  terminated it (``+TERM``; :class:`~edalab.consuming.EventConsumer` adds the reason:
  undecodable, unknown version, or the handler's :class:`~edalab.errors.PermanentError`).

Advisories are core NATS messages: nobody listening means they are gone. A stream
capturing them (notebook ``09_reliability``) keeps every one, even while no operator
tool runs. The advisory names the original stream and sequence, so the message itself
is found again there::

    dead = DeadLetters(js)
    await dead.setup()                    # the DEAD_LETTERS stream
    for letter in await dead.letters():
        print(letter.category, letter.reason)
    await dead.replay(letter)             # republish to its subject, then discard
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import nats.js.errors
from nats.js.api import PubAck, RawStreamMsg, StorageType
from nats.js.client import JetStreamContext

from edalab.errors import EdalabError
from edalab.events import Event
from edalab.publishing import MSG_ID
from edalab.server import wait_for
from edalab.streams import StreamSetup, Table, ensure_stream, stream_messages

__all__ = ["ADVISORY_SUBJECTS", "REPLAY_OF", "DeadLetter", "DeadLetters"]

ADVISORY_SUBJECTS = [
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
    "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
]

#: Header set on a replayed message: ``<stream>/<sequence>`` of the original.
REPLAY_OF = "Edalab-Replay-Of"

Category = Literal["max deliveries", "undecodable", "unknown version", "terminated"]


@dataclass(frozen=True)
class DeadLetter:
    """One advisory: which message (``stream``, ``stream_seq``) was given up on, and why."""

    id: int
    kind: Literal["max_deliveries", "terminated"]
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int
    reason: str

    @property
    def category(self) -> Category:
        """max deliveries, undecodable, unknown version, or terminated (by a handler)."""
        if self.kind == "max_deliveries":
            return "max deliveries"
        if self.reason.startswith("undecodable"):
            return "undecodable"
        if self.reason.startswith("UnknownVersionError"):
            return "unknown version"
        return "terminated"

    @classmethod
    def from_advisory(cls, seq: int, data: bytes) -> DeadLetter:
        """Parse an advisory stored at ``seq`` of the dead-letter stream."""
        body: dict[str, Any] = json.loads(data)
        max_deliveries = body.get("type", "").endswith("max_deliver")
        deliveries = int(body.get("deliveries", 0))
        return cls(
            id=seq,
            kind="max_deliveries" if max_deliveries else "terminated",
            stream=body["stream"],
            consumer=body["consumer"],
            stream_seq=int(body["stream_seq"]),
            deliveries=deliveries,
            reason=body.get("reason")
            or (f"delivered {deliveries} times, never acknowledged" if max_deliveries else ""),
        )


class DeadLetters:
    """List, inspect, replay and discard the messages consumers gave up on."""

    def __init__(self, js: JetStreamContext, stream: str = "DEAD_LETTERS") -> None:
        self.js = js
        self.stream = stream

    async def setup(self, **config: Any) -> StreamSetup:
        """Create (idempotently) the file-backed stream that captures the advisories."""
        config.setdefault("storage", StorageType.FILE)
        return await ensure_stream(self.js, self.stream, ADVISORY_SUBJECTS, **config)

    async def letters(
        self, *, stream: str | None = None, consumer: str | None = None
    ) -> list[DeadLetter]:
        """Every dead letter still held, oldest first, optionally for one stream or consumer."""
        out = []
        async for seq, raw in stream_messages(self.js, self.stream):  # discarded: gaps
            letter = DeadLetter.from_advisory(seq, raw.data or b"")
            if stream is not None and letter.stream != stream:
                continue
            if consumer is not None and letter.consumer != consumer:
                continue
            out.append(letter)
        return out

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> list[DeadLetter]:
        """Wait until at least ``count`` letters are held (advisories arrive asynchronously)."""

        async def enough() -> bool:
            info = await self.js.stream_info(self.stream)
            return bool(info.state.messages >= count)

        await wait_for(enough, timeout=timeout, what=f"{count} dead letters in {self.stream}")
        return await self.letters()

    async def original(self, letter: DeadLetter) -> RawStreamMsg:
        """The message the letter is about, from its stream."""
        try:
            msg: RawStreamMsg = await self.js.get_msg(letter.stream, letter.stream_seq)
        except nats.js.errors.NotFoundError:
            raise EdalabError(
                f"dead letter {letter.id}: message {letter.stream_seq} of stream "
                f"{letter.stream!r} no longer exists (removed by the stream's retention?)"
            ) from None
        return msg

    async def inspect(self, letter: DeadLetter) -> dict[str, Any]:
        """The letter with its original subject, payload and, if it decodes, its event."""
        msg = await self.original(letter)
        data = msg.data or b""
        try:
            event: Event | str = Event.from_json(data, subject=msg.subject, sequence=msg.seq)
        except EdalabError as err:
            event = f"not an event: {err}"
        return {
            "category": letter.category,
            "reason": letter.reason,
            "stream": letter.stream,
            "sequence": letter.stream_seq,
            "subject": msg.subject,
            "deliveries": letter.deliveries,
            "data": data,
            "event": event,
        }

    async def replay(
        self, letter: DeadLetter, *, data: bytes | None = None, discard: bool = True
    ) -> PubAck:
        """Publish the original message again on its subject (after a fix), then discard the letter.

        ``data`` replaces the payload (to repair it). The replay gets its own
        ``Nats-Msg-Id`` (the original's, plus ``:replay:<letter id>``) so the stream's
        de-duplication does not drop it, and an ``Edalab-Replay-Of`` header.
        """
        msg = await self.original(letter)
        headers = dict(msg.headers or {})
        base_id = headers.get(MSG_ID) or f"{letter.stream}-{letter.stream_seq}"
        headers[MSG_ID] = f"{base_id}:replay:{letter.id}"
        headers[REPLAY_OF] = f"{letter.stream}/{letter.stream_seq}"
        subject = msg.subject or ""
        ack: PubAck = await self.js.publish(
            subject, (msg.data or b"") if data is None else data, headers=headers
        )
        if discard:
            await self.discard(letter)
        return ack

    async def discard(self, letter: DeadLetter) -> None:
        """Remove the letter (the original message stays in its stream)."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_msg(self.stream, letter.id)

    @staticmethod
    def table(letters: list[DeadLetter]) -> Table:
        """A small table of letters for a notebook."""
        return Table(
            ["id", "category", "stream", "seq", "consumer", "deliveries", "reason"],
            [
                [d.id, d.category, d.stream, d.stream_seq, d.consumer, d.deliveries, d.reason]
                for d in letters
            ],
        )
