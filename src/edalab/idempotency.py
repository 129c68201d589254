"""Idempotent handlers: remember processed event ids in JetStream key-value.

JetStream delivers *at least once*: after a crash, a timeout or a nak, a handler
can see the same event again. If its side effect (an e-mail, a payment) must
happen once, the handler records the event id once the effect is done and skips
ids it has seen (notebook ``09_reliability``)::

    processed = await ProcessedIds.open(js)

    async def handle(event):
        if await processed.seen(event.id):
            return                       # done before: ack again, do nothing
        await send_email(event)
        await processed.mark(event.id)

:meth:`ProcessedIds.once` does exactly that. The store is a key-value bucket, so
every instance of a service shares it and it survives restarts.
"""

from __future__ import annotations

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
    """A set of processed event ids in a key-value bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(
        cls, js: JetStreamContext, bucket: str = "processed-ids", *, ttl: float | None = None
    ) -> ProcessedIds:
        """Open the bucket, creating it if needed; ``ttl`` (seconds) forgets old ids."""
        try:
            kv = await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            kv = await js.create_key_value(bucket=bucket, history=1, ttl=ttl)
        return cls(kv)

    async def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was marked processed."""
        try:
            await self.kv.get(_key(event_id))
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    async def mark(self, event_id: str) -> bool:
        """Mark ``event_id`` processed; ``False`` if it already was (atomic, across instances)."""
        try:
            await self.kv.create(_key(event_id), b"1")
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def once(self, event_id: str, effect: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``effect`` unless ``event_id`` was processed; mark it after. True if it ran.

        A crash between the effect and the mark repeats the effect on redelivery:
        make that window small, or make the effect itself idempotent.
        """
        if await self.seen(event_id):
            return False
        await effect()
        await self.mark(event_id)
        return True
