# %% [markdown]
# # 06 · Acks and redelivery
#
# **About 40 minutes.** Needs 05 Subscribing (pull consumers and `EventConsumer`). One
# notebook at a time; when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - acknowledge explicitly, and see an unacknowledged message come back after `ack_wait`;
# - `nak` (at once or with a delay), `in_progress` for long work, `term` to give up;
# - bound retries with `max_deliver`; space the redeliveries of unanswered messages with
#   `backoff` (a `nak` does not follow it), and measure when messages come back;
# - read a consumer's state: pending, ack pending, redelivered;
# - let `EventConsumer.run` choose ack, nak or term from what the handler did, or leave a
#   failed message to its consumer's `backoff`.
#
# > **From NATS Streaming.** STAN had `SetManualAckMode()`, `AckWait(d)` and `msg.Ack()`,
# > and redelivered whatever was not acknowledged in time. JetStream keeps that
# > (`ack_wait`, `msg.ack()`) and adds what STAN lacked: `nak` (redeliver now or after a
# > delay), `in_progress` (more time), `term` (never redeliver), `max_deliver` and
# > `backoff`. STAN's `MaxInflight` becomes `max_ack_pending`, counted per consumer.

# %%
import asyncio

from nats.js.api import ConsumerConfig

from edalab import EventFactory, connect, ensure_server, publish_events
from edalab.course import consumer_table, fresh_stream
from edalab.course.charts.redelivery import DeliveryLog, timeline

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
# fetch one message and do nothing with it. A `DeliveryLog` notes when each delivery
# reaches us, so we can compare it with what the server promised:

# %%
waits = DeliveryLog()
sub = await js.pull_subscribe(
    "task.>", durable="manual", stream="TASKS", config=ConsumerConfig(ack_wait=1)
)
first = waits.record((await sub.fetch(1, timeout=2))[0])
first.metadata.sequence.stream, first.metadata.num_delivered

# %% [markdown]
# The consumer's state, as a live picture of the stream: `view` draws the stream's messages
# (sequence numbers), each consumer's delivered position (▼) and ack floor (|), and the
# messages *in flight* between them: delivered, not yet acknowledged. It redraws itself
# while the next cells run (at most four times a second, only when something changed),
# so keep it in sight as you run them. Here: one message in flight, two not yet delivered.

# %%
from edalab.course import view

board = await view(js, "TASKS")
board

# %% [markdown]
# We handle the other two properly...

# %%
for msg in await sub.fetch(2, timeout=2):
    await msg.ack()

# %% [markdown]
# ...and ask for one more message. Only the first one is left: it arrives once its
# `ack_wait` has run out, marked as a second delivery. The fetch awaits it (no sleep).

# %%
again = waits.record((await sub.fetch(1, timeout=5))[0])
again.metadata.sequence.stream, again.metadata.num_delivered

# %% [markdown]
# When did it come back? The log measured the gap between the two deliveries (the
# seconds change from run to run; *on time* says whether the gap is the expected one):

# %%
waits.table(expected=[1])

# %% [markdown]
# `msg.ack()` only sends the ack. `ack_sync()` also waits until the server confirms it
# (the *double ack*), so the picture below is sure to include it. `board.snapshot()`
# looks now and keeps this moment as a still picture: the ack floor has caught up with
# the delivered position and nothing is in flight. `num_redelivered` is back to 0 (it
# counts unacknowledged messages only), but the deliveries, 4 for three messages, still
# say that one went out twice.

# %%
await again.ack_sync()
await board.snapshot()

# %% [markdown]
# ## `nak`: redeliver now, or after a delay
#
# A handler that knows it cannot succeed *right now* (a database is down) says so with
# `nak`. A plain `nak` puts the message back at once; the next fetch gets it again:

# %%
await publish_events(js, [make("task.created", {"n": 3})])
at_once = DeliveryLog()
msg = at_once.record((await sub.fetch(1, timeout=2))[0])
await msg.nak()
retry = at_once.record((await sub.fetch(1, timeout=5))[0])
await retry.ack()
at_once.table(expected=[0])

# %% [markdown]
# `nak(delay=...)` asks the server to wait that long before redelivering:

# %%
await publish_events(js, [make("task.created", {"n": 4})])
delayed = DeliveryLog()
msg = delayed.record((await sub.fetch(1, timeout=2))[0])
await msg.nak(delay=0.5)
retry = delayed.record((await sub.fetch(1, timeout=5))[0])
await retry.ack()
delayed.table(expected=[0.5])

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
# `TimeoutError`, when a fetch gets nothing.) The server announces both endings on
# advisory subjects, which the view listens to: `picky`'s `term`
# (`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.TASKS.picky`) and the poison message that
# reached `max_deliver` (`...CONSUMER.MAX_DELIVERIES.TASKS.bounded`). The server sends
# the latter when it would deliver a fourth time, here for the fetch that came back empty.

# %%
await board.snapshot()

# %% [markdown]
# Notebook 11 catches those advisories into a dead-letter stream.
#
# ## `backoff`: growing delays when the ack timer runs out
#
# `backoff` replaces the single `ack_wait` with one delay per delivery: the first
# step for the first delivery, the second for the second, and the last step for every
# delivery after that. It applies when a message is **not answered** in time. Here the
# message is never acknowledged, so it comes back after 0.2 s, then 0.6 s, then 1.2 s:

# %%
backoff = await js.pull_subscribe(
    "task.poison",
    durable="backoff",
    stream="TASKS",
    config=ConsumerConfig(max_deliver=4, backoff=[0.2, 0.6, 1.2]),
)
unanswered = DeliveryLog()
for _ in range(4):
    unanswered.record((await backoff.fetch(1, timeout=5))[0])
unanswered.table(expected=[0.2, 0.6, 1.2])

