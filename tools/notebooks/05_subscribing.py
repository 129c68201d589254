# %% [markdown]
# # 05 · Subscribing
#
# **About 45 minutes.** Needs 02 Subject naming (wildcards), 03 Publishing (streams and
# `publish_events`). One notebook at a time; when in doubt, Restart Kernel and Run All
# (the *Kernel* menu).
#
# **Learning goals**
#
# - write the seed's callback subscriber with core NATS, and hand its messages to a cell;
# - share work among the members of a queue group;
# - consume a stream with a JetStream push consumer and a pull consumer, and choose;
# - tell a stream's subjects (what is stored) from a consumer's filters (what it reads);
# - write a long-running pull loop: fetch, ack, idle heartbeats, and what the status
#   replies 408 and 409 mean;
# - use `EventConsumer` to iterate decoded events or run a handler per event, and see
#   where each consumer stands in its stream.
#
# > **From NATS Streaming.** `sc.Subscribe(subject, cb)` gave a callback per message;
# > `sc.QueueSubscribe(subject, group, cb)` split them among a group. Core NATS has both
# > (`nc.subscribe(subject, queue=..., cb=...)`), without storage. For stored messages,
# > JetStream **consumers** replace STAN subscriptions: a consumer is state on the server
# > (where it is in the stream, what is unacknowledged), and clients attach to it.

# %%
import asyncio

from edalab import EventFactory, connect, ensure_server, publish_events
from edalab.course import fresh_stream

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="ord-")
await fresh_stream(js, "ORDERS", ["order.>"])
orders = [make("order.placed", {"order_id": f"o-{i}"}) for i in range(6)]
later = [make("order.shipped", {"order_id": "o-0"}), make("order.cancelled", {"order_id": "o-5"})]
acks = await publish_events(js, [*orders, *later])
[(ack.seq, event.type) for ack, event in zip(acks, [*orders, *later], strict=True)]

# %% [markdown]
# ## The seed's callback subscriber, on core NATS
#
# A callback runs on the event loop whenever a message arrives, possibly after this
# cell has finished. Printing from it would land in whichever cell runs next. So the
# callback only puts the message in a queue, and the cell awaits the queue:

# %%
received: asyncio.Queue = asyncio.Queue()


async def on_message(msg):
    await received.put(msg)


sub = await nc.subscribe("greeting.*", cb=on_message)
await nc.publish("greeting.hello", b"hi")
msg = await asyncio.wait_for(received.get(), timeout=2)
await sub.unsubscribe()
msg.subject, msg.data

# %% [markdown]
# ## Queue groups share the work
#
# Subscribers that join the same **queue group** split the messages: each message goes
# to exactly one member. Two members, twenty jobs:

# %%
got = {"a": [], "b": []}
done = asyncio.Event()


def member(name):
    async def cb(msg):
        got[name].append(msg.data)
        if len(got["a"]) + len(got["b"]) == 20:
            done.set()

    return cb


subs = [await nc.subscribe("jobs", queue="workers", cb=member(n)) for n in got]
for i in range(20):
    await nc.publish("jobs", str(i).encode())
await asyncio.wait_for(done.wait(), timeout=5)
for s in subs:
    await s.unsubscribe()
sorted(got["a"] + got["b"]) == sorted(str(i).encode() for i in range(20))

# %% [markdown]
# Every job was handled once. How they were split changes from run to run:

# %% tags=["nbval-ignore-output"]
{name: len(jobs) for name, jobs in got.items()}

# %% [markdown]
# ## JetStream push consumers
#
# A push consumer makes the server send stored messages to a subject the client
# listens on. Unlike core NATS, it gets messages published *before* it subscribed:

# %%
push = await js.subscribe("order.placed", stream="ORDERS", manual_ack=True)
msg = await push.next_msg(timeout=2)
await msg.ack()
await push.unsubscribe()
msg.subject, msg.metadata.sequence.stream

# %% [markdown]
# ## JetStream pull consumers
#
# A pull consumer sends nothing until a client asks: `fetch(n)` returns up to `n`
# messages. Workers pull when they have capacity, so a slow worker is never flooded,
# and any number of workers can pull from the same consumer to share the load.
# Prefer pull consumers for workers; push suits a single fast listener.

# %%
pull = await js.pull_subscribe("order.placed", durable="shipping-raw", stream="ORDERS")
msgs = await pull.fetch(3, timeout=2)
for m in msgs:
    await m.ack()
[m.metadata.sequence.stream for m in msgs]

# %% [markdown]
# ## A stream's subjects and a consumer's filters
#
# The stream decides what is **stored**: everything under `order.` (the patterns of
# notebook 02). Each consumer decides what it **reads** from that store with a filter
# subject. With raw nats-py, the filter is part of the consumer's configuration:

