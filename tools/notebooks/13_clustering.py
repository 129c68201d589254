# %% [markdown]
# # 13 · Clustering
#
# **Learning goals**
#
# - run a three-node JetStream cluster on one machine;
# - create a replicated (R3) stream and find which server leads it;
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
from edalab.cluster import NatsCluster

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
# ## Kill the leader while publishing
#
# A publisher sends 2,000 orders with retries (same `Nats-Msg-Id` on each retry). After
# the first 500 are acknowledged, the stream's leader is killed with `kill -9`.

# %%
import asyncio

from edalab import publish_events
from edalab.factories import EventFactory

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
from edalab.cluster import stream_leader

new_leader = await stream_leader(js, "ORDERS", other_than=leader)
new_leader != leader, sorted(cluster.running_nodes()) == sorted({"n1", "n2", "n3"} - {leader})

# %% [markdown]
# ## The killed node comes back and catches up
#
# Restarted on its own store, the node rejoins as a follower and copies what it
# missed. `wait_until_current` waits until every replica reports itself current:

# %%
from edalab.cluster import wait_until_current

await asyncio.to_thread(cluster.start_node, leader)
await wait_until_current(js, "ORDERS", timeout=60)
info = await js.stream_info("ORDERS")
[(r.current, r.lag or 0) for r in info.cluster.replicas], info.state.messages

# %% [markdown]
# ## Nothing lost, nothing duplicated
#
# Read the stream back and count each order id (as in notebook 09):

# %%
from edalab.consuming import loss_report, stored_event_ids

loss_report(orders, len(acked), await stored_event_ids(js, "ORDERS"))

# %% [markdown]
# ## Recap
#
# - JetStream clusters are `nats-server`s routed together; a meta leader manages the
#   JetStream API, and each replicated stream has its own leader.
# - R3 tolerates the loss of one node: a new leader is elected, and publishers that
#   retry with the same `Nats-Msg-Id` lose nothing and duplicate nothing.
# - A restarted node catches up from the others.
# - `docker compose --profile cluster up` starts the same three nodes with Docker.
#
# ## Exercise
#
# Create an R3 stream `AUDIT` on `audit.>`, publish 100 events, stop a *follower* (not
# the leader) and publish 100 more. Does the leader change? Restart the follower and
# check that the replicas are current with 200 messages.

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
from edalab.course import check

await check("13", js)

# %%
await nc.close()
cluster.stop()
