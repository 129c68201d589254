# %% [markdown]
# # 14 · Ordering, backpressure and lag
#
# **About 45 minutes.** Needs 05 Subscribing (pull consumers), 06 Acks and redelivery
# (`ack`, `nak` and redelivery). One notebook at a time; when in doubt, Restart Kernel
# and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - say exactly what order JetStream guarantees, and show three ways a consumer loses it:
#   several workers, several messages in flight, and redelivery;
# - keep each key's events in order while scaling out, by partitioning subjects with the
#   server's `partition()` mapping and giving each partition one worker;
# - rebuild a read model from the start with an **ordered consumer**;
# - use `max_ack_pending` as backpressure, watch a consumer's lag (`num_pending`,
#   `num_ack_pending`, `num_redelivered`) grow and shrink, and read the advisories and
#   `/jsz` figures an operator would alert on.
#
# > **From NATS Streaming.** STAN delivered a channel in order to a subscriber with
# > `MaxInflight(1)`; with more in flight, or a queue group, order was lost the same way
# > it is here. JetStream's `max_ack_pending` plays the role of STAN's `MaxInflight`,
# > but for the whole consumer, shared by all its workers, where STAN counted it for
# > each subscriber (each member of a queue group).
#
# This lesson runs its own server, so that it can read the server's monitoring endpoint.

# %%
from edalab import connect
from edalab.course import lesson_server

server = lesson_server("14")
nc = await connect(server.url)
js = nc.jetstream()

# %% [markdown]
# ## What order a stream has
#
# A stream gives each message the next **sequence** number as it stores it: the stream's
# order is the order in which the server stored them. Twelve ledger entries for three
# accounts; `n` counts each account's entries, so account `a` must see 1, 2, 3, 4:

# %%
import json

from edalab.course import fresh_stream

