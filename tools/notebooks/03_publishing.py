# %% [markdown]
# # 03 · Publishing
#
# **About 30 minutes.** Needs 01 Event structure (the `Event` envelope), 02 Subject
# naming (subjects and wildcards). One notebook at a time; when in doubt, Restart Kernel
# and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - tell core NATS publish (fire and forget) from JetStream publish (stored, acknowledged);
# - read a `PubAck` and its stream sequence;
# - set up a stream so that re-running the cell is safe and changes are never ignored;
# - publish many events quickly with asynchronous publishes, and see that the number
#   waiting for an ack is bounded (`publish_async_max_pending`), the wait for each ack
#   is not;
# - let the server drop duplicates with `Nats-Msg-Id`;
# - recognise the error when no stream captures a subject.
#
# > **From NATS Streaming.** `sc.Publish(subject, data)` blocked until the streaming
# > server acknowledged the message; `sc.PublishAsync(subject, data, ackHandler)` did not.
# > JetStream's `js.publish` and `js.publish_async` are their successors. STAN stored
# > every channel automatically; in JetStream a **stream** says which subjects to store.

# %%
from edalab import EventFactory, connect, ensure_server

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="ord-")  # ids ord-0001, ord-0002, ... and a fixed clock

# %% [markdown]
# ## Core NATS: fire and forget
#
# `nc.publish` hands the bytes to the server and returns `None`. With nobody
# subscribed, the message is simply gone, and the publisher cannot tell.

# %%
event = make("order.placed", {"order_id": "o-1", "amount_cents": 1250})
await nc.publish("order.placed", event.to_json())

# %% [markdown]
# ## JetStream: a stream stores what it captures
#
# A stream is a named log that captures subjects, named with the patterns of notebook
# 02: `order.>` is every subject under `order`. We start each run from a clean
# slate (`fresh_stream` deletes the stream if it exists, then creates it), so sequence
# numbers below are the same every time this notebook runs.

# %%
from edalab.course import fresh_stream

await fresh_stream(js, "ORDERS", ["order.>"])

# %% [markdown]
# `js.publish` is a request: the server stores the message and answers with a `PubAck`
# naming the stream and the message's **sequence** in it.

# %%
ack = await js.publish("order.placed", event.to_json())
ack.stream, ack.seq

# %% [markdown]
# Keep a picture of the stream in sight while you publish: `view` draws its messages by
# sequence number and redraws itself while the next cells run (at most four times a
# second, only when something changed).

# %%
from edalab.course import view

board = await view(js, "ORDERS")
board

# %% [markdown]
# ## Re-running stream setup
#
# `js.add_stream` with the *same* configuration succeeds again (nothing changes), but
# with a *different* one it fails, so a notebook cell that you edit and re-run breaks:

# %%
info = await js.add_stream(name="ORDERS", subjects=["order.>"])
info.state.messages

# %% tags=["raises-exception"]
await js.add_stream(name="ORDERS", subjects=["order.>"], max_msgs=10_000)

# %% [markdown]
# `ensure_stream` is idempotent and reports what it did: `created`, `unchanged`, or
# `updated` with each changed field (old → new)...

# %%
from edalab import ensure_stream

await ensure_stream(js, "ORDERS", ["order.>"])

# %%
await ensure_stream(js, "ORDERS", ["order.>"], max_msgs=10_000)

# %% [markdown]
# ...and for a field the server cannot change in place (the storage type, for
# instance), it raises `StreamConfigConflict` naming it, instead of ignoring it:

# %% tags=["raises-exception"]
from nats.js.api import StorageType

await ensure_stream(js, "ORDERS", ["order.>"], storage=StorageType.MEMORY)

# %% [markdown]
# ## `publish_event`: the event id becomes `Nats-Msg-Id`
#
# The helper publishes on the event's type, sets the `Nats-Msg-Id` header to the event's
# id, and turns failures into edalab errors.

# %%
from edalab import publish_event

second = make("order.placed", {"order_id": "o-2", "amount_cents": 990})
ack = await publish_event(js, second)
ack.seq, ack.duplicate

# %% [markdown]
# ## Deduplication
#
# A publisher that timed out does not know whether the server stored its message, so
# it sends it again. With the same `Nats-Msg-Id`, within the stream's duplicate window
# (two minutes unless configured), the server does not store it again: it answers
# `duplicate=True` with the sequence of the copy it already has...

# %%
again = await publish_event(js, second)
again.seq, again.duplicate

# %% [markdown]
# ...and the stream still holds two messages, the second carrying that id:

# %%
stored = await js.get_msg("ORDERS", again.seq)
(await js.stream_info("ORDERS")).state.messages, stored.headers["Nats-Msg-Id"]

# %% [markdown]
# On the picture (`board.snapshot()` keeps this moment): three publishes, two messages;
# the duplicate took no sequence number.

# %%
await board.snapshot()

# %%
(await js.stream_info("ORDERS")).config.duplicate_window

# %% [markdown]
# ## Publishing many events
#
# Awaiting each `PubAck` in turn costs one round trip per event. `js.publish_async`
# sends without waiting and returns a future; awaiting all the futures at the end still
# proves every event was stored:

# %%
futures = [
    await js.publish_async("order.placed", make("order.placed", {"n": i}).to_json())
    for i in range(100)
]
await js.publish_async_completed()
results = [f.result() for f in futures]
results[0].seq, results[-1].seq

# %% [markdown]
# Those 100 publishes were never unbounded: nats-py lets at most
# `publish_async_max_pending` publishes (4000 by default) wait for their `PubAck`. The
# next `publish_async` waits until an ack frees a place, just as STAN's `PublishAsync`
# blocked at `MaxPubAcksInflight` (16384 by default). The limit belongs to the
# JetStream context; with 16, the number waiting never goes above 16 while 200 are sent:

# %%
js16 = nc.jetstream(publish_async_max_pending=16)
waiting = []
for i in range(200):
    await js16.publish_async("order.placed", make("order.placed", {"n": i}).to_json())
    waiting.append(js16.publish_async_pending())
await js16.publish_async_completed()
max(waiting), js16.publish_async_pending()

# %% [markdown]
# When acks stop coming, the publisher stops too. Here nobody answers: the subject is
# an inbox that a plain subscription listens on, so no stream stores it and no `PubAck`
# comes back. With a limit of 3, the fourth publish waits; `wait_stall` bounds that
# wait, and nats-py raises `TooManyStalledMsgsError`:

# %%
silent = nc.new_inbox()
listener = await nc.subscribe(silent)
js3 = nc.jetstream(publish_async_max_pending=3)
stalled = [await js3.publish_async(silent, b"{}") for _ in range(3)]
js3.publish_async_pending()

# %% tags=["raises-exception"]
await js3.publish_async(silent, b"{}", wait_stall=0.5)

# %% [markdown]
# `wait_stall` bounds only the wait for a free place. The futures themselves have no
# timeout: a `PubAck` that never comes (lost with a dropped connection, or never sent)
# leaves its future pending and its place taken until *you* give up, and
# `publish_async_completed()` waits for ever. Bound that wait yourself:

# %%
import asyncio

try:
    await asyncio.wait_for(js3.publish_async_completed(), timeout=0.5)
except TimeoutError:
    gave_up = True
gave_up, [future.done() for future in stalled], js3.publish_async_pending()

# %% [markdown]
# Give up on the three (cancelling a future frees its place) and stop listening:

# %%
for future in stalled:
    future.cancel()
await asyncio.gather(*stalled, return_exceptions=True)
await listener.unsubscribe()
js3.publish_async_pending()

# %% [markdown]
# ## `publish_events`: a window, every ack checked
#
# `publish_events` bounds the same way with its own **window** (at most `window`
# publishes unacknowledged at once), returns every `PubAck` in order, and raises naming
# the first event that failed, instead of leaving you a list of futures to inspect:

# %%
from edalab import publish_events

shipped = await publish_events(js, [make("order.shipped", {"n": i}) for i in range(500)], window=64)
len(shipped), shipped[-1].seq

# %% [markdown]
# Notebook 15 measures how much faster this is than a loop of awaited publishes.
#
# ## A subject no stream captures
#
# With core NATS this would vanish silently. A JetStream publish has nobody to answer it,
# and nats-py raises `NoStreamResponseError`, which does not say which subject:

# %% tags=["raises-exception"]
await js.publish("refund.requested", b"{}", timeout=1)

# %% [markdown]
# The helper names the subject and the fix:

# %% tags=["raises-exception"]
await publish_event(js, make("refund.requested", {"order_id": "o-1"}), timeout=1)

# %% [markdown]
# ## Recap
#
# - `nc.publish`: fire and forget. `js.publish`: stored, answered by a `PubAck` (stream, seq).
# - `ensure_stream`: re-runnable setup that reports changes and refuses silent conflicts.
# - `Nats-Msg-Id` = event id makes retries safe: duplicates come back with `duplicate=True`.
# - `js.publish_async` is bounded by `publish_async_max_pending` (4000 unless you set it
#   on `nc.jetstream(...)`), but its futures never time out: bound
#   `publish_async_completed()` with `asyncio.wait_for`. `publish_events` adds a window
#   and confirms each event.
#
# ## Exercise
#
# Recreate the stream `ORDERS` on `order.>` with a duplicate window of **5 minutes**
# (`duplicate_window=300`, in seconds). Publish three `order.placed` events with
# different ids, then publish the first one again, as a publisher that timed out would.
# Keep the four `PubAck`s in a list `acks`: the check reads them, then looks in the
# stream for what the server kept.

# %%
acks = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
orders = [make("order.placed", {"order_id": f"x-{i}"}) for i in range(3)]
await fresh_stream(js, "ORDERS", ["order.>"], duplicate_window=300)
acks = await publish_events(js, orders)
acks.append(await publish_event(js, orders[0]))
[(ack.seq, ack.duplicate) for ack in acks]

# %%
from edalab.course import check, hint  # stuck? hint("03") in a new cell

await check("03", js, acks)
