"""Optimistic concurrency for event-sourced aggregates (notebook 16).

An aggregate (one order, one account) is the events on its own subject, e.g.
``account.acct-7.*``. To append, a writer says which stream sequence it last saw
for that subject, in the ``Nats-Expected-Last-Subject-Sequence`` header; the server
stores the event only if that is still the last one (``0``: no event yet). Two
writers that read the same state cannot both append: the second gets
:class:`ConcurrencyConflict` (JetStream error 10071, "wrong last sequence"),
reloads and decides again. No lock, no lost update.

    version = await aggregate_version(js, "ACCOUNTS", "account.acct-7.>")
    await append(js, "account.acct-7.deposited", event, expected=version,
                 aggregate="account.acct-7.>")

``Nats-Expected-Last-Subject-Sequence-Subject`` (the aggregate wildcard) needs
nats-server 2.11+; an older server ignores it and checks only the published subject.
On a clustered stream the refusal can come as error 10164 (no sequence given), and a
503 (10163, "temporarily unavailable") is worth retrying. After a refusal, reload: the
winner may be your own earlier attempt whose acknowledgement was lost.
"""

from __future__ import annotations

import contextlib

import nats.js.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from ._errors import ConcurrencyConflict, PublishError
from ._events import Event
from ._nats import ErrCode, err_code_of
from ._publishing import publish_event

__all__ = [
    "EXPECTED_LAST_SUBJECT_SEQUENCE",
    "EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT",
    "ConcurrencyConflict",
    "aggregate_version",
    "append",
]

EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
#: With a wildcard here, the check covers every subject of the aggregate (server 2.11+).
EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
_WRONG_LAST_SEQUENCE = (ErrCode.WRONG_LAST_SEQUENCE, ErrCode.WRONG_LAST_SEQUENCE_CONSTANT)


async def aggregate_version(js: JetStreamContext, stream: str, subject: str) -> int:
    """The stream sequence of the aggregate's last event on ``subject`` (0: none yet)."""
    with contextlib.suppress(nats.js.errors.NotFoundError):
        msg = await js.get_last_msg(stream, subject)
        return int(msg.seq or 0)
    return 0


async def append(
    js: JetStreamContext,
    subject: str,
    event: Event,
    *,
    expected: int,
    aggregate: str | None = None,
    timeout: float = 5.0,
) -> PubAck:
    """Append ``event`` if the aggregate's last event is still at sequence ``expected``.

    ``aggregate`` (a wildcard such as ``account.acct-7.>``) makes the check cover every
    event type of the aggregate, not only ``subject``. Raises :class:`ConcurrencyConflict`.
    """
    headers = {EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected)}
    if aggregate is not None:
        headers[EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT] = aggregate
    try:
        return await publish_event(js, event, subject=subject, headers=headers, timeout=timeout)
    except PublishError as err:
        # The server's error code, kept as the PublishError's cause (no message text read).
        if err_code_of(err) in _WRONG_LAST_SEQUENCE:
            raise ConcurrencyConflict(subject, expected, err.reason, event_id=event.id) from err
        raise