# %% [markdown]
# The server took the first step as the consumer's `ack_wait`:

# %%
(await js.consumer_info("TASKS", "backoff")).config.ack_wait

# %% [markdown]
# ## A `nak` does not follow the backoff
#
# `backoff` is the server's answer to *silence*. A `nak` is an answer: the same kind of
# consumer, but the client naks each delivery, and the message is back at once, every
# time:

# %%
nakked = await js.pull_subscribe(
    "task.poison",
    durable="backoff-nak",
    stream="TASKS",
    config=ConsumerConfig(max_deliver=4, backoff=[0.2, 0.6, 1.2]),
)
naks = DeliveryLog()
for _ in range(4):
    msg = naks.record((await nakked.fetch(1, timeout=5))[0])
    await msg.nak()
naks.table(expected=[0])

# %% [markdown]
# A `nak` with a delay on a consumer that has a backoff mixes the two: the server counts
# the delay from where the ack timer would have started, so the *n*-th redelivery comes
# after `delay + backoff[n-1] - backoff[0]`: 0.3 s, then 0.7 s, then 1.3 s. Use one
# mechanism per consumer.

# %%
mixed = await js.pull_subscribe(
    "task.poison",
    durable="backoff-nak-delay",
    stream="TASKS",
    config=ConsumerConfig(max_deliver=4, backoff=[0.2, 0.6, 1.2]),
)
nak_delays = DeliveryLog()
for _ in range(4):
    msg = nak_delays.record((await mixed.fetch(1, timeout=5))[0])
    await msg.nak(delay=0.3)
nak_delays.table(expected=[0.3, 0.7, 1.3])

# %% [markdown]
# Side by side, from the deliveries this notebook just received (rings: when the
# server should redeliver; dots: when the message arrived):

# %%
timeline(
    {
        "no ack, ack_wait=1": waits.offsets(),
        "nak()": at_once.offsets(),
        "nak(delay=0.5)": delayed.offsets(),
        "no ack, backoff": unanswered.offsets(),
        "nak(), backoff": naks.offsets(),
        "nak(delay=0.3), backoff": nak_delays.offsets(),
    },
    expected={
        "no ack, ack_wait=1": [0, 1],
        "nak()": [0, 0],
        "nak(delay=0.5)": [0, 0.5],
        "no ack, backoff": [0, 0.2, 0.8, 2.0],
        "nak(), backoff": [0, 0, 0, 0],
        "nak(delay=0.3), backoff": [0, 0.3, 1.0, 2.3],
    },
)

# %% [markdown]
# ## The helper: ack, nak or term from what the handler did
#
# `EventConsumer.run` calls your handler for each event and then:
#
# | the handler | the helper |
# |---|---|
# | returns | `ack` |
# | raises `TransientError(reason, delay=...)` | `nak` with that delay |
# | raises `TransientError(reason)` | `nak` after `retry_delay`, or nothing with `on_transient="let_expire"` |
# | raises `PermanentError(reason)` | `term` with the reason; recorded in `quarantined` |
# | raises anything else | like `TransientError(reason)`, and recorded in the report |
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
# ## The helper and `backoff`
#
# By default a transient failure is nak'ed with a delay of `retry_delay` (one second), and on a
# consumer with a `backoff` such a `nak` mixes the two as shown above: the *n*-th retry
# comes after `retry_delay + backoff[n-1] - backoff[0]`.
# With `on_transient="let_expire"` the helper sends nothing: the message comes back when
# its ack timer runs out, on the backoff's schedule. The `DeliveryLog` listens as the
# run's `observer`. Give `timeout` more than the longest step, or the run stops before
# the message is back.

# %%
await fresh_stream(js, "TASKS", ["task.>"])
await publish_events(js, [make("task.created", {"n": 0})])
patient = await EventConsumer.create(js, "TASKS", "patient", max_deliver=4, backoff=[0.2, 0.6])


async def busy_twice(event, delivery):
    if delivery.num_delivered <= 2:
        raise TransientError("warehouse busy")


helped = DeliveryLog()
await patient.run(busy_twice, timeout=2, on_transient="let_expire", observer=helped.observe)

# %%
helped.table(expected=[0.2, 0.6])

# %% [markdown]
# ## Recap
#
# - No ack within `ack_wait` means redelivery; `num_delivered` counts the attempts.
# - `nak()` redelivers at once, `nak(delay)` after the delay; `in_progress` buys time,
#   `term` gives up for good.
# - `max_deliver` bounds retries. `backoff` spaces the redeliveries of messages left
#   unanswered; a plain `nak()` ignores it, and `nak(delay)` on a backoff consumer
#   mixes the two.
# - `EventConsumer.run` acks only after success and records every message it gives up
#   on; `on_transient="let_expire"` lets the consumer's `backoff` time the retries.
#
# ## Exercise
#
# Create a consumer `careful` on `TASKS` with `max_deliver=4` and a `backoff` of three
# delays (each at least 0.1 s). Run a handler through `EventConsumer.run` that fails
# with `TransientError` on each event's first three deliveries and succeeds on the
# fourth, so that every redelivery follows the backoff. Record the run in a
# `DeliveryLog` named `log` (`observer=log.observe`): the check compares the times you
# observed with your backoff, and the deliveries with the server's count.

# %%
log = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
careful = await EventConsumer.create(js, "TASKS", "careful", max_deliver=4, backoff=[0.2, 0.4, 0.8])


async def flaky(event, delivery):
    if delivery.num_delivered < 4:
        raise TransientError("not yet")


log = DeliveryLog()
await careful.run(flaky, timeout=2, on_transient="let_expire", observer=log.observe)

# %%
from edalab.course import check, hint  # stuck? hint("06") in a new cell

await check("06", js, log)
