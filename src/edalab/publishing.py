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

from edalab.connection import connection_log, permission_error
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


def _retryable(err: BaseException) -> bool:
    """Errors a retry with the same Nats-Msg-Id can fix: the server is away or not ready."""
    if isinstance(err, nats.js.errors.ServiceUnavailableError):
        return True
    if isinstance(err, nats.js.errors.APIError):
        return False
    return isinstance(
        err,
        (
            nats.errors.TimeoutError,
            TimeoutError,
            nats.js.errors.NoStreamResponseError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.StaleConnectionError,
            nats.errors.OutboundBufferLimitError,
        ),
    )


async def publish_event(
    js: JetStreamContext,
    event: Event,
    *,
    subject: SubjectFor = None,
    timeout: float = 5.0,
    retry_for: float = 0.0,
    data_as_string: bool = False,
    headers: dict[str, str] | None = None,
) -> PubAck:
    """Publish one event and await its ``PubAck``.

    The subject is ``event.type`` unless ``subject`` (a string or a function of
    the event) says otherwise. Raises :class:`~edalab.errors.NoStreamError` when no
    stream captures the subject and :class:`~edalab.errors.PublishError` otherwise.

    With ``retry_for`` > 0, a publish that timed out or found the server away
    (restarting, JetStream not ready) is sent again, with the same
    ``Nats-Msg-Id``, until that many seconds have passed (notebook
    ``08_reliability``). If the first attempt was in fact stored, the retry comes
    back as a duplicate of it: retried or not, the event is stored once.
    """
    subj = _subject_of(event, subject)
    hdrs = {**(headers or {}), MSG_ID: event.id}
    payload = event.to_json(data_as_string=data_as_string)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    pause = 0.05
    log = connection_log(js._nc)
    while True:
        since = len(log.errors) if log else 0
        try:
            return await js.publish(subj, payload, timeout=timeout, headers=hdrs)
        except (nats.errors.Error, TimeoutError) as err:
            denied = permission_error(js._nc, subj, "publish", since)
            if denied is not None:
                raise denied from None
            if not _retryable(err) or loop.time() + pause > deadline:
                raise _error(err, subj, event.id) from None
        # A deliberate pause between retries (the server is restarting), growing to 1 s.
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


async def publish_events(
    js: JetStreamContext,
    events: Iterable[Event],
    *,
    subject: SubjectFor = None,
    window: int = 256,
    timeout: float = 10.0,
    retry_for: float = 0.0,
    headers: dict[str, str] | None = None,
) -> list[PubAck]:
    """Publish many events with up to ``window`` unacknowledged at once.

    Far faster than awaiting each ``js.publish`` in turn, with the same
    guarantee: it returns only when every event has its ``PubAck`` (in input
    order), and raises naming the first event that failed. ``timeout`` bounds
    the wait for each acknowledgement, counted from when its event was sent.
    With ``retry_for`` > 0, an event whose acknowledgement did not come is sent
    again (same ``Nats-Msg-Id``) as :func:`publish_event` does, so a server
    restart in the middle loses nothing and duplicates nothing.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    loop = asyncio.get_running_loop()
    pending: list[tuple[asyncio.Future[PubAck], Event, str, float]] = []
    acks: list[PubAck] = []
    base = dict(headers or {})
    give_up = loop.time() + retry_for

    async def settle(upto: int) -> None:
        # Await the oldest publishes until at most `upto` are still in flight.
        while len(pending) - len(acks) > upto:
            fut, event, subj, sent = pending[len(acks)]
            try:
                if not fut.done():
                    # asyncio.wait adds a callback; wait_for would start a task per event.
                    left = max(0.0, sent + timeout - loop.time())
                    await asyncio.wait((fut,), timeout=left)
                    if not fut.done():
                        raise nats.errors.TimeoutError
                acks.append(fut.result())
            except (nats.errors.Error, TimeoutError) as err:
                if retry_for <= 0 or not _retryable(err):
                    raise _error(err, subj, event.id) from None
                acks.append(
                    await publish_event(
                        js,
                        event,
                        subject=subj,
                        timeout=min(timeout, 2.0),
                        retry_for=max(0.0, give_up - loop.time()),
                        headers=base,
                    )
                )

    async def send(event: Event, subj: str) -> asyncio.Future[PubAck]:
        try:
            # No wait_stall: with one, nats-py wraps every publish in asyncio.wait_for (a task
            # per event). Our window bounds what is in flight; keep it within the context's
            # publish_async_max_pending (4000 by default).
            return await js.publish_async(subj, event.to_json(), headers={**base, MSG_ID: event.id})
        except (nats.errors.Error, TimeoutError) as err:
            if retry_for <= 0 or not _retryable(err):
                raise _error(err, subj, event.id) from None
            # Could not even send: let settle() retry it synchronously.
            failed: asyncio.Future[PubAck] = loop.create_future()
            failed.set_exception(nats.errors.TimeoutError())
            return failed

    try:
        for event in events:
            subj = _subject_of(event, subject)
            pending.append((await send(event, subj), event, subj, loop.time()))
            if len(pending) - len(acks) >= window:
                # Wait down to half the window, not to window - 1: publishing then runs on in
                # bursts without yielding to the loop for every event (nats-py flushes in bulk).
                await settle(window // 2)
        await settle(0)
    except BaseException:
        for fut, _, _, _ in pending[len(acks) :]:
            fut.cancel()
        raise
    return acks
