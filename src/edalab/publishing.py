"""Publish events to JetStream, one at a time or in bulk.

:func:`publish_event` (notebook ``03_publishing``) is ``js.publish`` with three
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
import contextlib
import json
from collections.abc import Callable, Iterable

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
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
    ``09_durability``). If the first attempt was in fact stored, the retry comes
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

    How: every event is published with a reply subject ``<inbox>.<index>`` under one
    wildcard subscription, whose queue is read directly. nats-py's ``publish_async``
    does the same with a future, an id and a callback per event; skipping those about
    doubles the rate (see ``benchmarks/``).
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    batch = list(events)
    nc = js._nc
    loop = asyncio.get_running_loop()
    give_up = loop.time() + retry_for
    base = dict(headers or {})
    checked: dict[str, str] = {}  # most batches use a few subjects: validate each once
    subjects = []
    for e in batch:
        name = subject(e) if callable(subject) else (subject if subject is not None else e.type)
        if name not in checked:
            checked[name] = validate_subject(name)
        subjects.append(checked[name])
    acks: list[PubAck | None] = [None] * len(batch)
    sent_at: list[float] = [0.0] * len(batch)
    prefix = nc.new_inbox()
    offset = len(prefix) + 1
    log = connection_log(nc)
    since = len(log.errors) if log else 0
    sub = await nc.subscribe(prefix + ".*", pending_msgs_limit=max(4 * window, 65536))
    queue = sub._pending_queue  # no callback: replies wait here, read without a task each
    in_flight = 0
    oldest = 0  # every index below this has its ack

    def accept(msg: Msg) -> None:
        nonlocal in_flight
        try:
            i = int(msg.subject[offset:])
        except ValueError:
            return
        if i >= len(acks) or acks[i] is not None:
            return  # a late answer to an event already settled by a retry
        status = msg.headers.get("Status") if msg.headers else None
        if status == "503":
            # No responders: no stream, or (in a cluster) none that can answer right now.
            if retry_for <= 0:
                raise NoStreamError(subjects[i])
            sent_at[i] = loop.time() - timeout  # overdue: settle() resends it
            return
        in_flight -= 1
        resp = json.loads(msg.data)
        if "error" in resp:
            err = resp["error"]
            raise PublishError(
                subjects[i], f"server said: {err.get('description', err)}", event_id=batch[i].id
            )
        # The constructor, not PubAck.from_response: that one walks dataclass fields per call.
        acks[i] = PubAck(
            stream=resp["stream"],
            seq=resp["seq"],
            domain=resp.get("domain"),
            duplicate=resp.get("duplicate"),
            batch_id=resp.get("batch_id"),
            batch_size=resp.get("batch_size"),
            val=resp.get("val"),
        )

    async def settle(upto: int) -> None:
        nonlocal oldest, in_flight
        while in_flight > upto:
            while not queue.empty():
                accept(queue.get_nowait())
            if in_flight <= upto:
                return
            while acks[oldest] is not None:
                oldest += 1
            left = sent_at[oldest] + timeout - loop.time()
            try:
                async with asyncio.timeout(max(left, 0.0)):
                    accept(await queue.get())
            except TimeoutError:
                denied = permission_error(nc, subjects[oldest], "publish", since)
                if denied is not None:
                    raise denied from None
                if retry_for <= 0:
                    raise PublishError(
                        subjects[oldest], "no PubAck before the timeout", event_id=batch[oldest].id
                    ) from None
                # Resend, with the same Nats-Msg-Id, every event whose ack is overdue.
                now = loop.time()
                for i in range(oldest, len(batch)):
                    if acks[i] is None and sent_at[i] and sent_at[i] + timeout <= now:
                        acks[i] = await publish_event(
                            js,
                            batch[i],
                            subject=subjects[i],
                            timeout=min(timeout, 2.0),
                            retry_for=max(0.0, give_up - loop.time()),
                            headers=base,
                        )
                        in_flight -= 1

    try:
        for i, event in enumerate(batch):
            hdrs = {**base, MSG_ID: event.id}
            sent_at[i] = loop.time()
            try:
                await nc.publish(subjects[i], event.to_json(), reply=f"{prefix}.{i}", headers=hdrs)
            except (nats.errors.Error, TimeoutError) as err:
                if retry_for <= 0 or not _retryable(err):
                    raise _error(err, subjects[i], event.id) from None
                sent_at[i] = loop.time() - timeout  # overdue at once: settle() resends it
            in_flight += 1
            if in_flight >= window:
                # Down to half the window, not window - 1: publishing then runs on in bursts
                # without yielding to the loop for every event (nats-py flushes in bulk).
                await settle(window // 2)
        await settle(0)
    finally:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()
    settled = [a for a in acks if a is not None]
    if len(settled) != len(batch):  # cannot happen: settle(0) accounts for every event
        raise PublishError(subjects[0], "internal error: an acknowledgement went missing")
    return settled
