"""The checker of exercise 21 (notebook 21_many_teams).

The task: the auth callout's decide(request, people): the right person into their team's
account with their team's subjects only, everyone else refused at once.

The check starts a server of its own whose logins a callout service decides with the
learner's function (over a directory of its own: ann and amy in team ``a``, bob in team
``b``), then logs in for real: a right password, a wrong one, an unknown name, and what
an admitted user may publish and read.

Every login is real: a right password, a wrong one, none at all, an unknown name; then
what ann may publish and subscribe to (her team's subjects and an inbox only).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats.errors

from edalab import (
    AuthenticationError,
    LoginRequest,
    PermissionDenied,
    connect,
    publish_checked,
    subscribe_checked,
)

from ..identity import CalloutLab, People, callout_server
from ._core import _NotYet, _require

#: How much of the auth timeout a refusal may take and still count as "at once".
_QUICK = 0.6


def _accounts(lab: CalloutLab) -> dict[str, str]:
    """``{user: account}`` of the server's client connections (``/connz?auth=true``)."""
    url = f"{lab.server.monitor_url}/connz?auth=true"
    with urllib.request.urlopen(url, timeout=2) as r:
        conns = json.loads(r.read())["connections"] or []
    return {str(c.get("authorized_user", "")): str(c.get("account", "")) for c in conns}


def _raised(lab: CalloutLab, user: str) -> str:
    said = [e for e in lab.service.log.errors if repr(user) in e]
    return said[-1] if said else ""


async def _login(lab: CalloutLab, user: str, password: str) -> tuple[Any, float]:
    """``(connection or None, seconds)``: None when the server refused the login."""
    started = time.monotonic()
    try:
        nc = await connect(lab.server.url, user=user, password=password, timeout=lab.timeout + 2)
    except AuthenticationError:
        return None, time.monotonic() - started
    return nc, time.monotonic() - started


async def _refused_quickly(lab: CalloutLab, user: str, password: str, what: str) -> None:
    nc, took = await _login(lab, user, password)
    if nc is not None:
        await nc.close()
        raise _NotYet(
            f"{what} ({user!r}) was admitted; expected refused: return None unless "
            "people.verify(request.user, request.password) is true"
        )
    raised = _raised(lab, user)
    _require(
        not raised,
        f"{what} ({user!r}) was refused only after the server's {lab.timeout:g} s auth "
        f"timeout, because your decide raised ({raised.split(': ', 1)[-1]}): the server got "
        "no answer. Return None for anyone you refuse (people.get gives None for an "
        "unknown name)",
    )
    _require(
        took < lab.timeout * _QUICK,
        f"{what} ({user!r}) took {took:.1f} s to be refused: the callout did not answer; "
        "return None (refuse) rather than nothing at all",
    )


async def checker(decide: Callable[[LoginRequest, People], Any]) -> str:
    """Run real logins through a callout that asks ``decide``, and judge what the server did.

    Timing: a server start, a few logins (each refused login that waits for the
    callout's timeout costs 1 s).
    """
    _require(callable(decide), "pass your function itself: check('21', decide)")
    with tempfile.TemporaryDirectory(prefix="edalab-ex21-") as tmp:
        word = secrets.token_hex(3)
        people = People.write(
            Path(tmp) / "people.json",
            {"ann": ("a", f"ann-{word}"), "amy": ("a", f"amy-{word}"), "bob": ("b", f"bob-{word}")},
        )

        def ask(request: LoginRequest) -> Any:
            return decide(request, people)

        async with callout_server("21-check", ask) as lab:
            return await _judge(lab, word)


