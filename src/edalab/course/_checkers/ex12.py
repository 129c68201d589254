"""The checker of exercise 12 (notebook 12_security).

The task: a least-privilege auditor: fetch and ack its consumer, nothing else.
"""

from __future__ import annotations

import contextlib
import secrets

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext

from edalab import (
    AuthenticationError,
    Event,
    PermissionDenied,
    connect,
    inbox_prefix,
    permission_checked,
    subscribe_checked,
)

from ._common import connection_log, consumer_filters
from ._core import _consumer, _NotYet, _require, _stream


def _concrete(pattern: str) -> str:
    """A subject that ``pattern`` matches (wildcards filled with ``probe``)."""
    return ".".join("probe" if t in ("*", ">") else t for t in pattern.split("."))


#: Every JetStream request that changes a stream or a consumer, by what it does: the
#: ``JSApi...T`` subjects of nats-server's server/jetstream_api.go (RESET is consumer.go's),
#: plus fetches from and acks for consumers not the user's. ``{s}`` a stream, ``{c}`` a
#: consumer. (``$JS.API.ACCOUNT.``, ``META.`` and ``SERVER.`` requests are served only in
#: the system account, so a user of the learner's account cannot use them anyway.)
_JS_CHANGES = (
    ("create streams", "$JS.API.STREAM.CREATE.{s}"),
    ("update streams", "$JS.API.STREAM.UPDATE.{s}"),
    ("delete streams", "$JS.API.STREAM.DELETE.{s}"),
    ("purge streams", "$JS.API.STREAM.PURGE.{s}"),
    ("delete stream messages", "$JS.API.STREAM.MSG.DELETE.{s}"),
    ("snapshot streams", "$JS.API.STREAM.SNAPSHOT.{s}"),
    ("restore streams", "$JS.API.STREAM.RESTORE.{s}"),
    ("remove stream peers", "$JS.API.STREAM.PEER.REMOVE.{s}"),
    ("evacuate stream peers", "$JS.API.STREAM.PEER.EVACUATE.{s}"),
    ("cancel stream moves", "$JS.API.STREAM.CANCEL_MOVE.{s}"),
    ("make stream leaders step down", "$JS.API.STREAM.LEADER.STEPDOWN.{s}"),
    ("create consumers", "$JS.API.CONSUMER.CREATE.{s}"),
    ("create consumers", "$JS.API.CONSUMER.CREATE.{s}.{c}.probe"),
    ("create consumers", "$JS.API.CONSUMER.DURABLE.CREATE.{s}.{c}"),
    ("delete consumers", "$JS.API.CONSUMER.DELETE.{s}.{c}"),
    ("pause consumers", "$JS.API.CONSUMER.PAUSE.{s}.{c}"),
    ("unpin consumers", "$JS.API.CONSUMER.UNPIN.{s}.{c}"),
    ("reset consumers", "$JS.API.CONSUMER.RESET.{s}.{c}"),
    ("make consumer leaders step down", "$JS.API.CONSUMER.LEADER.STEPDOWN.{s}.{c}"),
    ("fetch from other consumers", "$JS.API.CONSUMER.MSG.NEXT.{s}.{other}"),
    ("ack for other consumers", "$JS.ACK.{s}.{other}.1.1.1.0.0"),
)


#: Sent with every probe. A JetStream API request carrying a level the server does not
#: have is answered with an error before anything is done (errorOnRequiredApiLevel,
#: server/jetstream_versioning.go, nats-server >= 2.12); a publish naming another stream
#: is not stored (Nats-Expected-Stream, server/stream.go). Without a reply subject, the
#: fetch and reset handlers ignore the request (server/consumer.go).
_HARMLESS = {"Nats-Required-Api-Level": "1000000", "Nats-Expected-Stream": "EDALAB-NO-STREAM"}


def _change_probes(nc: NATS, stream: str, consumer: str, token: str) -> dict[str, str]:
    """``{subject: what}`` for every JetStream change, on the real names and made-up ones.

    The real stream and consumer are probed only on servers that honour
    Nats-Required-Api-Level (2.12+); made-up names catch wildcard grants everywhere.
    """
    version = nc.connected_server_version
    names = [(f"EDALAB_PROBE_{token}", f"probe-{token}"), (stream, f"probe-{token}")]
    if (version.major, version.minor) >= (2, 12):
        names.append((stream, consumer))
    out: dict[str, str] = {}
    for s, c in reversed(names):  # the learner's own names first: they read best
        for what, template in _JS_CHANGES:
            if "{other}" in template:
                out.setdefault(template.format(s=s, other=f"probe-{token}"), what)
            else:
                out.setdefault(template.format(s=s, c=c), what)
    return out


async def _allowed(nc: NATS, subjects: list[str], op: str) -> list[str]:
    """Those of ``subjects`` the server did not refuse (it answers a refusal with -ERR)."""

    log = connection_log(nc)
    since = len(log.errors) if log else 0
    subs = []
    for subject in subjects:
        if op == "publish":
            await nc.publish(subject, b"", headers=_HARMLESS)
        else:
            subs.append(await nc.subscribe(subject))
    try:  # -ERR comes before the PONG; a second round trip lets error_cb's task run
        for _ in range(2):
            await nc.flush(timeout=5)
    except nats.errors.TimeoutError:
        raise _NotYet("the server did not answer a round trip within 5 s: try again") from None
    for sub in subs:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()
    refused = {s.lower() for o, s in (log.denials(since) if log else []) if o == op}
    return [s for s in subjects if s.lower() not in refused]


