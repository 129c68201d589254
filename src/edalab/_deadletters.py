"""Dead letters: messages a consumer gave up on, kept with the reason, replayed to that consumer.

JetStream publishes an *advisory* whenever a consumer gives up on a message:

- ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`` when it was
  delivered ``max_deliver`` times without an ack;
- ``$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>`` when a client
  terminated it (``+TERM``; :class:`~edalab.EventConsumer` adds the reason,
  a :class:`~edalab.Reason`: undecodable, unknown version, or rejected by the
  handler's :class:`~edalab.PermanentError`).

Advisories are core NATS messages: nobody listening means they are gone. A stream
capturing them (notebook ``11_dead_letters``) keeps every one, even while no operator
tool runs. The advisory names the original stream, consumer and sequence, so the
message itself is found again there.

**Replay reaches only the consumer that gave up.** Republishing a dead letter to its
original subject would reach *every* consumer whose filter matches it, and each of
them would handle the event a second time. :meth:`DeadLetters.replay` instead
publishes it to a per-consumer replay subject, ``<prefix>.<stream>.<consumer>``, held
in the dead-letter stream itself; :meth:`DeadLetters.replays` gives that consumer an
:class:`~edalab.EventConsumer` reading only its own replays, to run with the
same handler::

    dead = DeadLetters(js)
    await dead.setup()                    # the DEAD_LETTERS stream
    for letter in await dead.letters(consumer="payments"):
        print(letter.category, letter.reason)
        await dead.replay(letter)         # to deadletters.replay.PAYMENTS.payments
    replays = await dead.replays("PAYMENTS", "payments")
    await replays.run(book)               # the payments handler, and nobody else's
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import nats.js.errors
from nats.js.api import PubAck, RawStreamMsg, StorageType

from ._consuming import EventConsumer
from ._errors import EdalabError
from ._events import Event
from ._nats import ErrCode, JetStream
from ._publishing import MSG_ID
from ._reasons import Reason
from ._streams import StreamSetup, ensure_stream, stream_messages
from ._waiting import wait_for

__all__ = [
    "ADVISORY_SUBJECTS",
    "REPLAY_OF",
    "REPLAY_PREFIX",
    "REPLAY_SUBJECT",
    "DeadLetter",
    "DeadLetters",
]

ADVISORY_SUBJECTS = [
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
    "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
]
_ADVISORIES = "$JS.EVENT.ADVISORY.>"

#: Header set on a replayed message: ``<stream>/<sequence>`` of the original.
REPLAY_OF = "Edalab-Replay-Of"
#: Header set on a replayed message: the subject the original was published on.
REPLAY_SUBJECT = "Edalab-Replay-Subject"
#: Where replays go: ``<prefix>.<stream>.<consumer>``, in the dead-letter stream.
REPLAY_PREFIX = "deadletters.replay"


@dataclass(frozen=True)
class DeadLetter:
    """One advisory: which message (``stream``, ``stream_seq``) ``consumer`` gave up on, and why."""

    id: int
    kind: Literal["max_deliveries", "terminated"]
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int
    reason: str

    @property
    def category(self) -> Reason:
        """Why, as a typed value: max deliveries, undecodable, unknown version, rejected..."""
        if self.kind == "max_deliveries":
            return Reason.MAX_DELIVERIES
        return Reason.of_term(self.reason)

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
    """List, inspect, replay (to the consumer that gave up) and discard dead letters."""

    def __init__(
        self,
        js: JetStream,
        stream: str = "DEAD_LETTERS",
        *,
        replay_prefix: str = REPLAY_PREFIX,
    ) -> None:
        self.js = js
        self.stream = stream
        self.replay_prefix = replay_prefix

    async def setup(self, *, fresh: bool = False, **config: Any) -> StreamSetup:
        """Create (idempotently) the file-backed stream for the advisories and the replays.

        ``fresh=True`` also empties it and removes the replay readers (a lesson's rerun).
        """
        config.setdefault("storage", StorageType.FILE)
        subjects = [*ADVISORY_SUBJECTS, f"{self.replay_prefix}.>"]
        setup = await ensure_stream(self.js, self.stream, subjects, **config)
        if fresh:
            await self.js.purge_stream(self.stream)
            for info in await self.js.consumers_info(self.stream):
                if info.name.startswith("replay-"):
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await self.js.delete_consumer(self.stream, info.name)
        return setup

    def replay_subject(self, stream: str, consumer: str) -> str:
        """Where replays for ``consumer`` of ``stream`` go (stream and consumer names are tokens).

        With the default prefix, ``replay_subject("PAYMENTS", "payments")`` is
        ``"deadletters.replay.PAYMENTS.payments"``.
        """
        return f"{self.replay_prefix}.{stream}.{consumer}"

    @staticmethod
    def replay_consumer_name(stream: str, consumer: str) -> str:
        """The durable that reads ``consumer``'s replays from the dead-letter stream."""
        return f"replay-{stream}-{consumer}"

    async def letters(
        self, *, stream: str | None = None, consumer: str | None = None
    ) -> list[DeadLetter]:
        """Every dead letter still held, oldest first, optionally for one stream or consumer."""
        out = []
        async for seq, raw in stream_messages(self.js, self.stream):  # discarded: gaps
            if not (raw.subject or "").startswith("$JS.EVENT.ADVISORY."):
                continue  # a replay, not a letter
            letter = DeadLetter.from_advisory(seq, raw.data or b"")
            if stream is not None and letter.stream != stream:
                continue
            if consumer is not None and letter.consumer != consumer:
                continue
            out.append(letter)
        return out

    async def count(self) -> int:
        """How many letters are held (advisories; replays are not counted)."""
        info = await self.js.stream_info(self.stream, subjects_filter=_ADVISORIES)
        return sum((info.state.subjects or {}).values())

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> list[DeadLetter]:
        """Wait until at least ``count`` letters are held (advisories arrive asynchronously)."""

        async def enough() -> bool:
            return await self.count() >= count

        await wait_for(enough, timeout=timeout, what=f"{count} dead letters in {self.stream}")
        return await self.letters()

    async def original(self, letter: DeadLetter) -> RawStreamMsg:
        """The message the letter is about, from its stream."""
        try:
            msg: RawStreamMsg = await self.js.get_msg(letter.stream, letter.stream_seq)
        except nats.js.errors.NotFoundError as err:
            raise EdalabError(
                f"dead letter {letter.id}: message {letter.stream_seq} of stream "
                f"{letter.stream!r} no longer exists (removed by the stream's retention?)"
            ) from err
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
            "consumer": letter.consumer,
            "sequence": letter.stream_seq,
            "subject": msg.subject,
            "deliveries": letter.deliveries,
            "data": data,
            "event": event,
        }

    async def replay(
        self, letter: DeadLetter, *, data: bytes | None = None, discard: bool = True
    ) -> PubAck:
        """Send the message again to the consumer that gave up on it, and no other.

        It is published to :meth:`replay_subject` (``<prefix>.<stream>.<consumer>``) in
        the dead-letter stream, where :meth:`replays` reads it; other consumers of the
        original stream never see it. ``data`` replaces the payload (to repair it). The
        replay gets its own ``Nats-Msg-Id`` (the original's plus ``:replay:<letter id>``),
        an ``Edalab-Replay-Of`` header (``<stream>/<seq>``) and ``Edalab-Replay-Subject``
        (the original subject). Then the letter is discarded (unless ``discard=False``).
        A letter from a replay reader (it failed again) is replayed to the same reader.
        """
        msg = await self.original(letter)
        # The original's own publish conditions (expected sequence, rollup...) are not replayed.
        headers = {
            k: v
            for k, v in (msg.headers or {}).items()
            if not k.startswith(("Nats-Expected-", "Nats-Rollup"))
        }
        if letter.stream == self.stream and (msg.subject or "").startswith(self.replay_prefix):
            subject = msg.subject or ""  # a replay that failed again: same consumer
        else:
            subject = self.replay_subject(letter.stream, letter.consumer)
            headers[REPLAY_OF] = f"{letter.stream}/{letter.stream_seq}"
            headers[REPLAY_SUBJECT] = msg.subject or ""
        base_id = headers.get(MSG_ID) or f"{letter.stream}-{letter.stream_seq}"
        headers[MSG_ID] = f"{base_id}:replay:{letter.id}"
        ack: PubAck = await self.js.publish(
            subject, (msg.data or b"") if data is None else data, headers=headers
        )
        if discard:
            await self.discard(letter)
        return ack

    async def replays(self, stream: str, consumer: str, **config: Any) -> EventConsumer:
        """An :class:`EventConsumer` reading only ``consumer``'s replays: run it with its handler.

        A durable (:meth:`replay_consumer_name`) on the dead-letter stream, filtered to
        :meth:`replay_subject`; ``config`` (``max_deliver``, ``ack_wait``...) goes to it.
        """
        return await EventConsumer.create(
            self.js,
            self.stream,
            self.replay_consumer_name(stream, consumer),
            filter_subject=self.replay_subject(stream, consumer),
            **config,
        )

    async def discard(self, letter: DeadLetter) -> None:
        """Remove the letter (the original message stays in its stream).

        A letter already removed (a cell run twice) is left alone; the server answers
        that with "sequence not found" (10043) or a failed deletion (10057) whose text
        says "no message found".
        """
        try:
            await self.js.delete_msg(self.stream, letter.id)
        except nats.js.errors.APIError as err:
            gone = isinstance(err, nats.js.errors.NotFoundError) or (
                err.err_code == ErrCode.SEQUENCE_NOT_FOUND
                or (
                    err.err_code == ErrCode.MSG_DELETE_FAILED
                    and "no message found" in (err.description or "")
                )
            )
            if not gone:
                raise
