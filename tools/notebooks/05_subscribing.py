# %% [markdown]
# # 05 · Subscribing
#
# **Learning goals**
#
# - write the seed's callback subscriber with core NATS, and hand its messages to a cell;
# - share work among the members of a queue group;
# - consume a stream with a JetStream push consumer and a pull consumer, and choose;
# - use `EventConsumer` to iterate decoded events or run a handler per event.
#
# > **From NATS Streaming.** `sc.Subscribe(subject, cb)` gave a callback per message;
# > `sc.QueueSubscribe(subject, group, cb)` split them among a group. Core NATS has both
# > (`nc.subscribe(subject, queue=..., cb=...)`), without storage. For stored messages,
# > JetStream **consumers** replace STAN subscriptions: a consumer is state on the server
# > (where it is in the stream, what is unacknowledged), and clients attach to it.

# %%
import asyncio

from edalab import connect, ensure_server, fresh_stream, publish_events
from edalab.factories import EventFactory

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="ord-")
await fresh_stream(js, "ORDERS", ["order.>"])
orders = [make("order.placed", {"order_id": f"o-{i}"}) for i in range(6)]
acks = await publish_events(js, [*orders, make("order.shipped", {"order_id": "o-0"})])
len(acks)

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

# %%
# NBVAL_IGNORE_OUTPUT
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
# loop (notebook 06).
#
# ## Recap
#
# - Core callbacks: hand messages to the cell through a queue; queue groups share work.
# - JetStream consumers read stored messages; push delivers, pull waits to be asked.
# - `EventConsumer.events()` iterates decoded events; `run(handler)` acks on success.
#
# ## Exercise
#
# Create a durable pull consumer named `billing` on `ORDERS` that receives only
# `order.placed`, and process all its events with `EventConsumer.run`, acknowledging
# each. Then check:

# %% tags=["solution"]
billing = await EventConsumer.create(js, "ORDERS", "billing", filter_subject="order.placed")


async def bill(event):
    assert event.type == "order.placed"


await billing.run(bill, timeout=0.5)

# %%
from edalab.course import check

await check("05", js)

# %%
await nc.close()
