"""Idempotent effects on at-least-once delivery, with JetStream key-value.

JetStream delivers *at least once*: after a crash, an expired ``ack_wait`` or a nak, a
handler sees the same event again, and while one worker is still busy with a message
whose ``ack_wait`` expired, another worker may be handed the same message. Nothing in
the delivery makes an effect happen exactly once; the handler must (notebook
``10_idempotency``).

A processed-id store checked *before* the effect and marked *after* it
(:meth:`ProcessedIds.once`) skips redeliveries that come after the mark, but it still
repeats the effect when the process dies between effect and mark, and when two workers
hold the same message, both can pass the check. It is at-least-once with fewer repeats,
not exactly once. Use it when a rare repeat is harmless (a second "welcome" e-mail).

When the effect is a write, make the write and its mark **one atomic step**:
:meth:`ProcessedIds.record` stores the effect's result under the event id with
key-value ``create``, which the server refuses if the key exists (nats-py publishes it
with ``Nats-Expected-Last-Subject-Sequence: 0``). Exactly one worker's record lands;
the others learn it was done::

    charges = await ProcessedIds.open(js, "charges")

    async def charge(event):
        await charges.record(event.id, b"500")   # True: this call charged; False: done before

An effect outside NATS (a card payment, an e-mail) cannot share that step: pass the
event id to it as its idempotency key, so the other system drops the repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import nats.js.errors
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

__all__ = ["ProcessedIds"]

_VALID_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")


def _key(event_id: str) -> str:
    # KV keys allow few characters; other ids are hashed (stable, collision-free in practice).
    if _VALID_KEY.match(event_id) and not event_id.startswith(".") and not event_id.endswith("."):
        return event_id
    return "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()


class ProcessedIds:
    """Event ids (and, with :meth:`record`, each one's result) in a key-value bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        bucket: str = "processed-ids",
        *,
        ttl: float | None = None,
        history: int = 1,
        fresh: bool = False,
    ) -> ProcessedIds:
        """Open the bucket, creating it if needed; ``ttl`` (seconds) forgets old ids.

        ``history`` keeps that many revisions per key (more than 1 lets a lesson count
        how many times a key was written); ``fresh=True`` deletes the bucket first.
        """
        if fresh:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_key_value(bucket)
        try:
            kv = await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            kv = await js.create_key_value(bucket=bucket, history=history, ttl=ttl)
        return cls(kv)

    async def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was marked or recorded."""
        try:
            await self.kv.get(_key(event_id))
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    async def mark(self, event_id: str) -> bool:
        """Mark ``event_id``; ``False`` if it already was (one ``create``: one caller wins)."""
        return await self.record(event_id, b"1")

    async def record(self, event_id: str, value: bytes) -> bool:
        """Store ``value`` as ``event_id``'s result, unless one is stored: the effect and its mark.

        ``True`` for exactly one caller per id, across processes and workers: the
        server refuses a ``create`` on a key that exists. ``False`` means the effect was
        already recorded: acknowledge the message and do nothing more.
        """
        try:
            await self.kv.create(_key(event_id), value)
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def value(self, event_id: str) -> bytes | None:
        """What :meth:`record` stored for ``event_id``, or ``None``."""
        try:
            entry = await self.kv.get(_key(event_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value

    async def once(self, event_id: str, effect: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``effect`` unless ``event_id`` is marked, then mark it; ``True`` if it ran.

        At least once, not exactly once: a crash after the effect and before the mark
        repeats the effect on redelivery, and two workers holding the same message can
        both pass the check. For an effect that must not repeat, use :meth:`record`
        (the effect is the atomic write) or give the effect the event id as its own
        idempotency key.
        """
        if await self.seen(event_id):
            return False
        await effect()
        await self.mark(event_id)
        return True
