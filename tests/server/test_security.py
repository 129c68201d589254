"""Users, nkeys, permissions: denied operations and bad credentials give clear errors."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from edalab import (
    AuthenticationError,
    Event,
    NatsServer,
    PermissionDenied,
    SubjectError,
    User,
    authorization_config,
    connect,
    ensure_consumer,
    ensure_stream,
    jetstream_user,
    nkey_user,
    permission_checked,
    publish_checked,
    publish_event,
    subscribe_checked,
)


@pytest.fixture(scope="module")
def secured():
    """A server with a password user, an nkey user and an admin."""
    ann = jetstream_user(User("ann", password="ann-pw", publish=["order.>"], subscribe=["order.>"]))
    bot, seed = nkey_user("bot", publish=["payment.>"], subscribe=["order.placed", "_INBOX.>"])
    reader = jetstream_user(User("reader", password="rd-pw", publish=[]), consume=[("LP", "audit")])
    admin = User("admin", password="admin-pw")
    with NatsServer(config=authorization_config([ann, bot, reader, admin])) as srv:
        yield srv, seed


async def test_password_and_nkey_users_connect(secured) -> None:
    """Both kinds of user authenticate."""
    srv, seed = secured
    ann = await connect(srv.url, user="ann", password="ann-pw")
    bot = await connect(srv.url, nkeys_seed_str=seed)
    assert ann.is_connected and bot.is_connected
    await ann.close()
    await bot.close()


async def test_bad_password_fails_fast_naming_the_user(secured) -> None:
    """A wrong password is an AuthenticationError within a second, not a two-minute retry."""
    srv, _ = secured
    started = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        await connect(srv.url, user="ann", password="wrong", timeout=10)
    assert time.monotonic() - started < 3
    assert info.value.identity == "ann" and srv.url in str(info.value)


async def test_unknown_nkey_is_refused(secured) -> None:
    """A valid nkey the server does not know is refused, named by its public key."""
    srv, _ = secured
    _, other_seed = nkey_user("stranger")
    with pytest.raises(AuthenticationError, match="nkey U"):
        await connect(srv.url, nkeys_seed_str=other_seed, timeout=5)


async def test_denied_publish_and_subscribe_raise_and_deliver_nothing(secured) -> None:
    """The bot may not publish orders: the error names user and subject; nobody receives it."""
    srv, seed = secured
    admin = await connect(srv.url, user="admin", password="admin-pw")
    bot = await connect(srv.url, nkeys_seed_str=seed)
    watch = await admin.subscribe("order.>")
    await admin.flush()
    with pytest.raises(PermissionDenied) as info:
        await publish_checked(bot, "order.placed", b"forged")
    assert info.value.subject == "order.placed" and info.value.operation == "publish"
    assert info.value.identity.startswith("nkey U")
    with pytest.raises(PermissionDenied, match=re.escape("subscribe to 'payment.>'")):
        await subscribe_checked(bot, "payment.>")
    await publish_checked(bot, "payment.captured", b"ok")
    with pytest.raises(asyncio.TimeoutError):
        await watch.next_msg(timeout=0.5)
    await bot.close()
    await admin.close()


async def test_denied_jetstream_publish_is_named(secured) -> None:
    """A JetStream publish to a forbidden subject raises PermissionDenied, not a bare timeout."""
    srv, _ = secured
    admin = await connect(srv.url, user="admin", password="admin-pw")
    await ensure_stream(admin.jetstream(), "SEC_ALL", ["order.>", "payment.>"])
    ann = await connect(srv.url, user="ann", password="ann-pw", inbox_prefix="_INBOX_ann")
    js = ann.jetstream()
    ok = await publish_event(js, Event.create("order.placed", {"id": 1}))
    assert ok.stream == "SEC_ALL"
    denied = "ann is not allowed to publish to 'payment.captured'"
    with pytest.raises(PermissionDenied, match=re.escape(denied)):
        await publish_event(js, Event.create("payment.captured", {}), timeout=1)
    info = await admin.jetstream().stream_info("SEC_ALL")
    assert info.state.messages == 1
    await ann.close()
    await admin.close()


def test_config_rejects_ambiguous_users() -> None:
    """A user needs one credential, and names must be unique."""
    with pytest.raises(ValueError, match="exactly one"):
        User("x")
    with pytest.raises(ValueError, match="unique"):
        authorization_config([User("a", password="1"), User("a", password="2")])


def test_empty_allow_list_means_nothing_is_allowed() -> None:
    """publish=[] denies everything (the server would read an empty allow as no limit)."""
    entry = User("auditor", password="pw", publish=[], subscribe=["order.>"]).entry()
    assert entry["permissions"] == {
        "publish": {"deny": [">"]},
        "subscribe": {"allow": ["order.>"]},
    }


async def test_nkey_identity_uses_the_connection_name(secured) -> None:
    """A named nkey connection is called by its name in errors, with its public key."""
    srv, seed = secured
    bot = await connect(srv.url, nkeys_seed_str=seed, name="billing")
    with pytest.raises(PermissionDenied, match=r"^billing \(nkey U"):
        await publish_checked(bot, "order.placed")
    await bot.close()


async def test_publisher_gets_its_puback_but_cannot_delete_a_stream(secured) -> None:
    """A least-privilege publisher is acknowledged on its own inbox; deleting a stream is denied."""
    srv, _ = secured
    admin = await connect(srv.url, user="admin", password="admin-pw")
    await ensure_stream(admin.jetstream(), "SEC_ALL", ["order.>", "payment.>"])
    ann = await connect(srv.url, user="ann", password="ann-pw", inbox_prefix="_INBOX_ann")
    ack = await publish_event(ann.jetstream(), Event.create("order.placed", {"id": 2}))
    assert ack.stream == "SEC_ALL"
    with pytest.raises(PermissionDenied) as info:
        async with permission_checked(ann, "SEC_ALL"):
            await ann.jetstream(timeout=1).delete_stream("SEC_ALL")
    assert info.value.subject == "$JS.API.STREAM.DELETE.SEC_ALL" and info.value.identity == "ann"
    assert (await admin.jetstream().stream_info("SEC_ALL")).state.messages >= 1
    await ann.close()
    await admin.close()


async def test_consumer_fetches_and_acks_but_cannot_delete(secured) -> None:
    """A pull-consumer user fetches and acks its consumer (the ack floor moves) and nothing else."""
    srv, _ = secured
    admin = await connect(srv.url, user="admin", password="admin-pw")
    ajs = admin.jetstream()
    await ensure_stream(ajs, "LP", ["audit.>"])
    await ensure_consumer(ajs, "LP", "audit")
    await ajs.publish("audit.note", b"{}")
    reader = await connect(srv.url, user="reader", password="rd-pw", inbox_prefix="_INBOX_reader")
    rjs = reader.jetstream(timeout=1)
    sub = await rjs.pull_subscribe_bind("audit", "LP")
    [msg] = await sub.fetch(1, timeout=2)
    await msg.ack_sync()
    info = await ajs.consumer_info("LP", "audit")
    assert info.ack_floor.stream_seq == msg.metadata.sequence.stream
    assert (await sub.consumer_info()).name == "audit"
    with pytest.raises(PermissionDenied, match=re.escape("'$JS.API.STREAM.DELETE.LP'")):
        async with permission_checked(reader, "LP", "audit"):
            await rjs.delete_stream("LP")
    with pytest.raises(PermissionDenied, match=re.escape("'$JS.API.CONSUMER.DELETE.LP.audit'")):
        async with permission_checked(reader, "LP", "audit"):
            await rjs.delete_consumer("LP", "audit")
    with pytest.raises(PermissionDenied, match=re.escape("publish to 'order.placed'")):
        await publish_checked(reader, "order.placed", b"{}")
    await reader.close()
    await admin.close()


async def test_users_cannot_read_each_others_inboxes(secured) -> None:
    """With private inbox prefixes, a user may subscribe to its own inbox and no one else's."""
    srv, _ = secured
    reader = await connect(srv.url, user="reader", password="rd-pw", inbox_prefix="_INBOX_reader")
    await subscribe_checked(reader, "_INBOX_reader.>")
    for other in ("_INBOX_ann.>", "_INBOX.>"):
        with pytest.raises(PermissionDenied, match=re.escape(f"subscribe to {other!r}")):
            await subscribe_checked(reader, other)
    await reader.close()


def test_jetstream_user_grants_no_stream_administration() -> None:
    """jetstream_user grants no $JS.API.> and no shared _INBOX.>; a name must be one token."""
    user = jetstream_user(
        User("svc", password="pw", publish=["order.>"]), consume=[("SHOP", "svc")]
    )
    assert user.publish == [
        "order.>",
        "$JS.API.CONSUMER.MSG.NEXT.SHOP.svc",
        "$JS.API.CONSUMER.INFO.SHOP.svc",
        "$JS.ACK.SHOP.svc.>",
    ]
    assert user.subscribe == ["_INBOX_svc.>"] and user.inbox_prefix == "_INBOX_svc"
    assert "pw" not in repr(user)
    with pytest.raises(SubjectError, match="one subject token"):
        jetstream_user(User("a.b", password="pw"))


async def test_permission_checked_lets_other_errors_through(secured) -> None:
    """An error that is not a denial (a stream that does not exist) is re-raised unchanged."""
    import nats.js.errors

    srv, _ = secured
    admin = await connect(srv.url, user="admin", password="admin-pw")
    with pytest.raises(nats.js.errors.NotFoundError):
        async with permission_checked(admin, "NOPE"):
            await admin.jetstream().stream_info("NOPE")
    await admin.close()