# %%
from nats.js.api import ConsumerConfig

await js.add_consumer(
    "ORDERS", ConsumerConfig(durable_name="shipments", filter_subject="order.shipped")
)
shipments = await js.pull_subscribe_bind("shipments", "ORDERS")
msgs = await shipments.fetch(10, timeout=1)
for m in msgs:
    await m.ack()
[(m.subject, m.metadata.sequence.stream) for m in msgs]

# %% [markdown]
# Since nats-server 2.10 a consumer can have several filters (`filter_subjects`):

# %%
await js.add_consumer(
    "ORDERS",
    ConsumerConfig(durable_name="closing", filter_subjects=["order.shipped", "order.cancelled"]),
)
closing = await js.pull_subscribe_bind("closing", "ORDERS")
msgs = await closing.fetch(10, timeout=1)
for m in msgs:
    await m.ack()
[m.subject for m in msgs]

# %% [markdown]
# ## A pull request, on the wire
#
# `fetch` hides a small protocol. A pull request is a core NATS message to
# `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` whose reply subject is an inbox you
# listen on. It says how many messages you want (`batch`), how long the request may
# wait (`expires`) and how often the server should say "still here" while it has
# nothing to send (`idle_heartbeat`); both durations are in nanoseconds:

# %%
import json

await js.add_consumer("ORDERS", ConsumerConfig(durable_name="wire", filter_subject="order.placed"))
inbox = await nc.subscribe(nc.new_inbox())
request = {"batch": 8, "expires": 1_000_000_000, "idle_heartbeat": 250_000_000}
await nc.publish(
    "$JS.API.CONSUMER.MSG.NEXT.ORDERS.wire", json.dumps(request).encode(), reply=inbox.subject
)

# %% [markdown]
# Everything the server sends back arrives on the inbox: the messages (they carry the
# ack subject as their reply), then, with a `Status` header and no body, a **100 Idle
# Heartbeat** every 0.25 s while there is nothing more, and finally **408 Request
# Timeout** when the request expires. Read until the 408, acking each message:

# %%
arrivals = []
while not arrivals or arrivals[-1].headers is None or arrivals[-1].headers.get("Status") != "408":
    msg = await inbox.next_msg(timeout=5)
    if not msg.headers or "Status" not in msg.headers:
        await msg.ack()
    arrivals.append(msg)
timeout_reply = arrivals[-1]
len(arrivals) > 6

# %% [markdown]
# Grouped (the number of heartbeats depends on timing, so it is not shown):

# %%
from itertools import groupby

from edalab.course import Table


def kind(msg):
    if msg.headers and "Status" in msg.headers:
        return f"status {msg.headers['Status']} {msg.headers['Description']}"
    return f"message on {msg.subject}"


Table(
    ["what arrived", "how many"],
    [
        [k, len(list(g)) if k.startswith("message") else "..."]
        for k, g in groupby(map(kind, arrivals))
    ],
)

# %% [markdown]
# The 408 is not an error: it closes the request and says how much of it went unused
# (8 asked for, 6 delivered):

# %%
timeout_reply.headers["Nats-Pending-Messages"]

# %% [markdown]
# A **409** means the server refused or ended the request for a reason worth knowing:
# `Exceeded MaxWaiting` (too many open pull requests on the consumer, `max_waiting`,
# 512 by default), a batch, expiry or size above the consumer's limits, `Consumer
# Deleted`, `Leadership Change` in a cluster. A consumer that allows one waiting
# request shows it: the first request waits, the second is refused at once:

# %%
await js.add_consumer(
    "ORDERS",
    ConsumerConfig(durable_name="narrow", filter_subject="order.refunded", max_waiting=1),
)
for _ in range(2):
    request = {"batch": 1, "expires": 1_000_000_000}
    await nc.publish(
        "$JS.API.CONSUMER.MSG.NEXT.ORDERS.narrow", json.dumps(request).encode(), reply=inbox.subject
    )
replies = [await inbox.next_msg(timeout=5) for _ in range(2)]
[(m.headers["Status"], m.headers["Description"]) for m in replies]

# %% [markdown]
# How nats-py surfaces them: `fetch` treats 404, 408 and 409 alike as "no messages",
# skips heartbeats, and when its `timeout` passes with nothing to return raises
# `nats.errors.TimeoutError` (a `fetch` of more than one message can also return an
# empty list). So a 409 looks exactly like an idle stream. With one request already
# waiting on `narrow`, `fetch` is refused by the server, and all you see is:

