"""Publish events to JetStream, one at a time or in bulk.

:func:`publish_event` (notebook ``02_publishing``) is ``js.publish`` with three
additions: the payload is the event's JSON, the ``Nats-Msg-Id`` header is the
event's id (so the server drops a duplicate sent again within the stream's
duplicate window), and failures become edalab errors naming the subject::

    ack = await publish_event(js, Event.create("user.created", {"user_id": "u1"}))
    ack.seq, ack.duplicate

:func:`publish_events` sends many with a window of unacknowledged publishes in
flight, and returns every ``PubAck`` in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import nats.errors
import nats.js.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from edalab.errors import NoStreamError, PublishError
from edalab.events import Event
from edalab.subjects import validate_subject

__all__ = ["MSG_ID", "publish_event", "publish_events"]

#: The JetStream header carrying a message's id for de-duplication.
MSG_ID = "Nats-Msg-Id"

SubjectFor = str | Callable[[Event], str] | None


def _subject_of(event: Event, subject: SubjectFor) -> str:
    if subject is None:
        return validate_subject(event.type)
    if callable(subject):
        return validate_subject(subject(event))
    return validate_subject(subject)


def _error(err: BaseException, subject: str, event_id: str) -> Exception:
    if isinstance(err, nats.js.errors.NoStreamResponseError):
        return NoStreamError(subject)
    if isinstance(err, nats.js.errors.APIError):
        return PublishError(subject, f"server said: {err.description}", event_id=event_id)
    if isinstance(err, (nats.errors.TimeoutError, TimeoutError)):
        return PublishError(subject, "no PubAck before the timeout", event_id=event_id)
    return PublishError(subject, f"{type(err).__name__}: {err}", event_id=event_id)


async def publish_event(
    js: JetStreamContext,
    event: Event,
    *,
    subject: SubjectFor = None,
    timeout: float = 5.0,
    data_as_string: bool = False,
    headers: dict[str, str] | None = None,
) -> PubAck:
    """Publish one event and await its ``PubAck``.

    The subject is ``event.type`` unless ``subject`` (a string or a function of
    the event) says otherwise. Raises :class:`~edalab.errors.NoStreamError` when no
    stream captures the subject and :class:`~edalab.errors.PublishError` otherwise.
    """
    subj = _subject_of(event, subject)
    hdrs = {**(headers or {}), MSG_ID: event.id}
    try:
        return await js.publish(
            subj, event.to_json(data_as_string=data_as_string), timeout=timeout, headers=hdrs
        )
    except (nats.errors.Error, TimeoutError) as err:
        raise _error(err, subj, event.id) from None


async def publish_events(
    js: JetStreamContext,
    events: Iterable[Event],
    *,
    subject: SubjectFor = None,
    window: int = 256,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> list[PubAck]:
    """Publish many events with up to ``window`` unacknowledged at once.

    Far faster than awaiting each ``js.publish`` in turn, with the same
    guarantee: it returns only when every event has its ``PubAck`` (in input
    order), and raises naming the first event that failed. ``timeout`` bounds
    the wait for any one acknowledgement.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    pending: list[tuple[asyncio.Future[PubAck], str, str]] = []
    acks: list[PubAck] = []
    base = dict(headers or {})

    async def settle(upto: int) -> None:
        # Await the oldest publishes until at most `upto` are still in flight.
        while len(pending) - len(acks) > upto:
            fut, subj, event_id = pending[len(acks)]
            try:
                acks.append(await asyncio.wait_for(fut, timeout))
            except (nats.errors.Error, TimeoutError) as err:
                raise _error(err, subj, event_id) from None

    try:
        for event in events:
            subj = _subject_of(event, subject)
            fut = await js.publish_async(
                subj, event.to_json(), headers={**base, MSG_ID: event.id}, wait_stall=timeout
            )
            pending.append((fut, subj, event.id))
            if len(pending) - len(acks) >= window:
                await settle(window - 1)
        await settle(0)
    except BaseException:
        for fut, _, _ in pending[len(acks) :]:
            fut.cancel()
        raise
    return acks
