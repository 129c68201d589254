"""Priority groups (ADR-42, nats-server 2.11+): one active worker and a standby, or overflow.

Notebook ``19_one_active_worker`` explains them. nats-py 2.16 has no API for them, so
the wire details live in ``_nats`` and this module adds what a worker needs:

- :func:`ensure_priority_consumer` creates a pull consumer with a priority group and a
  policy: ``pinned_client`` (the server delivers to one client, the *pinned* one, and
  picks another when it has not pulled for ``priority_timeout``) or ``overflow`` (pulls
  that say ``min_pending``/``min_ack_pending`` get messages only above that backlog);
- :class:`PriorityPuller` pulls in the group, keeps the pin id the server gave it
  (``Nats-Pin-Id``) and drops it when the server says it is no longer pinned (423);
- :func:`unpin` asks the server to pick a new pinned client; :func:`pinned_client` says
  which pin id holds the group now.

    consumer = await ensure_priority_consumer(js, "JOBS", "jobs", group="jobs",
                                              priority_timeout=1.0)
    worker = PriorityPuller(js, "JOBS", "jobs", group="jobs")
    for msg in await worker.fetch(batch=10, timeout=0.5):
        ...; await msg.ack()
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from . import _nats
from ._consuming import ConsumerSetup
from ._errors import ConsumerConfigConflict, ConsumerError
from ._nats import ErrCode, Inbox, PriorityPull, connection_of

__all__ = [
    "PRIORITY_GROUPS_SINCE",
    "PriorityPuller",
    "ensure_priority_consumer",
    "pinned_client",
    "unpin",
]

#: The nats-server release that brought priority groups (ADR-42): both policies, the
#: ``Nats-Pin-Id`` header, the UNPIN API and the pinned/unpinned advisories.
PRIORITY_GROUPS_SINCE = (2, 11)

Policy = Literal["pinned_client", "overflow"]

_PRIORITY_KEYS = ("priority_groups", "priority_policy", "priority_timeout")


def _wanted(
    durable: str, group: str, policy: Policy, priority_timeout: float | None, config: Any
) -> dict[str, Any]:
    """The consumer's raw JSON config: nats-py's fields (durations in ns) plus ADR-42's."""
    base = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, **config)
    wanted: dict[str, Any] = base.as_dict()
    wanted |= {"priority_groups": [group], "priority_policy": policy}
    if priority_timeout is not None:
        wanted["priority_timeout"] = round(priority_timeout * 1e9)
    return wanted


async def ensure_priority_consumer(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    group: str,
    policy: Policy = "pinned_client",
    priority_timeout: float | None = None,
    **config: Any,
) -> ConsumerSetup:
    """Create durable pull consumer ``durable`` with one priority group, idempotently.

    ``policy="pinned_client"``: one client at a time gets the messages; the server
    picks another when the pinned one has sent no pull for ``priority_timeout`` seconds
    (the server's default: 120). ``policy="overflow"``: pulls with ``min_pending`` get
    messages only while the backlog reaches it. Other ``config`` keys are
    :class:`nats.js.api.ConsumerConfig` fields (``ack_wait``, ``filter_subject`` ...);
    acks are explicit. Needs nats-server 2.11 or later. A change the server refuses
    raises :class:`~edalab.ConsumerConfigConflict`.

        setup = await ensure_priority_consumer(js, "JOBS", "jobs", group="jobs",
                                               priority_timeout=1.0)
        setup.action   # 'created', then 'unchanged' when run again
    """
    server = connection_of(js).connected_server_version
    if (server.major, server.minor) < PRIORITY_GROUPS_SINCE:
        # An older server ignores the fields it does not know: it would make a plain
        # consumer, where every worker gets messages.
        raise ConsumerError(
            f"priority groups need nats-server {'.'.join(map(str, PRIORITY_GROUPS_SINCE))}+; "
            f"this server is {server.major}.{server.minor}.{server.patch}"
        )
    wanted = _wanted(durable, group, policy, priority_timeout, config)
    try:
        existing = (await _nats.consumer_info(js, stream, durable))["config"]
    except nats.js.errors.APIError as err:
        if err.err_code != ErrCode.CONSUMER_NOT_FOUND:
            raise ConsumerError(f"cannot read consumer {durable!r}: {err.description}") from err
        existing = None
    # Only what was asked is compared: the server fills in defaults for the rest.
    asked = {"durable_name", "ack_policy", *config, *_PRIORITY_KEYS} & wanted.keys()
    changes = {
        key: (existing.get(key), wanted[key])
        for key in sorted(asked)
        if existing is not None and (existing.get(key) or None) != (wanted[key] or None)
    }
    if existing is not None and not changes:
        return ConsumerSetup(stream, durable, "unchanged")
    try:
        await _nats.create_consumer(js, stream, wanted)
    except nats.js.errors.APIError as err:
        if existing is not None:
            raise ConsumerConfigConflict(stream, durable, changes, str(err.description)) from err
        raise ConsumerError(
            f"cannot create consumer {durable!r} on stream {stream!r}: {err.description}"
        ) from err
    return ConsumerSetup(stream, durable, "created" if existing is None else "updated", changes)


