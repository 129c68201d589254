# %% [markdown]
# # 06 · Acks and redelivery
#
# **Learning goals**
#
# - acknowledge explicitly, and see an unacknowledged message come back after `ack_wait`;
# - `nak` (with a delay), `in_progress` for long work, `term` to give up on a message;
# - bound retries with `max_deliver`, space them with `backoff`;
# - read a consumer's state: pending, ack pending, redelivered;
# - let `EventConsumer.run` choose ack, nak or term from what the handler did.
#
# > **From NATS Streaming.** STAN had `SetManualAckMode()`, `AckWait(d)` and `msg.Ack()`,
# > and redelivered whatever was not acknowledged in time. JetStream keeps that
# > (`ack_wait`, `msg.ack()`) and adds what STAN lacked: `nak` (redeliver now or after a
# > delay), `in_progress` (more time), `term` (never redeliver), `max_deliver` and
# > `backoff`. STAN's `MaxInflight` becomes `max_ack_pending`, counted per consumer.

# %%
import asyncio
import itertools

from nats.js.api import ConsumerConfig

from edalab import connect, ensure_server, fresh_stream, publish_events
from edalab.factories import EventFactory
from edalab.streams import consumer_table

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="task-")
await fresh_stream(js, "TASKS", ["task.>"])
acks = await publish_events(js, [make("task.created", {"n": i}) for i in range(3)])
[a.seq for a in acks]

# %% [markdown]
# ## Unacknowledged messages come back
#
# A consumer with `ack_wait=1` gives each message one second to be acknowledged. We
# fetch one message and do nothing with it:

# %%
sub = await js.pull_subscribe(
    "task.>", durable="manual", stream="TASKS", config=ConsumerConfig(ack_wait=1)
)
first = (await sub.fetch(1, timeout=2))[0]
first.metadata.sequence.stream, first.metadata.num_delivered

# %% [markdown]
# The consumer's state: one message waiting for its ack, two not yet delivered.

# %%
await consumer_table(js, "TASKS", "manual")

# %% [markdown]
# We handle the other two properly...

# %%
for msg in await sub.fetch(2, timeout=2):
    await msg.ack()

# %% [markdown]
# ...and ask for one more message. Only the first one is left: it arrives once its
# `ack_wait` has run out, marked as a second delivery. The fetch awaits it (no sleep).

# %%
again = (await sub.fetch(1, timeout=5))[0]
again.metadata.sequence.stream, again.metadata.num_delivered

# %% [markdown]
# `msg.ack()` only sends the ack. `ack_sync()` also waits until the server confirms it
# (the *double ack*), so the table below is sure to include it:

# %%
await again.ack_sync()
await consumer_table(js, "TASKS", "manual")

# %% [markdown]
# ## `nak`: redeliver, now or after a delay
#
# A handler that knows it cannot succeed *right now* (a database is down) says so with
# `nak`, optionally asking the server to wait before redelivering:

# %%
acks = await publish_events(js, [make("task.created", {"n": 3})])
msg = (await sub.fetch(1, timeout=2))[0]
await msg.nak(delay=0.5)
retry = (await sub.fetch(1, timeout=5))[0]
await retry.ack()
retry.metadata.sequence.stream, retry.metadata.num_delivered

# %% [markdown]
# ## `in_progress`: more time for long work
#
# Work that takes longer than `ack_wait` would be redelivered to someone else while
# still running. `in_progress` resets the timer. Here the "work" (simulated with
# `asyncio.sleep`) takes 1.5 s with `ack_wait=1`, telling the server every 0.4 s:

# %%
slow = await js.pull_subscribe(
    "task.>", durable="slow", stream="TASKS", config=ConsumerConfig(ack_wait=1)
)
msg = (await slow.fetch(1, timeout=2))[0]
for _ in range(4):
    await asyncio.sleep(0.4)  # a slice of the long work
    await msg.in_progress()
await msg.ack_sync()
info = await js.consumer_info("TASKS", "slow")
info.num_redelivered, info.ack_floor.stream_seq

# %% [markdown]
# ## `term`: never redeliver this one
#
# For a message that can never succeed (it is malformed, or refers to something that
# does not exist), `term` stops redelivery. The consumer moves on:

# %%
picky = await js.pull_subscribe("task.>", durable="picky", stream="TASKS")
bad = (await picky.fetch(1, timeout=2))[0]
await bad.term()
rest = await picky.fetch(10, timeout=1)
for m in rest:
    await m.ack()
