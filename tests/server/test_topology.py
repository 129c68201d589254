"""Accounts sharing one consumer, a leaf node's links, waiting for a copy: the pieces of
lesson 20, on servers of their own."""

from __future__ import annotations

import nats.js.errors
import pytest
from nats.js.api import StreamConfig, StreamSource

from edalab import (
    ConfigAccount,
    NatsServer,
    ServerError,
    StreamError,
    User,
    accounts_config,
    connect,
    share_consumer,
    wait_replicated,
)


async def test_a_shared_consumer_reads_and_acks_and_nothing_else():
    """The partner fetches and acks the shared consumer through the prefix; deleting the
    stream finds no responder there, and its own JetStream has no such stream."""
    exports, imports = share_consumer("OWNER", "BILLS", "partner")
    config = accounts_config(
        [
            ConfigAccount("OWNER", [User("owner", password="o-pw")], exports=exports),
            ConfigAccount("GUEST", [User("guest", password="g-pw")], imports=imports),
        ]
    )
    with NatsServer(name="edalab-accounts-test", config=config) as srv:
        owner = await connect(srv.url, user="owner", password="o-pw")
        guest = await connect(srv.url, user="guest", password="g-pw")
        try:
            js = owner.jetstream()
            await js.add_stream(name="BILLS", subjects=["bill.>"])
            for n in range(3):
                await js.publish("bill.issued", str(n).encode())
            await js.add_consumer("BILLS", durable_name="partner", ack_policy="explicit")
            shared = guest.jetstream(prefix="$JS.OWNER.API", timeout=2)
            sub = await shared.pull_subscribe_bind("partner", "BILLS")
            msgs = await sub.fetch(3, timeout=5)
            for msg in msgs:
                await msg.ack_sync()
            assert [m.data for m in msgs] == [b"0", b"1", b"2"]
            assert (await shared.stream_info("BILLS")).state.messages == 3
            assert (await js.consumer_info("BILLS", "partner")).ack_floor.stream_seq == 3
            with pytest.raises(nats.js.errors.ServiceUnavailableError):
                await shared.delete_stream("BILLS")
            with pytest.raises(nats.js.errors.NotFoundError):
                await guest.jetstream(timeout=2).delete_stream("BILLS")
            assert await guest.jetstream().streams_info() == []
            assert (await js.stream_info("BILLS")).state.messages == 3
        finally:
            await owner.close()
            await guest.close()


def test_accounts_config_refuses_duplicate_names():
    """Two accounts of one name, or one user name twice, are refused before any server."""
    one = ConfigAccount("A", [User("ann", password="x")])
    with pytest.raises(ValueError, match="account names"):
        accounts_config([one, ConfigAccount("A", [User("bob", password="x")])])
    with pytest.raises(ValueError, match="user names"):
        accounts_config([one, ConfigAccount("B", [User("ann", password="y")])])


def test_account_passwords_stay_out_of_reprs_and_errors():
    """An account's repr hides its users' passwords; a failed start masks them in the log."""
    account = ConfigAccount("A", [User("ann", password="s3cret-pw")])
    assert "s3cret-pw" not in repr(account)
    broken = accounts_config([account]) + "\nthis is not configuration {"
    server = NatsServer(name="edalab-broken-accounts", config=broken)
    try:
        with pytest.raises(ServerError) as failed:
            server.start()
    finally:
        server.stop()  # removes its temporary directories
    assert "s3cret-pw" not in str(failed.value)


def test_leaf_links_need_remotes():
    """Cutting the links of a server that has none is an error that says so."""
    with NatsServer(name="edalab-no-remotes") as srv, pytest.raises(ServerError, match="remotes"):
        srv.cut_leaf_links()


def test_a_leaf_link_is_cut_and_restored():
    """cut_leaf_links leaves the leaf with no connection, the hub too; restore brings it
    back; the hub keeps its leaf node port across a restart."""
    with NatsServer(name="edalab-hub-test", domain="hub", leafnode_port=0) as hub:
        port = hub.leafnode_port
        with NatsServer(name="edalab-leaf-test", leaf_remotes=(hub.leafnode_url,)) as leaf:
            leaf.restore_leaf_links()  # waits for the link: already up, or coming
            assert hub.leaf_connections() == 1
            leaf.cut_leaf_links()
            assert leaf.leaf_connections() == 0
            assert "disabled: true" in leaf.config_file.read_text()
            leaf.restore_leaf_links()
            assert leaf.leaf_connections() == 1
        hub.restart()
        assert hub.leafnode_port == port


async def test_wait_replicated_says_what_is_missing(js):
    """A copy that never gets there: the timeout names the stream and what it holds."""
    await js.add_stream(name="TOPO_ORIGIN", subjects=["topo.origin"])
    try:
        await js.publish("topo.origin", b"1")
        await js.add_stream(StreamConfig(name="TOPO_COPY", mirror=StreamSource(name="TOPO_ORIGIN")))
        info = await wait_replicated(js, "TOPO_COPY", messages=1)
        assert info.mirror.lag == 0 and info.state.messages == 1
        with pytest.raises(TimeoutError, match="TOPO_COPY to catch up: it holds 1 of 5"):
            await wait_replicated(js, "TOPO_COPY", messages=5, timeout=0.3)
    finally:
        await js.delete_stream("TOPO_COPY")
        await js.delete_stream("TOPO_ORIGIN")


async def test_wait_replicated_on_a_promoted_mirror_says_there_is_no_copy(js):
    """A mirror promoted (its mirror removed) copies nothing: wait_replicated says so at
    once, instead of returning an info whose ``mirror`` is None."""
    await js.add_stream(name="TOPO_ORIGIN2", subjects=["topo.origin2"])
    try:
        await js.publish("topo.origin2", b"1")
        mirror = StreamConfig(name="TOPO_COPY2", mirror=StreamSource(name="TOPO_ORIGIN2"))
        await js.add_stream(mirror)
        await wait_replicated(js, "TOPO_COPY2", messages=1)
        await js.update_stream(StreamConfig(name="TOPO_COPY2"))
        with pytest.raises(StreamError, match="TOPO_COPY2 is neither a mirror nor has sources"):
            await wait_replicated(js, "TOPO_COPY2", messages=1, timeout=5)
    finally:
        await js.delete_stream("TOPO_COPY2")
        await js.delete_stream("TOPO_ORIGIN2")