# %% tags=["raises-exception"]
await nc.publish(
    "$JS.API.CONSUMER.MSG.NEXT.ORDERS.narrow",
    json.dumps({"batch": 1, "expires": 2_000_000_000}).encode(),
    reply=inbox.subject,
)
narrow = await js.pull_subscribe_bind("narrow", "ORDERS")
await narrow.fetch(1, timeout=1)

# %%
await inbox.unsubscribe()
await narrow.unsubscribe()

# %% [markdown]
# ## A long-running pull loop
#
# A worker fetches in a loop for as long as it runs. With `heartbeat` set, nats-py
# tells the two quiet cases apart: `FetchTimeoutError` (heartbeats came, the server is
# there and had nothing) and its parent `nats.errors.TimeoutError` (no answer at all:
# connection or server trouble, or a request the server dropped without a word because
# the consumer already had `max_waiting` requests waiting and this one asked for
# heartbeats; worth logging and counting). Catch Python's own `TimeoutError` for that
# second case, not only nats-py's: `nats.errors.TimeoutError` is a subclass of it, and
# nats-py 2.16's `fetch` raises asyncio's plain `TimeoutError` when its deadline runs out
# between two steps (a busy machine makes that likely; nats.py pull request 1008 would
# restore nats-py's own). Each handled message is acked; the loop reports through a
# queue, never by printing:

# %%
import nats


async def work(psub, handled, stop):
    while not stop.is_set():
        try:
            msgs = await psub.fetch(10, timeout=0.5, heartbeat=0.1)
        except nats.js.errors.FetchTimeoutError:
            continue  # idle: the heartbeats say the server is there
        except TimeoutError:  # nats.errors.TimeoutError, or asyncio's own
            continue  # no answer at all: log it, count it, maybe reconnect
        for msg in msgs:  # may be empty: fetch can return [] instead of raising
            await handled.put(msg.metadata.sequence.stream)
            await msg.ack()


# %% [markdown]
# Start it in the background, publish two more orders while it runs, and await all
# eight, the six already stored and the two new ones:

# %%
handled, stop = asyncio.Queue(), asyncio.Event()
packer = await js.pull_subscribe("order.placed", durable="packer", stream="ORDERS")
worker = asyncio.create_task(work(packer, handled, stop))
await publish_events(js, [make("order.placed", {"order_id": f"o-{i}"}) for i in (6, 7)])
[await asyncio.wait_for(handled.get(), timeout=5) for _ in range(8)]

# %% [markdown]
# Stopping is a flag the loop checks between fetches, so the worker ends within about
# one fetch timeout:

# %%
stop.set()
await asyncio.wait_for(worker, timeout=5)
worker.done()

# %% [markdown]
# ## `EventConsumer`: decoded events with their messages
#
# The helper creates (or reuses) a durable pull consumer, fetches in batches and decodes
# every message into an `Event`. Each `Delivery` holds the event and its message; you
# acknowledge it. Iteration stops after `max_events`, or when nothing arrives for
# `timeout` seconds.

# %%
from edalab import EventConsumer

consumer = await EventConsumer.create(js, "ORDERS", "invoicing", filter_subject="order.placed")
seen = []
async for delivery in consumer.events(batch=4, timeout=0.5):
    seen.append((delivery.seq, delivery.event.id))
    await delivery.ack()
seen

# %% [markdown]
# Or hand it a handler: `run` acks after the handler returns (notebook 06 shows what
# happens when it raises). It stops when no event came for `timeout` seconds and says
# what it did.

# %%
totals = []


async def record_total(event):
    totals.append(event.data["order_id"])


mailer = await EventConsumer.create(js, "ORDERS", "mailer", filter_subject="order.*")
await mailer.run(record_total, batch=10, timeout=0.5)

# %%
totals

# %% [markdown]
# What the helper adds over `pull_subscribe` + `fetch`: idempotent consumer setup,
# decoding with clear errors, a bounded batch size and timeouts, no exception when the
# stream is simply empty, and undecodable messages put aside rather than crashing the
# loop (notebook 06). It reads the status replies itself: a 408 ends a request, and a
# `409 Consumer Deleted` raises `ConsumerError` instead of looking like an idle stream.
#
# ## Where each consumer stands
#
# One stream, several consumers, each with its own position. A consumer that fetched
# four events and acknowledged two has an **ack floor** of 2 and two **ack pending**:

# %%
slow = await EventConsumer.create(js, "ORDERS", "slow", filter_subject="order.placed")
fetched = await slow.fetch(4, timeout=1)
for delivery in fetched[:2]:
    await delivery.ack(sync=True)
[d.seq for d in fetched]

# %% [markdown]
# The server keeps these positions. A plain `ack()` is fire and forget, so the server's
# counts can lag a moment behind the cell that sent it; we know what we sent (every
# delivery acknowledged except `slow`'s last two), so wait until the server says so:

