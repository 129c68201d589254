# %% [markdown]
# # 13 · Clustering
#
# **About 30 minutes.** Needs 03 Publishing (streams and `PubAck`), 09 Durability (what
# an acknowledgement promises). One notebook at a time; when in doubt, Restart Kernel
# and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - run a three-node JetStream cluster on one machine;
# - create a replicated (R3) stream and find which server leads it;
# - know what an R3 acknowledgement promises: a majority has the write in its Raft log,
#   in the operating system's page cache, not necessarily on disk; the stream's own
#   files may still be in the server's memory;
# - kill the leader while publishing, and watch a new leader take over with nothing lost
#   or duplicated;
# - restart the killed node and see it catch up.
#
# > **From NATS Streaming.** The seed tutorial "connects to a NATS Streaming cluster" with
# > a cluster id (`stan.Connect(clusterID, clientID)`). STAN clustering (Raft, or fault
# > tolerance with a shared store) was a separate mode of the streaming server. In
# > JetStream the `nats-server`s themselves form the cluster, and each stream chooses
# > its own replication factor (`num_replicas`). There is no cluster id in the client:
# > it gets a list of server URLs.

# %% [markdown]
# ## Three servers
#
# `NatsCluster` starts three real `nats-server` processes (n1, n2, n3) on loopback, each
# with its client port, route port and store, routed to each other. It returns once
# JetStream has elected a **meta leader**, the node that manages streams and consumers
# (asked of each server's `/jsz` monitoring endpoint). From a terminal,
# `edalab cluster start` does the same and keeps it running.

# %%
from edalab import NatsCluster

cluster = NatsCluster(nodes=3).start()
sorted(cluster.running_nodes()), cluster.meta_leader() in {"n1", "n2", "n3"}

# %% [markdown]
# A client takes every node's URL: if one goes down it reconnects to another.

# %%
from edalab import connect, ensure_stream

nc = await connect(cluster.urls, max_reconnect_attempts=-1)
js = nc.jetstream()
await ensure_stream(js, "ORDERS", ["order.>"], num_replicas=3)

# %% [markdown]
# ## Who leads the stream
#
# An R3 stream is a Raft group of three replicas: one **leader** takes the writes and
# the two followers copy them; a write is acknowledged once a majority (two of three)
# has it. The stream's info says who is who:

# %%
info = await js.stream_info("ORDERS")
leader = info.cluster.leader
sorted([leader, *[r.name for r in info.cluster.replicas]])

# %% [markdown]
# (Which node leads changes from run to run, so the lesson refers to it as `leader`.)
#
# ## What the acknowledgement promises
#
# The leader acknowledges a publish once a **quorum** of the replicas (two of three) has
# it in the stream's **Raft log**: each node appends the entry to its log file before it
# answers the leader, and the leader answers the publisher once the entry is committed
# and applied. Appending is a `write` to the operating system, so it first lands in the
# page cache. The stream's own message files come second: on a replicated stream the
# server keeps new messages in its memory and writes them out in the background (a
# one-replica stream writes them before the ack, as in notebook 09), because the Raft
# log can rebuild them after a crash. Neither is forced to disk (`fsync`) before the ack:
# JetStream leaves that to the operating system and forces one at the latest every
# `sync_interval`, two minutes by default. Each node's JetStream settings (its `/jsz`
# monitoring endpoint) say so, in seconds:

# %%
{
    node: cluster.jsz(node)["config"]["sync_interval"] // 10**9
    for node in sorted(cluster.running_nodes())
}

# %% [markdown]
# and none of them syncs on every write (`sync_always` would be listed, and true):

# %%
[cluster.jsz(node)["config"].get("sync_always", False) for node in sorted(cluster.running_nodes())]

# %% [markdown]
# The Raft log is a directory of its own in each node's store, named after the stream's
# Raft group. A publish's bytes are in the log files of at least two nodes by the time
# its ack arrives (a small stream `WHERE` keeps `ORDERS` clean for later):

# %%
await ensure_stream(js, "WHERE", ["where"], num_replicas=3)
marker = b"where-does-this-write-live"
await js.publish("where", marker)
group = (await js.stream_info("WHERE")).cluster.raft_group


def in_raft_log(node):
    log = cluster.servers[node].store_dir / "jetstream" / "$SYS" / "_js_" / group
    return any(marker in block.read_bytes() for block in log.rglob("*.blk"))


sum(in_raft_log(node) for node in cluster.running_nodes()) >= 2

# %% [markdown]
# So replication protects against a node's *process* dying, or one machine failing: the
# others still hold the write. It does not protect against machines losing their page
# caches together. Jepsen's analysis of NATS 2.12.1 (Kyle Kingsbury, December 2025,
# <https://jepsen.io/analyses/nats-2.12.1>) found that coordinated power failures, or an
# operating-system crash on a single node combined with network delays or process
# pauses, can lose acknowledged ("committed") writes and leave the replicas in a
# persistent split brain; it attributes the loss at least in part to flushing to disk
# every two minutes rather than before acknowledging. It also found that truncated or
# corrupted data files on a minority of nodes could lose writes. NATS has since
# documented the risk ("Syncing data to disk" in the JetStream concepts,
# <https://docs.nats.io/nats-concepts/jetstream>): with replication, a message is
# acknowledged once a quorum has it, and `sync_interval: always` fsyncs every message
# before it is acknowledged, the strongest durability at the slowest throughput.
# `NatsCluster(sync_interval="always")` starts such a cluster.
#
# ## Kill the leader while publishing
#
# A publisher sends 2,000 orders with retries (same `Nats-Msg-Id` on each retry). After
# the first 500 are acknowledged, the stream's leader is killed with `kill -9`.

