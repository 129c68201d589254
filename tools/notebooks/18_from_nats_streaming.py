# %% [markdown]
# # 18 · From NATS Streaming to JetStream
#
# **About 25 minutes.** Needs 05 Subscribing (consumers and acks), 07 Durable consumers
# and replay (durables and deliver policies). One notebook at a time; when in doubt,
# Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - read the seed tutorial's two Go programs (a publisher and a subscriber on `stan`)
#   and write their JetStream equivalents in Python;
# - map every `stan` concept they use to JetStream;
# - translate STAN's acknowledgements: automatic unless `SetManualAckMode()`, in
#   nats-py too (`manual_ack=True`);
# - avoid the traps: default start position, `MaxInflight` scope, client ids, and
#   `Close` versus `Unsubscribe`.
#
# NATS Streaming (STAN) was a separate server layered on NATS; it is end-of-life. Its
# successor, JetStream, is built into `nats-server`.

# %% [markdown]
# ## The publisher
#
# The seed's publisher, reduced to its `stan` calls (our own fragment, error handling
# elided):
#
# ```go
# sc, _ := stan.Connect("my-cluster", "event-publisher", stan.NatsURL(url))
# defer sc.Close()
# payload, _ := json.Marshal(Event{ID: "123", Type: "user.created",
#     Data: `{"user_id": "user123"}`, Timestamp: time.Now()})
# _ = sc.Publish("events", payload) // blocks until the streaming server acks
# ```
#
# In JetStream, storage is explicit: a stream captures the subject. The publish is a
# request answered by a `PubAck`.

# %%
from edalab import Event, connect, ensure_server, publish_event
from edalab.course import fresh_stream

server = ensure_server()
nc = await connect(server)  # no cluster id, no client id: just server URLs
js = nc.jetstream()
await fresh_stream(js, "MIGRATION", ["events"])
event = Event.create("user.created", '{"user_id": "user123"}', id="123")
ack = await publish_event(js, event, subject="events", data_as_string=True)
ack.stream, ack.seq

# %% [markdown]
# ## The subscriber
#
# ```go
# sc, _ := stan.Connect("my-cluster", "event-subscriber", stan.NatsURL(url))
# sub, _ := sc.Subscribe("events", func(m *stan.Msg) {
#     var e Event
#     if err := json.Unmarshal(m.Data, &e); err != nil { return }  // dropped!
#     fmt.Printf("received: %+v\n", e)
# }, stan.DurableName("reader"), stan.SetManualAckMode(), stan.AckWait(30*time.Second))
# // ... m.Ack() after handling
# ```
#
# The JetStream equivalent is a durable consumer (position kept on the server) that a
# client pulls from. Pulled messages are never acknowledged for you: as under
# `SetManualAckMode()`, the code acks each one. Note the seed's `return` on a decode
# error: the message is silently lost. `EventConsumer` quarantines it with the reason
# instead.

# %%
from edalab import EventConsumer

reader = await EventConsumer.create(js, "MIGRATION", "reader", ack_wait=30)
async for delivery in reader.events(timeout=0.5):
    print("received:", delivery.event.type, delivery.event.payload())
    await delivery.ack()

# %% [markdown]
# ## Acknowledgements: automatic unless you ask for manual
#
# STAN always required an ack for every message, but its client library sent it for you
# when your handler returned, unless the subscription set `SetManualAckMode()`; then
# the handler called `m.Ack()` itself. nats-py's callback (push) subscriptions behave
# the same way: `js.subscribe(..., cb=cb)` acks each message after `cb` returns (not if
# `cb` raises), and `manual_ack=True` leaves the ack to `cb`. This callback only notes
# what it received:

# %%
import asyncio

from nats.js.api import ConsumerConfig

from edalab import wait_for
from edalab.course import consumer_table

received = asyncio.Queue()


async def note(msg):
    await received.put(msg.metadata.sequence.stream)


# %% [markdown]
# Subscribed without `manual_ack`, the message is acknowledged although `note` never
# calls `ack` (the cell awaits the ack's arrival at the server):

# %%
auto = await js.subscribe("events", cb=note, durable="auto", stream="MIGRATION")
await asyncio.wait_for(received.get(), timeout=5)


async def acked():
    return (await js.consumer_info("MIGRATION", "auto")).num_ack_pending == 0