async def _judge(lab: CalloutLab, word: str) -> str:
    ann, _ = await _login(lab, "ann", f"ann-{word}")
    if ann is None:
        raised = _raised(lab, "ann")
        _require(
            not raised,
            f"ann, with her right password, was refused after the server's {lab.timeout:g} s "
            f"auth timeout: {raised.replace('decide raised', 'your decide raised')}, so the "
            "service could not answer; return Grant(account=..., publish=[...], "
            "subscribe=[...]) for her",
        )
        placed = [
            v.removeprefix("admitted to ")
            for u, v in lab.service.log.decisions
            if u == "ann" and v != "refused"
        ]
        unknown = [name for name in placed if name not in ("TEAM_A", "TEAM_B")]
        _require(
            not unknown,
            f"your decide put ann in account {unknown[-1] if unknown else ''!r} but the server "
            "refused her: it has "
            "no such account (it has TEAM_A and TEAM_B); name it f'TEAM_{person.team.upper()}'",
        )
        _require(
            not placed,
            "your decide admitted ann but the server refused the user it described: check "
            "the Grant's subjects, e.g. publish=[f'team.{person.team}.>']",
        )
        raise _NotYet(
            "ann, with her right password, was refused: return a Grant for a person "
            "whose password people.verify accepts"
        )
    bob = None
    try:
        account = _accounts(lab).get("ann", "")
        _require(
            account == "TEAM_A",
            f"ann (team a) landed in account {account!r}; expected 'TEAM_A': "
            "Grant(account=f'TEAM_{person.team.upper()}', ...)",
        )
        await _refused_quickly(lab, "ann", "guess", "a wrong password")
        await _refused_quickly(lab, "ann", "", "a login without a password")
        await _refused_quickly(lab, "mallory", f"ann-{word}", "an unknown name")
        try:
            inbox = await subscribe_checked(ann, "team.a.>")
            await publish_checked(ann, "team.a.plan", b"ours")
            got = await inbox.next_msg(timeout=2)
        except PermissionDenied as denied:
            raise _NotYet(
                f"ann may not use her own team's subjects: {denied}; allow team.a.> "
                "(publish and subscribe) for team a"
            ) from None
        except nats.errors.TimeoutError:
            raise _NotYet(
                "ann published on team.a.plan but her own subscription got nothing"
            ) from None
        _require(got.data == b"ours", "ann's own message came back changed")
        try:
            await (await subscribe_checked(ann, ann.new_inbox())).unsubscribe()
        except PermissionDenied:
            raise _NotYet(
                "ann may not subscribe to an inbox, so no request of hers can get its "
                "reply: add '_INBOX.>' to subscribe=[...]"
            ) from None
        for subject in ("ops.deploy", "team.b.plan"):
            try:
                await publish_checked(ann, subject, b"not hers")
            except PermissionDenied:
                continue
            raise _NotYet(
                f"ann (team a) may publish on {subject}: list only her team's subjects, "
                "publish=[f'team.{person.team}.>'] (a Grant without publish= allows every "
                "subject of the account)"
            )
        bob, _ = await _login(lab, "bob", f"bob-{word}")
        _require(bob is not None, "bob, with his right password, was refused")
        account = _accounts(lab).get("bob", "")
        _require(
            account == "TEAM_B",
            f"bob (team b) landed in account {account!r}; expected 'TEAM_B': each team has "
            "an account of its own, Grant(account=f'TEAM_{person.team.upper()}', ...)",
        )
        try:
            spy = await subscribe_checked(ann, "team.b.>")
        except PermissionDenied:
            spy = None
        await bob.publish("team.b.secret", b"theirs")
        await bob.flush()
        if spy is not None:
            try:
                await spy.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                pass
            else:
                raise _NotYet(
                    "ann (team a) read bob's team.b.secret: team b's subjects must be out "
                    "of team a's reach; put each team in its own account, "
                    "Grant(account=f'TEAM_{person.team.upper()}', ...), and allow only "
                    "team.<team>.> to subscribe"
                )
            await spy.unsubscribe()
        for subject in ("team.b.>", "ops.>"):
            try:
                await (await subscribe_checked(ann, subject)).unsubscribe()
            except PermissionDenied:
                continue
            raise _NotYet(
                f"ann (team a) may subscribe to {subject}: the task allows her team's "
                "subjects and her replies only; "
                "subscribe=[f'team.{person.team}.>', '_INBOX.>']"
            )
    finally:
        for nc in (ann, bob):
            if nc is not None:
                await nc.close()
    return (
        "ann admitted to TEAM_A at once with team a's subjects (and her inbox) only; a "
        "wrong password, no password and an unknown name refused at once; team b's "
        "messages out of reach"
    )