# %%
from edalab import wait_for
from edalab.course.charts.stream import stream_chart

names = ["shipping-raw", "shipments", "packer", "invoicing", "slow"]


async def acks_landed():
    infos = [await js.consumer_info("ORDERS", name) for name in names]
    return [info.num_ack_pending for info in infos] == [0, 0, 0, 0, 2]


await wait_for(acks_landed, timeout=5, what="the acks sent above to reach the server")

# %% [markdown]
# Then read the positions. `view` draws them on the stream, one row per consumer: ▼ where
# it has delivered up to, | its ack floor, in orange what it has in flight (delivered,
# not yet acknowledged), and its counts. The picture stays live: it redraws itself while
# later cells run (at most four times a second, only when something changed).

# %%
from edalab.course import view

board = await view(js, "ORDERS", consumers=names)
board

# %%
await stream_chart(js, "ORDERS", *names)

# %% [markdown]
# `pending` counts what matches the filter and is not yet delivered: `shipping-raw`
# read three of the eight `order.placed` events, `shipments` reads only `order.shipped`
# (sequence 7) and is done, `slow` waits on two acks. Nothing is lost by a consumer
# being behind: the stream holds the events until its limits say otherwise.
#
# ## The worker as a program
#
# Deployed, a worker like `packer` above is a program of its own, started from a
# terminal with `python packer.py`. Its last lines start the event loop with
# `asyncio.run(main())`. This one packs whatever waits for `packer`, then exits:

# %%
from pathlib import Path

import edalab.course

script = Path(edalab.course.__file__).parent / "packer.py"
print(script.read_text().partition('"""\n\n')[2].strip())

# %% [markdown]
# IPython's `%run` runs a script in this kernel as `python` would, as `"__main__"`.
# Here it fails:

# %% tags=["raises-exception"]
# %run $script

# %% [markdown]
# `asyncio.run` starts an event loop, runs `main()` in it and closes it. A Jupyter kernel
# already runs a loop (that is how a cell can `await`), and asyncio allows one running
# loop per thread, so `asyncio.run` refuses before it starts `main()`. (Python may warn
# later that coroutine `main` was never awaited: that is this refused one.) There are
# two ways out.
#
# **In a notebook, `await` instead.** The loop is already running, so await the
# coroutine at the top level of a cell. `runpy.run_path` runs the script under a name
# other than `"__main__"`, so its `if` skips `asyncio.run`, and returns what it defined;
# publish two orders and await the worker's `main()`:

# %%
import runpy

main = runpy.run_path(str(script))["main"]
await publish_events(js, [make("order.placed", {"order_id": f"o-{i}"}) for i in (8, 9)])
await main()

# %% [markdown]
# **A script run unchanged: `nest_asyncio2`.** `nest_asyncio2.apply()` patches asyncio
# so that `asyncio.run` may run inside a running loop. Apply it in the cell that needs
# it, never in a library at import time: it lasts until the kernel restarts (rerun
# without a restart, the failing `%run` above now works) and swaps asyncio's tasks and
# futures for slower pure-Python ones (on Python before 3.14). In the script itself nothing changes: a program
# started with `python packer.py` has no running loop, and `asyncio.run` is right there.

# %%
import nest_asyncio2

nest_asyncio2.apply()
await publish_events(js, [make("order.placed", {"order_id": f"o-{i}"}) for i in (10, 11)])
# %run $script

# %% [markdown]
# ## Recap
#
# - Core callbacks: hand messages to the cell through a queue; queue groups share work.
# - JetStream consumers read stored messages; push delivers, pull waits to be asked.
# - The stream's subjects say what is stored; a consumer's filters what it reads.
# - A pull request gets messages, 100 heartbeats while idle, 408 when it expires, 409
#   when refused; nats-py's `fetch` skips heartbeats and treats 404, 408 and 409 as
#   "no messages": you see a timeout (or an empty list).
# - `EventConsumer.events()` iterates decoded events; `run(handler)` acks on success.
# - Each consumer has an ack floor, a delivered position and pending counts on the server.
# - A worker as a program ends with `asyncio.run(main())`; in a notebook, `await main()`,
#   or `nest_asyncio2.apply()` to `%run` the script unchanged.
#
# ## Exercise
#
# Create a durable pull consumer named `billing` on `ORDERS` that receives only
# `order.placed`, and process all its events with `EventConsumer.run`, acknowledging
# each. The check compares what `billing` delivered and acknowledged with the
# `order.placed` events the stream holds:

# %% tags=["solution"]
billing = await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.placed")


async def bill(event):
    assert event.type == "order.placed"


await billing.run(bill, timeout=0.5)

# %%
from edalab.course import check, hint  # stuck? hint("05") in a new cell

await check("05", js)