await wait_for(acked, timeout=5, what="the automatic ack")
await consumer_table(js, "MIGRATION", "auto")

# %% [markdown]
# With `manual_ack=True` (STAN's `SetManualAckMode()`) the same callback leaves the
# message waiting for its ack; it would come back after `ack_wait`:

# %%
manual = await js.subscribe(
    "events", cb=note, durable="manual", stream="MIGRATION", manual_ack=True
)
await asyncio.wait_for(received.get(), timeout=5)
await consumer_table(js, "MIGRATION", "manual")

# %%
await auto.unsubscribe()
await manual.unsubscribe()

# %% [markdown]
# ## The map
#
# | `stan` (Go) | JetStream (Python, nats-py / edalab) | note |
# |---|---|---|
# | cluster id (`stan.Connect("my-cluster", ...)`) | none; a list of server URLs | the servers form the cluster |
# | client id (`"event-subscriber"`) | none; consumer names identify state | see the trap below |
# | `sc.Publish(subj, data)` | `await js.publish(...)` / `publish_event` | answered by a `PubAck` |
# | `sc.PublishAsync(subj, data, ackHandler)` | `js.publish_async` / `publish_events` | a window of acks in flight |
# | channel (stored automatically) | a stream capturing subjects | storage is explicit |
# | `sc.Subscribe(subj, cb)` | a consumer + `pull_subscribe` / `EventConsumer` | |
# | `stan.DurableName("x")` | a durable consumer named `x` | survives disconnects and restarts |
# | STAN's acks (always required) | `ack_policy=explicit` (the default) | every message must be acked |
# | automatic acks (STAN's default) | a callback subscription (`js.subscribe(..., cb=cb)`) | nats-py acks after `cb` returns |
# | `stan.SetManualAckMode()` | `js.subscribe(..., cb=cb, manual_ack=True)` | `cb` calls `await msg.ack()` |
# | `stan.AckWait(d)` | `ack_wait=d` | plus `nak`, `in_progress`, `term` |
# | `stan.MaxInflight(n)` | `max_ack_pending=n` | per consumer, not per subscriber |
# | `stan.DeliverAllAvailable()` | `deliver_policy=all` | JetStream's default |
# | `stan.StartWithLastReceived()` | `deliver_policy=last` | |
# | (no option: new only) | `deliver_policy=new` | STAN's default |
# | `stan.StartAtSequence(n)` | `deliver_policy=by_start_sequence`, `opt_start_seq=n` | |
# | `stan.StartAtTime(t)` / `StartAtTimeDelta(d)` | `deliver_policy=by_start_time`, `opt_start_time=t` | |
# | `sub.Close()` | `await sub.unsubscribe()` | the durable stays |
# | `sub.Unsubscribe()` (durable) | `await js.delete_consumer(stream, name)` | the position is gone |
# | `sc.QueueSubscribe(subj, group, cb)` | several clients pulling one durable | or a push durable with `queue=` |
#
# ## Trap 1: the default start position
#
# A STAN subscription without a start option received only *new* messages. A JetStream
# consumer without a deliver policy replays the *whole* stream:

# %%
from nats.js.api import DeliverPolicy

everything = await EventConsumer.create(js, "MIGRATION", "no-option")
only_new = await EventConsumer.create(
    js, "MIGRATION", "like-stan", deliver_policy=DeliverPolicy.NEW
)
(
    [d.seq async for d in everything.events(timeout=0.3)],
    [d.seq async for d in only_new.events(timeout=0.3)],
)

# %% [markdown]
# ## Trap 2: `MaxInflight` was per subscriber; `max_ack_pending` is per consumer
#
# Two workers share one durable with `max_ack_pending=2`. Between them they may hold
# two unacknowledged messages, not two each (the cell starts with a new durable, so it
# runs the same way again):

# %%
import contextlib

import nats.js.errors

with contextlib.suppress(nats.js.errors.NotFoundError):  # none yet on the first run
    await js.delete_consumer("MIGRATION", "shared")
