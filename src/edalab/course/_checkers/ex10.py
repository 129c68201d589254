"""The checker of exercise 10 (notebook 10_idempotency).

The task: charge once per event, across racing workers and redeliveries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import RawStreamMsg
from nats.js.client import JetStreamContext

from edalab import Event, ProcessedIds

from ._core import _all_of, _NotYet, _require


async def checker(js: JetStreamContext, charge: Any = None) -> str:
    """Each payment charged once, counted in the server's history of each key.

    The handler runs for one payment from two workers at once and again as a redelivery,
    and for a payment another process has already charged. Those runs share this
    process, so a lock here would serialise them: the last step does what only another
    process can. It charges a fresh payment first, as another process would between your
    check and your write, then sends the write your handler made (its subject, headers
    and value, renamed to that payment) to the server. A conditional write (key-value
    ``create``: ``Nats-Expected-Last-Subject-Sequence: 0``) is refused; a plain put is
    stored as a second charge. No step depends on timing.
    """
    import asyncio

    _require(callable(charge), "pass your handler: await check('10', js, charge)")
    try:
        kv = await js.key_value("charges")
    except nats.js.errors.BucketNotFoundError:
        raise _NotYet("there is no key-value bucket 'charges' yet") from None
    status = await kv.status()
    _require(
        (status.history or 1) >= 2,
        "create 'charges' with history=5, so a second write of a key can be seen",
    )
    store = ProcessedIds(kv)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    raced = Event.create("payment.captured", {"amount_cents": 700}, id=f"check10-{stamp}-a")
    elsewhere = Event.create("payment.captured", {"amount_cents": 900}, id=f"check10-{stamp}-b")
    between = f"check10-{stamp}-c"

    async def call(event: Event, what: str) -> None:
        try:
            await charge(event)
        except Exception as err:
            raise _NotYet(
                f"charge raised {type(err).__name__}: {err} on {what}; a charge already "
                "made is not an error: return normally, so the message is acknowledged"
            ) from None

    with _all_of() as want:
        await asyncio.gather(call(raced, "two workers at once"), call(raced, "two workers at once"))
        await call(raced, "a redelivery")
        history = await kv.history(raced.id) if await store.seen(raced.id) else []
        _require(bool(history), f"nothing was recorded under {raced.id!r} in 'charges'")
        want(
            len(history) == 1,
            f"two racing workers and one redelivery charged {raced.id!r} {len(history)} times; "
            "write the charge with kv.create (or ProcessedIds.record), which only one caller "
            "wins",
        )
        await store.record(elsewhere.id, b"900")  # another process charged it before
        await call(elsewhere, "an event another process already charged")
        writes = len(await kv.history(elsewhere.id))
        want(
            writes == 1,
            f"an event another process had charged was charged again ({writes} writes): "
            "check the bucket on the server, not memory in this process",
        )
        yours = await js.get_msg(status.stream_info.config.name or "", history[0].revision)
        await store.record(between, b"800")  # another process, between your check and write
        stored = await _replayed(js, yours, raced.id, between)
        condition = (yours.headers or {}).get("Nats-Expected-Last-Subject-Sequence")
        sent = (
            f"with Nats-Expected-Last-Subject-Sequence: {condition}"
            if condition
            else "with no condition: no Nats-Expected-Last-Subject-Sequence header"
        )
        want(
            not stored,
            "when another process charges between your check and your write, yours is "
            f"charged again: the checker charged {between!r} as another process would, then "
            f"sent the write your handler made ({sent}) under that id, and the server stored "
            f"it as charge number {len(await kv.history(between))}. A lock or a check in this "
            "process cannot see another process in time: make the write itself conditional "
            "with kv.create (or ProcessedIds.record), which the server refuses when the key "
            "exists",
        )
    return "two racing workers, a redelivery and another process: each event charged once"


async def _replayed(js: JetStreamContext, msg: RawStreamMsg, old: str, new: str) -> bool:
    """Send a stored KV write again with ``old`` renamed ``new``; whether the server stored it.

    The stored message carries the headers it was published with: the server strips none
    of the ``Nats-Expected-*`` ones (server/stream.go), so a ``create`` is sent again as one.
    """
    headers = {k: v.replace(old, new) for k, v in (msg.headers or {}).items()}
    try:
        await js.publish((msg.subject or "").replace(old, new), msg.data or b"", headers=headers)
    except nats.js.errors.APIError:
        return False  # refused: the write carried a condition the key no longer met
    return True