await fresh_stream(js, "LEDGER", ["ledger.*"])
amounts = [120, 80, 700, 900, 40, 60, 30, 650, 20, 10, 800, 90]
entries = [("abc"[i % 3], i // 3 + 1, amount) for i, amount in enumerate(amounts)]
for account, n, amount in entries:
    await js.publish(f"ledger.{account}", json.dumps({"n": n, "amount": amount}).encode())
entries[:4]

# %% [markdown]
# To see order being lost, each worker records `(account, n)` as it finishes an entry,
# and `late` counts the entries finished after a later entry of the same account:


# %%
def entry(msg):
    return msg.subject.split(".")[-1], json.loads(msg.data)["n"]


def late(done):
    latest, count = {}, 0
    for account, n in done:
        count += n < latest.get(account, 0)
        latest[account] = max(n, latest.get(account, 0))
    return count


# %% [markdown]
# ## One consumer, one message at a time: in order
#
# A consumer delivers in stream order. With `max_ack_pending=1` the server hands out the
# next message only after the previous one was acknowledged, so the worker cannot get
# ahead of itself:

# %%
from nats.js.api import ConsumerConfig

sub = await js.pull_subscribe(
    "ledger.*", durable="single", config=ConsumerConfig(max_ack_pending=1)
)
done = []
for _ in entries:
    [msg] = await sub.fetch(1, timeout=5)
    done.append(entry(msg))
    await msg.ack_sync()
late(done), done[:4]

# %% [markdown]
# With `max_ack_pending=1` a request for ten messages still gets one:

# %%
sub = await js.pull_subscribe(
    "ledger.*", durable="one-at-a-time", config=ConsumerConfig(max_ack_pending=1)
)
len(await sub.fetch(10, timeout=5))

# %% [markdown]
# ## Lost 1: several workers on one consumer
#
# Two workers pull from the **same** consumer: worker A gets entries 1-6, worker B 7-12.
# To make the run the same every time, work is counted in steps: `work(k)` hands the
# event loop over `k` times, as `k` awaits on a database would. A is slower (3 steps an
# entry) than B (1 step):

# %%
import asyncio


async def work(steps):
    for _ in range(steps):
        await asyncio.sleep(0)


async def worker(batch, steps, done):
    for msg in batch:
        await work(steps)
        done.append(entry(msg))


# %%
worker_a = await js.pull_subscribe("ledger.*", durable="shared")
worker_b = await js.pull_subscribe("ledger.*", durable="shared")
batch_a, batch_b = await worker_a.fetch(6, timeout=5), await worker_b.fetch(6, timeout=5)
done = []
await asyncio.gather(worker(batch_a, 3, done), worker(batch_b, 1, done))
late(done), done[:6]

# %% [markdown]
# B finished account `a`'s third entry before A finished its first: the consumer
# delivered in order, the workers did not finish in order.

# %%
for msg in batch_a + batch_b:
    await msg.ack_sync()

# %% [markdown]
# ## Lost 2: several messages in flight in one worker
#
# One worker, one consumer, but the worker handles a whole batch concurrently (the
# default `max_ack_pending` is 1000). Entries above 500 need a fraud check that takes
# four steps; the others take one:


# %%
async def handle(msg, done):
    await work(4 if json.loads(msg.data)["amount"] > 500 else 1)
    done.append(entry(msg))


sub = await js.pull_subscribe("ledger.*", durable="concurrent")
batch = await sub.fetch(12, timeout=5)
done = []
await asyncio.gather(*(handle(msg, done) for msg in batch))
late(done), done[:6]

# %%
for msg in batch:
    await msg.ack_sync()

# %% [markdown]
# ## Lost 3: redelivery
#
# A failed entry is `nak`ed and comes back, but the entries after it were processed in
# the meantime. The server redelivers before it delivers anything new:

# %%
sub = await js.pull_subscribe("ledger.*", durable="retrying")
done = []
for msg in await sub.fetch(4, timeout=5):  # a1 b1 c1 a2
    if entry(msg) == ("a", 1):
        await msg.nak()  # a transient failure: try again
        continue
    done.append(entry(msg))
    await msg.ack_sync()
[msg] = await sub.fetch(1, timeout=5)
done.append(entry(msg))
await msg.ack_sync()
late(done), done, msg.metadata.num_delivered

# %% [markdown]
# ## Keeping each key in order while scaling out: partitions
#
# Order usually matters **per key** (per account, per order), not across keys. The server
# can put the key's partition into the subject as it stores a message: a stream's
# `subject_transform` maps `account.<key>` to `account.<partition>.<key>`, where
# `{{partition(3,1)}}` hashes what the source's wildcard number 1 matched (the key) into
# one of 3 partitions, and `{{wildcard(1)}}` copies it.

# %%
from nats.js.api import SubjectTransform

partitioned = SubjectTransform(src="account.*", dest="account.{{partition(3,1)}}.{{wildcard(1)}}")
await fresh_stream(js, "ACCOUNTS", ["account.*"], subject_transform=partitioned)
keys = ["ana", "ben", "cai", "dan", "eva", "hana"]
for i, amount in enumerate(amounts):
    await js.publish(
        f"account.{keys[i % 6]}", json.dumps({"n": i // 6 + 1, "amount": amount}).encode()
    )
info = await js.stream_info("ACCOUNTS", subjects_filter=">")
sorted(info.state.subjects.items())

# %% [markdown]
# The partition is the key's 32-bit FNV-1a hash modulo the number of partitions
# (`getHashPartition` in nats-server's `server/subject_transform.go`), so any client can
# tell which partition a key goes to:


# %%
def partition_of(key, n):
    h = 0x811C9DC5
    for byte in key.encode():
        h = ((h ^ byte) * 0x01000193) % 2**32
    return h % n


{key: partition_of(key, 3) for key in keys}

# %% [markdown]
# One consumer per partition with `max_ack_pending=1`, and one worker each, all three
# running concurrently at different speeds. The partitions do not wait for each other,
# yet no account's entry finishes after a later one:


# %%
async def partition_worker(p, done):
    config = ConsumerConfig(max_ack_pending=1)
    sub = await js.pull_subscribe(
        f"account.{p}.*", durable=f"part-{p}", stream="ACCOUNTS", config=config
    )
    while (await sub.consumer_info()).num_pending:
        [msg] = await sub.fetch(1, timeout=5)
        await work(p + 1)
        done.append(entry(msg))
        await msg.ack_sync()


done = []
await asyncio.gather(*(partition_worker(p, done) for p in range(3)))
late(done), len(done)

# %% [markdown]
# ## Rebuilding a read model: the ordered consumer
#
# To rebuild state from the start (balances per account), a reader needs every message,
# in order, once, and nothing to acknowledge. nats-py's `ordered_consumer=True` creates an
# ephemeral push consumer for exactly that: no acks, one delivery, flow control, stored in
# memory; if it notices a gap in the sequence, it recreates itself from where it was.

# %%
sub = await js.subscribe("account.>", stream="ACCOUNTS", ordered_consumer=True)
config = (await sub.consumer_info()).config
config.ack_policy, config.max_deliver, config.flow_control, config.mem_storage

# %% [markdown]
# `metadata.num_pending` says how many messages are left after this one: the replay is
# complete at zero.

# %%
balances = {}
while True:
    msg = await sub.next_msg(timeout=5)
    account = msg.subject.split(".")[-1]
    balances[account] = balances.get(account, 0) + json.loads(msg.data)["amount"]
    if msg.metadata.num_pending == 0:
        break
await sub.unsubscribe()
balances

# %% [markdown]
# ## `max_ack_pending` is backpressure
#
# A consumer never has more than `max_ack_pending` messages delivered and unacknowledged.
# A worker that asks for ten gets five; until it acknowledges some, it gets nothing more:

# %%
await fresh_stream(js, "CLICKS", ["click"])
for i in range(20):
    await js.publish("click", str(i).encode())
slow = await js.pull_subscribe(
    "click", durable="dashboard", config=ConsumerConfig(max_ack_pending=5)
)
held = await slow.fetch(10, timeout=5)
len(held)

# %% [markdown]
# On a live picture of the stream: five messages in flight (delivered, not acknowledged),
# fifteen pending behind them. The view redraws itself while the next cells run (at most
# four times a second): during the fetch below, `num_waiting` shows the pull request the
# server holds without answering.

# %%
from edalab.course import view

board = await view(js, "CLICKS")
board

# %% tags=["raises-exception"]
await slow.fetch(1, timeout=1)

# %% [markdown]
# Acknowledging the five moves the ack floor up to the delivered position: room for five more.

# %%
for msg in held:
    await msg.ack_sync()
await board.snapshot()

# %% [markdown]
# ## Lag, watched live
#
# A producer publishes 3 clicks a step for 30 steps. A slow worker takes batches of up to
# 5 and acknowledges 1 a step; it naks every tenth click once, and waits for the server's
# **advisory** for that nak (the server publishes it as it processes the nak). From step
# 15 a second worker joins the same consumer and acknowledges up to 4 a step, while the
# producer goes on publishing. After each step we read the consumer's figures from the
# server. Keep the live picture above in sight while the loop runs: the stream starts
# again (`fresh_stream`), messages pile up behind the delivered position, and
# `num_pending` turns down once the second worker joins.


# %%
async def step(sub, inbox, batch, take, advisories):
    info = await sub.consumer_info()
    room = min(info.num_pending, info.config.max_ack_pending - info.num_ack_pending)
    if (want := min(room, batch - len(inbox))) > 0:
        inbox += await sub.fetch(want, timeout=5)
    for msg in inbox[:take]:
        if msg.metadata.sequence.stream % 10 == 0 and msg.metadata.num_delivered == 1:
            await msg.nak()
            advisories.append(json.loads((await naks.next_msg(timeout=5)).data))
        else:
            await msg.ack_sync()
    del inbox[:take]


# %%
await fresh_stream(js, "CLICKS", ["click"])
naks = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.CLICKS.dashboard")
config = ConsumerConfig(max_ack_pending=10)
slow = await js.pull_subscribe("click", durable="dashboard", config=config)
helper = await js.pull_subscribe("click", durable="dashboard")
samples, advisories, slow_inbox, helper_inbox = [], [], [], []
for t in range(40):
    for i in range(3 if t < 30 else 0):
        await js.publish("click", f"{t}.{i}".encode())
    await step(slow, slow_inbox, 5, 1, advisories)
    if t >= 15:
        await step(helper, helper_inbox, 4, 4, advisories)
    info = await slow.consumer_info()
    samples.append((t, info.num_pending, info.num_ack_pending, info.num_redelivered))
samples[13:19]

# %%
from edalab.course.charts.lag import lag_chart

lag_chart(samples, joined_at=15)

# %% [markdown]
# ## What an operator alerts on
#
# Every `nak` published an **advisory** on
# `$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.<stream>.<consumer>`; a message that runs out of
# `max_deliver` attempts publishes one on
# `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`. A rising rate of
# either means consumers are failing. The naks of the run above:

# %%
await naks.unsubscribe()
fields = ("type", "stream", "consumer", "stream_seq", "deliveries")
len(advisories), {k: advisories[0][k] for k in fields}

# %% [markdown]
# A consumer `fragile` with `max_deliver=2`: the first click is nak'ed twice. When the
# server next tries to deliver it, the attempts are used up: it gives the click up,
# publishes the max-deliveries advisory, and delivers the next click instead.

# %%
fragile = await js.pull_subscribe("click", durable="fragile", config=ConsumerConfig(max_deliver=2))
naked = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.CLICKS.fragile")
exceeded = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.CLICKS.fragile")
for _ in range(2):
    [msg] = await fragile.fetch(1, timeout=5)
    await msg.nak()
    await naked.next_msg(timeout=5)
[msg] = await fragile.fetch(1, timeout=5)
advisory = json.loads((await exceeded.next_msg(timeout=5)).data)
msg.metadata.sequence.stream, {k: advisory[k] for k in fields}

# %% [markdown]
# The monitoring endpoint `/jsz?consumers=true` (on the server's HTTP port) reports every
# consumer's figures in one document: the ones to graph and alert on are `num_pending`
# (the lag), `num_ack_pending` (in flight, against `max_ack_pending`) and
# `num_redelivered` (messages delivered more than once and not acknowledged: `fragile`'s
# first click, which it gave up on, still counts).

# %%
import urllib.request

with urllib.request.urlopen(f"{server.monitor_url}/jsz?consumers=true") as response:
    jsz = json.load(response)
[stream] = [s for s in jsz["account_details"][0]["stream_detail"] if s["name"] == "CLICKS"]
figures = ("name", "num_pending", "num_ack_pending", "num_redelivered")
[{k: c[k] for k in figures} for c in stream["consumer_detail"]]

# %% [markdown]
# ## Recap
#
# - A stream is ordered by sequence; a consumer delivers in that order. Processing is
#   sure to stay in order with one worker and one message at a time (`max_ack_pending=1`).
# - Several workers, several messages in flight, and redeliveries each reorder processing.
# - Partition by key with `{{partition(n, wildcard)}}` and give each partition one in-order
#   worker: each key stays in order, the partitions run in parallel.
# - An ordered consumer replays a stream in order, without acks, to rebuild state.
# - `max_ack_pending` bounds what is in flight; `num_pending` is the lag to watch, with
#   the nak and max-deliveries advisories and `/jsz`.
#
# ## Exercise
#
# Partition a stream `SHIPMENTS` on `shipment.<key>` into **4** partitions by the key
# (stored as `shipment.<partition>.<key>`). Create the consumers `ship-0` ... `ship-3`, each
# filtering its partition with `max_ack_pending=1`, publish a few shipments for several
# keys, and let each consumer process (acknowledge) all of its messages. The check
# publishes shipments of its own to see each key land in exactly one partition. Then check:

# %% tags=["solution"]
shipments = SubjectTransform(src="shipment.*", dest="shipment.{{partition(4,1)}}.{{wildcard(1)}}")
await fresh_stream(js, "SHIPMENTS", ["shipment.*"], subject_transform=shipments)
for key in ("s1", "s2", "s3", "s4", "s5", "s6", "s1", "s2"):
    await js.publish(f"shipment.{key}", b"{}")
for p in range(4):
    sub = await js.pull_subscribe(
        f"shipment.{p}.*",
        durable=f"ship-{p}",
        stream="SHIPMENTS",
        config=ConsumerConfig(max_ack_pending=1),
    )
    while (await sub.consumer_info()).num_pending:
        [msg] = await sub.fetch(1, timeout=5)
        await msg.ack_sync()

# %%
from edalab.course import check, hint  # stuck? hint("14") in a new cell

await check("14", js)