async def unpin(js: JetStreamContext, stream: str, consumer: str, group: str) -> None:
    """Make the server pick a new pinned client for ``group`` (the UNPIN API, 2.11+).

    The next pull without a pin id gets the next message and the new pin; the old
    pinned client's next pull is refused (423) and its unacknowledged messages stay its
    own until acked or ``ack_wait`` runs out.

        await unpin(js, "JOBS", "jobs", "jobs")
    """
    try:
        await _nats.unpin(js, stream, consumer, group)
    except nats.js.errors.APIError as err:
        raise ConsumerError(f"cannot unpin {stream}/{consumer}: {err.description}") from err


async def pinned_client(js: JetStreamContext, stream: str, consumer: str, group: str) -> str | None:
    """The pin id that holds ``group`` now, or ``None`` when nobody is pinned.

    await pinned_client(js, "JOBS", "jobs", "jobs") == worker.pin_id
    """
    try:
        info = await _nats.consumer_info(js, stream, consumer)
    except nats.js.errors.APIError as err:
        raise ConsumerError(f"cannot read consumer {consumer!r}: {err.description}") from err
    for state in info.get("priority_groups") or []:
        if state.get("group") == group:
            pin: str | None = state.get("pinned_client_id") or None
            return pin
    return None


class PriorityPuller:
    """Pulls from a consumer with a priority group, as one worker (ADR-42).

    On a ``pinned_client`` consumer the first message the server sends this puller
    carries a ``Nats-Pin-Id`` header: the puller keeps it (:attr:`pin_id`) and sends it
    with every later pull, which also keeps the pin alive (a pull is the pinned client's
    heartbeat: ``priority_timeout`` counts from its last one). When the server has
    pinned another client it answers 423; the puller forgets its id and pulls on as a
    standby. On an ``overflow`` consumer, ``min_pending``/``min_ack_pending`` make this
    puller a helper that gets messages only while the backlog is that large.

        worker = PriorityPuller(js, "JOBS", "jobs", group="jobs")
        msgs = await worker.fetch(batch=10, timeout=0.5)
        worker.pinned, worker.said     # (True, None) or (False, '423 Nats-Pin-Id mismatch')

    Keep ``timeout`` (the pull's expiry) well below ``priority_timeout``, so the pinned
    worker pulls again in time. Explained in notebook ``19_one_active_worker``.
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        consumer: str,
        group: str,
        *,
        min_pending: int | None = None,
        min_ack_pending: int | None = None,
    ) -> None:
        self.js = js
        self.nc = connection_of(js)
        self.stream = stream
        self.consumer = consumer
        self.group = group
        self.min_pending = min_pending
        self.min_ack_pending = min_ack_pending
        #: The pin the server gave this puller, while it has it (``pinned_client``).
        self.pin_id: str | None = None
        #: The last status the server answered a pull with, e.g. ``"408 Request Timeout"``.
        self.said: str | None = None

    @property
    def pinned(self) -> bool:
        """This puller holds the pin, as far as it knows (the server may have moved on)."""
        return self.pin_id is not None

    def _request(self) -> PriorityPull:
        return PriorityPull(self.group, self.pin_id, self.min_pending, self.min_ack_pending)

    async def fetch(self, batch: int = 10, timeout: float = 1.0) -> list[Msg]:
        """Up to ``batch`` messages: one pull request that lasts at most ``timeout`` seconds.

        Returns when ``batch`` messages came or the server ended the request (it
        expired: 408; the pin went elsewhere: 423). Acknowledge each message yourself.
        A pull the server refuses (400: no such group; ``min_pending`` on a consumer
        that is not ``overflow``) raises :class:`~edalab.ConsumerError` with its reason.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        inbox = await Inbox().open(self.nc, self.nc.new_inbox())
        out: list[Msg] = []
        try:
            reply = inbox.subject
            await _nats.request_next(
                self.nc, self.js, self.stream, self.consumer, reply, batch,
                max(int(timeout * 1e9), 1_000_000), self._request(),
            )  # fmt: skip
            while len(out) < batch:
                if not await inbox.wait(timeout + 5):
                    raise ConsumerError(
                        f"no answer from the server for consumer {self.consumer!r} "
                        "(connection lost?)"
                    )
                if self._take(inbox, out):
                    break
        finally:
            with contextlib.suppress(nats.errors.Error):
                await inbox.close()
        return out

    def _take(self, inbox: Inbox, out: list[Msg]) -> bool:
        """Move what came into ``out``; ``True`` when the server ended the request."""
        while inbox.msgs:
            msg = inbox.msgs.popleft()
            status = _nats.status_of(msg)
            if status is None:
                self.pin_id = _nats.pin_id_of(msg) or self.pin_id
                out.append(msg)
                continue
            if status.heartbeat:
                continue
            self.said = f"{status.code} {status.description}".strip()
            if status.pin_lost:
                self.pin_id = None
            if status.code == "400" or status.consumer_deleted:
                raise ConsumerError(
                    f"the server refused the pull from {self.stream}/{self.consumer} ({self.said})"
                )
            return True
        return False