# %%
import asyncio

from edalab import EventFactory, publish_events

make = EventFactory(prefix="ord-")
orders = [make("order.placed", {"n": i}) for i in range(2000)]
acked = []
enough = asyncio.Event()


async def publisher():
    for start in range(0, len(orders), 250):
        acked.extend(await publish_events(js, orders[start : start + 250], timeout=2, retry_for=60))
        if len(acked) >= 500:
            enough.set()


task = asyncio.create_task(publisher())
await asyncio.wait_for(enough.wait(), timeout=60)
cluster.kill(leader)
await asyncio.wait_for(task, timeout=120)
len(acked)

# %% [markdown]
# The two survivors still form a majority: they elected a new leader and took the rest
# of the writes. The publisher noticed only a pause.

# %%
from edalab import stream_leader

new_leader = await stream_leader(js, "ORDERS", other_than=leader)
new_leader != leader, sorted(cluster.running_nodes()) == sorted({"n1", "n2", "n3"} - {leader})

# %% [markdown]
# ## The killed node comes back and catches up
#
# Restarted on its own store, the node rejoins as a follower and copies what it
# missed. `wait_until_current` waits until every replica reports itself current:

# %%
from edalab import wait_until_current

await asyncio.to_thread(cluster.start_node, leader)
await wait_until_current(js, "ORDERS", timeout=60)
info = await js.stream_info("ORDERS")
[(r.current, r.lag or 0) for r in info.cluster.replicas], info.state.messages

# %% [markdown]
# ## Nothing lost, nothing duplicated
#
# Read the stream back and count each order id (as in notebook 09):

# %%
from edalab import stored_event_ids
from edalab.course import loss_report

loss_report(orders, len(acked), await stored_event_ids(js, "ORDERS"))

# %% [markdown]
# ## No majority, no acknowledgement
#
# With one node down, two of three still form a majority. With two down, the last one
# cannot: whatever it receives, it cannot get a second replica to store it, so nobody
# acknowledges the publish (the client times out, or hears that no leader answers).

# %%
import nats

down = sorted(cluster.running_nodes())[:2]
for node in down:
    cluster.kill(node)
try:
    await js.publish("order.placed", b"{}", timeout=2)
    outcome = "acknowledged"
except (nats.errors.Error, TimeoutError):
    outcome = "not acknowledged"
outcome

# %% [markdown]
# The meta group (which manages streams and consumers) lost its majority too. Restarted,
# the two nodes restore both: `wait_for_meta_leader` waits until JetStream's metadata
# has a leader again with every node current, and every replica of `ORDERS` catches up:

# %%
for node in down:
    await asyncio.to_thread(cluster.start_node, node)
await asyncio.to_thread(cluster.wait_for_meta_leader)
await wait_until_current(js, "ORDERS", timeout=60)
sorted(cluster.running_nodes())

# %% [markdown]
# ## Recap
#
# - JetStream clusters are `nats-server`s routed together; a meta leader manages the
#   JetStream API, and each replicated stream has its own leader.
# - An R3 acknowledgement means two of three replicas hold the write in their Raft log,
#   in the page cache (the stream's own files may still be in the server's memory): with
#   the default `sync_interval` (two minutes) it may not be on any disk yet.
#   Jepsen (NATS 2.12.1, 2025) lost acknowledged writes to coordinated power failures and
#   to an OS crash combined with other faults; `sync_interval: always` closes that window
#   at a cost in throughput.
# - A publish needs a majority of the replicas: with two of three nodes down, it is not
#   acknowledged.
# - R3 tolerates the loss of one node: a new leader is elected, and publishers that
#   retry with the same `Nats-Msg-Id` lose nothing and duplicate nothing, as long as
#   their retries fall within the stream's duplicate window (two minutes by default).
# - A restarted node catches up from the others.
# - `docker compose --profile cluster up -d n1 n2 n3` starts the same three nodes with
#   Docker.
#
# ## Exercise
#
# Create an R3 stream `AUDIT` on `audit.>`, publish 100 events, stop a *follower* (not
# the leader) and publish 100 more. Does the leader change? Restart the follower, wait
# until it has caught up, and check: the checker asks the leader about both followers
# (online, current, no lag) and reads the 200 events back (200 distinct ids).

# %% tags=["solution"]
await ensure_stream(js, "AUDIT", ["audit.>"], num_replicas=3)
await publish_events(js, [make("audit.note", {"n": i}) for i in range(100)])
audit_leader = await stream_leader(js, "AUDIT")
follower = next(n for n in cluster.running_nodes() if n != audit_leader)
cluster.kill(follower)
await publish_events(js, [make("audit.note", {"n": i}) for i in range(100)], retry_for=30)
still_leader = await stream_leader(js, "AUDIT")
await asyncio.to_thread(cluster.start_node, follower)
await wait_until_current(js, "AUDIT", timeout=60)
still_leader == audit_leader, (await js.stream_info("AUDIT")).state.messages

# %%
from edalab.course import check, hint  # stuck? hint("13") in a new cell

await check("13", js)