async def checker(
    js: JetStreamContext,
    *,
    url: str = "",
    user: str = "",
    password: str = "",
    stream: str = "SHOP",
    consumer: str = "audit",
) -> str:
    """Log in as the auditor: it must fetch and ack, and the server must refuse the rest.

    Every probe is judged by the server's answer to it (a permissions violation, or
    not); none can change anything (``_HARMLESS``). Timing: each step waits at most 5 s.
    """

    _require(bool(url and user), "pass the server and credentials: check('12', js, url=...)")
    info = await _consumer(js, stream, consumer)
    streams = [s.config for s in await js.streams_info()]
    filters = consumer_filters(info.config) or list(
        (await _stream(js, stream)).config.subjects or []
    )
    probe = _concrete(filters[0])
    # Something for the auditor to read: a probe event on a subject its consumer delivers.
    try:
        probe_ack = await js.publish(
            probe, Event.create(probe, {"probe": "exercise 12"}).to_json(), timeout=5
        )
    except (nats.errors.Error, TimeoutError):
        raise _NotYet(
            f"could not publish a probe on {probe} with the js you passed: pass the admin's "
            "JetStream context, check('12', nc_admin.jetstream(), url=..., user=...)"
        ) from None
    prefix = inbox_prefix(user)
    try:
        nc = await connect(url, user=user, password=password, timeout=3, inbox_prefix=prefix)
    except AuthenticationError:
        raise _NotYet(f"{user} cannot log in with that password") from None
    ujs = nc.jetstream(timeout=1)
    try:
        try:
            await subscribe_checked(nc, f"{prefix}.>")
        except PermissionDenied:
            raise _NotYet(
                f"{user} may not subscribe to its own inbox {prefix}.>: fetched messages and "
                "replies arrive there (jetstream_user adds it)"
            ) from None
        sub = await ujs.pull_subscribe_bind(consumer, stream)
        try:
            async with permission_checked(nc, stream, consumer):
                [msg] = await sub.fetch(1, timeout=5)
        except PermissionDenied as denied:
            raise _NotYet(f"{user} could not fetch from {stream}/{consumer}: {denied}") from None
        except TimeoutError:  # nats-py 2.16 fetch: its own TimeoutError, or asyncio's
            raise _NotYet(
                f"{user} fetched nothing from {stream}/{consumer} although a probe was "
                f"published on {probe}: are all its messages waiting for an ack?"
            ) from None
        try:
            async with permission_checked(nc, stream, consumer):
                await msg.ack_sync(timeout=5)
        except PermissionDenied as denied:
            raise _NotYet(
                f"{user} fetched stream message {msg.metadata.sequence.stream} but the server "
                f"refused its ack ({denied}): the message will be redelivered forever; allow "
                f"$JS.ACK.{stream}.{consumer}.>"
            ) from None
        token = secrets.token_hex(4)
        changes = _change_probes(nc, stream, consumer, token)
        allowed: dict[str, str] = {}
        for subject in await _allowed(nc, list(changes), "publish"):
            allowed.setdefault(changes[subject], subject)
        named = [f"{what} ({subject})" for what, subject in allowed.items()]
        if len(named) > 6:
            named[5:] = [f"and {len(named) - 5} more kinds of change"]
        _require(
            not allowed,
            f"{user} may "
            + ", ".join(named)
            + ": the server accepted these requests where a permissions violation was "
            f"expected (the check sent them so that they changed nothing); grant only "
            f"{stream}/{consumer}'s fetch and ack subjects, never $JS.API.> or a class of it",
        )
        subjects = [_concrete(s) for cfg in streams for s in cfg.subjects or []]
        subjects.append(f"edalab.probe.{token}")
        sent = await _allowed(nc, [*subjects, f"_INBOX.{token}"], "publish")
        _require(
            not sent,
            f"{user} may publish to {', '.join(sent)} (not refused by the server; expected "
            "a permissions violation): an auditor publishes nothing but its fetches and acks",
        )
        inboxes = [f"_INBOX.{token}", f"_INBOX_orders.{token}"]
        read = await _allowed(nc, [*inboxes, *subjects], "subscribe")
        _require(
            not read,
            f"{user} may subscribe to {', '.join(read)} (not refused by the server; expected "
            f"a permissions violation): it could read other users' replies or messages; "
            f"allow only {prefix}.>",
        )
    finally:
        await nc.close()
        with contextlib.suppress(nats.errors.Error):  # leave SHOP as the learner had it
            await js.delete_msg(stream, probe_ack.seq)
    return (
        f"{user} fetched and acked on {stream}/{consumer}, and was refused all "
        f"{len(dict(_JS_CHANGES))} kinds of stream and consumer change, publishing, and other "
        "inboxes and subjects"
    )