bad.metadata.sequence.stream, [m.metadata.sequence.stream for m in rest]

# %% [markdown]
# ## `max_deliver`: a bound on retries
#
# A *poison* message fails every time. Without a bound it would be redelivered forever.
# With `max_deliver=3` the server stops after the third delivery:

# %%
await publish_events(js, [make("task.poison", {"n": 99})])
poison = await js.pull_subscribe(
    "task.poison", durable="bounded", stream="TASKS", config=ConsumerConfig(max_deliver=3)
)
deliveries = []
while True:
    try:
        msg = (await poison.fetch(1, timeout=1))[0]
    except TimeoutError:
        break
    deliveries.append(msg.metadata.num_delivered)
    await msg.nak()
deliveries

# %% [markdown]
# (nats-py raises its own `nats.errors.TimeoutError`, a subclass of the built-in
# `TimeoutError`, when a fetch gets nothing.) Notebook 09 catches the server's
# advisory for such messages into a dead-letter stream.
#
# ## `backoff`: growing delays between redeliveries
#
# `backoff` replaces the single `ack_wait` with one delay per redelivery. Here the
# message is never acknowledged, so it comes back after 0.2 s, then 0.6 s:

# %%
backoff = await js.pull_subscribe(
    "task.poison",
    durable="backoff",
    stream="TASKS",
    config=ConsumerConfig(max_deliver=3, backoff=[0.2, 0.6]),
)
loop = asyncio.get_running_loop()
times, counts = [], []
for _ in range(3):
    msg = (await backoff.fetch(1, timeout=5))[0]
    times.append(loop.time())
    counts.append(msg.metadata.num_delivered)
counts

# %%
# NBVAL_IGNORE_OUTPUT
[round(b - a, 1) for a, b in itertools.pairwise(times)]

# %% [markdown]
# ## The helper: ack, nak or term from what the handler did
#
# `EventConsumer.run` calls your handler for each event and then:
#
# | the handler | the helper |
# |---|---|
# | returns | `ack` |
# | raises `TransientError(reason, delay=...)` | `nak` with that delay |
# | raises `PermanentError(reason)` | `term` with the reason; recorded in `quarantined` |
# | raises anything else | `nak` after `retry_delay` (bounded by `max_deliver`), recorded |
#
# A message that is not a valid event never reaches the handler: it is terminated and
# recorded with the reason, so nothing is silently dropped. `double_ack=True` makes each
# ack wait for the server's confirmation (slower, but the state is exact when `run` returns).

# %%
from edalab import EventConsumer, PermanentError, TransientError

await fresh_stream(js, "TASKS", ["task.>"])
await publish_events(js, [make("task.created", {"n": i}) for i in range(4)])
await js.publish("task.created", b"\x00 this is not an event")
tries = {}


async def handle(event, delivery):
    n = event.data["n"]
    tries[n] = tries.get(n, 0) + 1
    if n == 1 and delivery.num_delivered == 1:
        raise TransientError("warehouse busy", delay=0.2)
    if n == 2:
        raise PermanentError("unknown product")


worker = await EventConsumer.create(js, "TASKS", "worker", max_deliver=5)
await worker.run(handle, timeout=1, double_ack=True)

# %%
tries

# %%
worker.quarantined

# %%
await consumer_table(js, "TASKS", "worker")

# %% [markdown]
# ## Recap
#
# - No ack within `ack_wait` means redelivery; `num_delivered` counts the attempts.
# - `nak(delay)` retries later, `in_progress` buys time, `term` gives up for good.
# - `max_deliver` bounds retries, `backoff` spaces them.
# - `EventConsumer.run` acks only after success and records every message it gives up on.
#
# ## Exercise
#
# Create a consumer `careful` on `TASKS` with `max_deliver=4` and a `backoff` of three
# delays. Run a handler through `EventConsumer.run` that fails with `TransientError` on
# each event's first delivery and succeeds on the next. Then check:

# %% tags=["solution"]
careful = await EventConsumer.create(js, "TASKS", "careful", max_deliver=4, backoff=[0.1, 0.2, 0.4])


async def flaky(event, delivery):
    if delivery.num_delivered == 1:
        raise TransientError("first try always fails", delay=0.1)


await careful.run(flaky, timeout=1)

# %%
from edalab.course import check

await check("06", js)

# %%
await nc.close()
