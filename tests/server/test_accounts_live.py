"""Operator mode and the auth callout on a real server (edalab._accounts, lesson 21)."""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest

from edalab import (
    Account,
    AccountQuota,
    AuthCalloutService,
    AuthenticationError,
    Grant,
    JWTError,
    NatsServer,
    NKey,
    Operator,
    ServerUnreachableError,
    connect,
    operator_config,
    push_account,
)
from edalab.course.identity import callout_server

NONE = AccountQuota(streams=0, consumers=0, disk_storage=0, mem_storage=0)


@pytest.fixture
def trust():  # type: ignore[no-untyped-def]
    """An operator-mode server with SYS and TEAM_A (one stream, two connections)."""
    op, system = Operator("ACME"), Account("SYS", quota=NONE)
    team = Account("TEAM_A", quota=AccountQuota(connections=2, streams=1, disk_storage=10**6))
    config = operator_config(op, system, [system.jwt(op), team.jwt(op)])
    with NatsServer(config=config) as srv:
        yield srv, op, system, team


async def test_account_limits_are_enforced(trust) -> None:  # type: ignore[no-untyped-def]
    """A second stream (10027) and a third connection are refused by the server."""
    srv, _, _, team = trust
    nc = await connect(srv.url, user_credentials=team.user("ann").credentials())
    js = nc.jetstream()
    await js.add_stream(name="ONE", subjects=["one"])
    with pytest.raises(nats.js.errors.BadRequestError) as info:
        await js.add_stream(name="TWO", subjects=["two"])
    assert info.value.err_code == 10027
    nc2 = await connect(srv.url, user_credentials=team.user("bob").credentials())
    with pytest.raises(ServerUnreachableError, match="maximum account active connections"):
        await connect(
            srv.url,
            user_credentials=team.user("cy").credentials(),
            allow_reconnect=False,
            timeout=3,
        )
    await nc2.close()
    await nc.close()


async def test_revocation_closes_a_connected_user(trust) -> None:  # type: ignore[no-untyped-def]
    """A pushed revocation closes the user's connection; its next login is refused."""
    srv, op, system, team = trust
    ann, other = team.user("ann"), team.user("other")
    closed = asyncio.Event()

    async def on_closed() -> None:
        closed.set()

    nc = await connect(srv.url, user_credentials=ann.credentials(), closed_cb=on_closed)
    keep = await connect(srv.url, user_credentials=other.credentials())
    admin = await connect(srv.url, user_credentials=system.user("admin").credentials())
    team.revoke(ann)
    assert await push_account(admin, team.jwt(op)) == "jwt updated"
    await asyncio.wait_for(closed.wait(), timeout=5)
    assert "revoked" in str(nc.last_error)
    assert keep.is_connected
    with pytest.raises(AuthenticationError):
        await connect(srv.url, user_credentials=ann.credentials(), timeout=2)
    await keep.close()
    await admin.close()


async def test_foreign_account_jwt_and_unknown_signer_are_refused(trust) -> None:  # type: ignore[no-untyped-def]
    """An account JWT from another operator is refused; so is a user of an unlisted key."""
    srv, op, system, team = trust
    admin = await connect(srv.url, user_credentials=system.user("admin").credentials())
    # Before any client of TEAM_A, the server has not loaded the account: it skips the push.
    assert await push_account(admin, team.jwt(op)) == "jwt update skipped"
    member = await connect(srv.url, user_credentials=team.user("m").credentials())
    with pytest.raises(JWTError, match="refused"):
        await push_account(admin, team.jwt(Operator("EVIL")))
    await member.close()
    stranger = NKey.create("account")
    with pytest.raises(AuthenticationError):
        await connect(srv.url, user_credentials=team.user("x", signing_key=stranger).credentials())
    lead = NKey.create("account")
    team.signing_keys.append(lead)
    await push_account(admin, team.jwt(op))
    nc = await connect(srv.url, user_credentials=team.user("y", signing_key=lead).credentials())
    assert nc.is_connected
    await nc.close()
    await admin.close()


async def test_callout_started_twice_answers_once_and_hides_passwords() -> None:
    """A second service on one connection replaces the first; a raising decide's error
    is logged with the password masked, and the login is refused."""
    calls: list[str] = []

    def first(request):  # type: ignore[no-untyped-def]
        calls.append("first")
        return Grant("TEAM_A")

    async with callout_server("test-callout-twice", first, timeout=0.5) as lab:
        second_calls: list[str] = []

        def second(request):  # type: ignore[no-untyped-def]
            second_calls.append(request.user)
            if request.user == "eve":
                raise ValueError(f"cannot handle password {request.password}")
            return Grant("TEAM_A")

        replacement = AuthCalloutService(lab.service.nc, lab.service.issuer, second)
        await replacement.start()
        nc = await connect(lab.server.url, user="ann", password="pw")
        await nc.close()
        with pytest.raises(AuthenticationError):
            await connect(lab.server.url, user="eve", password="s3cret-word", timeout=3)
        assert calls == [] and second_calls == ["ann", "eve"]
        assert replacement.log.errors and "s3cret-word" not in " ".join(replacement.log.errors)
        await replacement.stop()
