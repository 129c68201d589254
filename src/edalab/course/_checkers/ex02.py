"""The checker of exercise 02 (notebook 02_subject_naming).

The task: subscription patterns for a mailer, probed on the server.
"""

from __future__ import annotations

import contextlib
import secrets
import string
from collections import Counter
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS

from edalab import SubjectError, validate_subject

from ._core import _NotYet, _require

#: Exercise 02's fixed probes: subject -> whether the mailer wants it (user.<part>.updated,
#: user.deleted). Each check adds a user.<part>.updated with a part drawn at random.
_PROBES_02: dict[str, bool] = {
    "user.profile.updated": True,
    "user.email.updated": True,
    "user.address.updated": True,
    "user.deleted": True,
    "user.created": False,
    "user.profile.viewed": False,
    "user.profile.photo.updated": False,
    "order.deleted": False,
    "order.address.updated": False,
}


async def _deliveries(nc: NATS, patterns: list[str], subjects: list[str]) -> Counter[str]:
    """How many times each of ``subjects`` reaches a set of subscriptions to ``patterns``.

    Everything happens under a fresh inbox prefix, so nothing the course stores is touched
    and no other subscriber sees the probes. Each subscription then gets an end marker (a
    subject its own pattern matches): messages from one publisher reach a subscription in
    order, so when the marker arrives every probe for that subscription has arrived too.
    """
    root = nc.new_inbox()
    subs = [await nc.subscribe(f"{root}.{p}") for p in patterns]
    got: Counter[str] = Counter()
    try:
        for s in subjects:
            await nc.publish(f"{root}.{s}", b"probe")
        for i, p in enumerate(patterns):
            literal = ".".join("end" if t in ("*", ">") else t for t in p.split("."))
            await nc.publish(f"{root}.{literal}", f"end {i}".encode())
        for i, (p, sub) in enumerate(zip(patterns, subs, strict=True)):
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    raise _NotYet(
                        f"nothing came back on {p!r} within 2 s: is nc connected?"
                    ) from None
                if msg.data == f"end {i}".encode():
                    break
                if msg.data == b"probe":
                    got[msg.subject[len(root) + 1 :]] += 1
    finally:
        for sub in subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
    return got


async def checker(nc: Any, patterns: Any = None) -> str:
    _require(
        isinstance(nc, NATS),
        "pass your connection and your patterns: await check('02', nc, patterns)",
    )
    _require(
        not nc.is_closed,
        "your connection nc is closed: run nc = await connect(server), then check again",
    )
    if isinstance(patterns, str):
        patterns = [patterns]
    _require(
        isinstance(patterns, list | tuple)
        and bool(patterns)
        and all(isinstance(p, str) for p in patterns),
        "pass the pattern(s) you subscribe to as a list: await check('02', nc, patterns)",
    )
    for p in patterns:
        try:
            validate_subject(p, wildcards=True)
        except SubjectError as err:
            raise _NotYet(f"{p!r} is not a subject you can subscribe to: {err.reason}") from None
    # A part nobody has named yet, new at each check: only a wildcard design receives it.
    unnamed = f"user.{''.join(secrets.choice(string.ascii_lowercase) for _ in range(8))}.updated"
    probes = {**_PROBES_02, unnamed: True}
    got = await _deliveries(nc, list(patterns), list(probes))
    missing = [s for s, wanted in probes.items() if wanted and not got[s]]
    extra = [s for s, wanted in probes.items() if not wanted and got[s]]
    twice = [s for s in probes if got[s] > 1]
    if missing or extra or twice:
        arrived = ", ".join(f"{s}{' x' + str(got[s]) if got[s] > 1 else ''}" for s in got)
        seen = f"subscribed to {list(patterns)}, the server delivered: {arrived or 'nothing'}"
        hints = []
        if missing:
            made_up = (
                f"; {unnamed} is a part this check made up just now, as a future producer would"
            )
            new_part = made_up if unnamed in missing else ""
            hints.append(
                f"missing {', '.join(missing)} (a '*' token matches any one field, so "
                f"you need not list them{new_part})"
            )
        if extra:
            hints.append(
                f"not wanted {', '.join(extra)} ('>' matches one or more tokens, '*' "
                "exactly one; keep the domain literal)"
            )
        if twice:
            hints.append(
                f"delivered more than once {', '.join(twice)} (two of your subscriptions "
                "match it, so the mailer would send two e-mails)"
            )
        raise _NotYet(f"{seen}. {'; '.join(hints)}")
    wanted = [s for s, w in _PROBES_02.items() if w]
    return (
        f"of {len(probes)} probe subjects the server delivered exactly the "
        f"{len(wanted) + 1} the mailer wants, once each: {', '.join(wanted)}, and "
        "user.<part>.updated for a part named at random"
    )