await publish_event(js, Event.create("user.created", "{}", id="124"), subject="events")
await publish_event(js, Event.create("user.created", "{}", id="125"), subject="events")
worker_a = await EventConsumer.create(js, "MIGRATION", "shared", max_ack_pending=2)
worker_b = await EventConsumer.create(js, "MIGRATION", "shared", max_ack_pending=2)
held_by_a = await worker_a.fetch(2)
held_by_b = await worker_b.fetch(1, timeout=0.5)
len(held_by_a), len(held_by_b)

# %%
await held_by_a[0].ack(sync=True)
len(await worker_b.fetch(1, timeout=2))

# %% [markdown]
# ## Trap 3: client ids versus consumer names
#
# STAN refused a second connection with the same client id, and a durable belonged to
# one client id. In JetStream a connection has no identity of that kind; the durable
# consumer *is* the identity. Any number of connections may share a **pull** durable
# (that is how workers share the load, as above) or a **push** durable created with a
# deliver group (`queue=`, STAN's `QueueSubscribe`). A plain push durable takes one
# subscriber at a time: once the server marks it bound, nats-py refuses a second one,
# from any connection:

# %%
import nats.js.errors

from edalab import wait_for

audit = await js.subscribe("events", durable="audit", stream="MIGRATION")


async def audit_bound():
    return (await js.consumer_info("MIGRATION", "audit")).push_bound


await wait_for(audit_bound, timeout=10, what="the server to mark 'audit' bound")
other = await connect(server)
try:
    await other.jetstream().subscribe("events", durable="audit", stream="MIGRATION")
except nats.js.errors.Error as err:
    refused = str(err)
refused

# %% [markdown]
# With a deliver group, both connections bind and share the messages:

# %%
group = [
    await conn.jetstream().subscribe("events", queue="auditors", durable="auditors")
    for conn in (nc, other)
]
(await js.consumer_info("MIGRATION", "auditors")).config.deliver_group, len(group)

# %%
for sub in (audit, *group):
    await sub.unsubscribe()
await other.close()

# %% [markdown]
# Two processes that were kept apart by their client ids must now use different
# consumer names.
#
# ## Trap 4: `Close` versus `Unsubscribe`
#
# In STAN, `Unsubscribe()` on a durable subscription deleted its position, while
# `Close()` kept it. In nats-py, unsubscribing never deletes a durable (Go's legacy
# `js.Subscribe` differs: `Unsubscribe()` or `Drain()` deletes a durable that the
# subscribe call created itself). Deleting the consumer is an explicit call:

# %%
await reader.close()  # like STAN's Close(): the position stays
(await js.consumer_info("MIGRATION", "reader")).ack_floor.stream_seq

# %%
await js.delete_consumer("MIGRATION", "reader")  # like STAN's Unsubscribe(): gone
try:
    await js.consumer_info("MIGRATION", "reader")
except nats.js.errors.NotFoundError:
    print("the durable 'reader' no longer exists")

# %% [markdown]
# ## Recap
#
# - Cluster and client ids disappear; server URLs and consumer names replace them.
# - Channels become streams (explicit), subscriptions become consumers (server-side state).
# - Start options map to deliver policies; mind that the default changed from new to all.
# - `max_ack_pending` bounds a whole consumer; nats-py's `unsubscribe` keeps a durable,
#   deleting it is explicit.
# - Many connections share a pull durable or a push durable with a deliver group; a
#   plain push durable binds one subscriber.
#
# ## Exercise
#
# Translate this subscription to JetStream on the `MIGRATION` stream:
#
# ```go
# sc.Subscribe("events", handle, stan.DurableName("billing"), stan.StartAtSequence(2),
#     stan.SetManualAckMode(), stan.AckWait(10*time.Second), stan.MaxInflight(5))
# ```
#
# Use a callback subscription with `manual_ack=True` whose callback acknowledges each
# message, let it process everything the consumer delivers, and check:

# %% tags=["solution"]
handled = asyncio.Queue()


async def handle(msg):
    await msg.ack()
    await handled.put(msg.metadata.sequence.stream)


billing = await js.subscribe(
    "events",
    cb=handle,
    durable="billing",
    stream="MIGRATION",
    manual_ack=True,
    config=ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=2,
        ack_wait=10,
        max_ack_pending=5,
    ),
)
[await asyncio.wait_for(handled.get(), timeout=5) for _ in range(2)]

# %%
from edalab.course import check, hint  # stuck? hint("18") in a new cell

await check("18", js)
