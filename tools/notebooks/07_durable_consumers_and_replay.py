# %% [markdown]
# # 07 · Durable consumers and replay
#
# **About 30 minutes.** Needs 05 Subscribing (pull consumers), 06 Acks and redelivery
# (`ack` and `ack_wait`). One notebook at a time; when in doubt, Restart Kernel and Run
# All (the *Kernel* menu).
#
# **Learning goals**
#
# - tell a durable consumer from an ephemeral one, and see the server remove an
#   ephemeral one after `inactive_threshold`;
# - see a durable resume where it left off after the client disconnects, and after the
#   server restarts on the same store;
# - choose where a new consumer starts (deliver policies), next to the STAN start options
#   they replace;
# - avoid the trap: a durable's deliver policy cannot change after it was created.
#
# > **From NATS Streaming.** A STAN subscription with `DurableName("x")` remembered its
# > position across restarts of the client. A JetStream **durable consumer** is that
# > position, kept on the server under a name, whether or not any client is attached.
#
# This lesson restarts its server, so it starts one of its own (with file storage, in a
# temporary directory) instead of the shared one.

# %%
from edalab import EventFactory, connect, publish_events
from edalab.course import fresh_stream, lesson_server

srv = lesson_server("07")
nc = await connect(srv.url)
js = nc.jetstream()
make = EventFactory(prefix="usr-")
await fresh_stream(js, "USERS", ["user.>"])
acks = await publish_events(js, [make("user.created", {"user_id": f"u{i}"}) for i in range(6)])
[a.seq for a in acks]

# %% [markdown]
# ## Ephemeral and durable
#
# A consumer created without a durable name is *ephemeral*: the server names it, and
# removes it once it has been inactive for its `inactive_threshold` (for a pull
# consumer: no pull request waiting or arriving, and no delivered message still within
# its ack wait).
# Unless you set one, the server gives an ephemeral consumer 5 seconds:

# %%
from nats.js.api import ConsumerConfig

default = await js.add_consumer("USERS", ConsumerConfig())
default.config.durable_name, default.config.inactive_threshold

# %% [markdown]
# One with a half-second threshold, fetched from once and then left alone, is still
# listed right after we used it...

# %%
from edalab import wait_for

short = await js.add_consumer("USERS", ConsumerConfig(inactive_threshold=0.5))
sub = await js.pull_subscribe_bind(short.name, "USERS")
await (await sub.fetch(1, timeout=2))[0].ack_sync()


async def listed():
    return short.name in {c.name for c in await js.consumers_info("USERS")}


await listed()

# %% [markdown]
# ...and gone soon after. The cell awaits its disappearance (with a time limit) rather
# than sleeping; for a pull consumer the server adds 0.1 to 1 s of jitter to the
# threshold.


# %%
async def removed():
    return not await listed()


await sub.unsubscribe()
await wait_for(removed, timeout=10, what="the ephemeral consumer to be removed")
await listed()

# %% [markdown]
# With `durable="mailer"` the consumer exists under that name until deleted, whether
# or not a client uses it:

# %%
mailer = await js.pull_subscribe("user.>", durable="mailer", stream="USERS")
for msg in await mailer.fetch(3, timeout=2):
    await msg.ack_sync()
(await js.consumer_info("USERS", "mailer")).ack_floor.stream_seq

# %% [markdown]
# Keep `mailer` in sight for the rest of the lesson: `view` draws the stream's messages,
# where the durable has delivered up to (▼) and its ack floor (|), and redraws itself
# while the next cells run. It has a connection of its own, so it carries on when we
# close ours, and says "server unavailable, retrying" while the server is down.

# %%
from edalab.course import view

board = await view(js, "USERS", consumers=["mailer"])
board

# %% [markdown]
# ## Resume after the client goes away
#
# Close the connection entirely, connect again, bind to the same durable: it carries on
# at sequence 4.

# %%
await nc.close()
nc = await connect(srv.url)
js = nc.jetstream()
mailer = await js.pull_subscribe_bind("mailer", "USERS")
msg = (await mailer.fetch(1, timeout=2))[0]
await msg.ack_sync()
msg.metadata.sequence.stream

# %% [markdown]
# ## Resume after the server restarts
#
# The stream uses file storage (the default), so the server can be stopped and started
# again on the same store directory. The stream, its messages and the durable's
# position all survive:

# %%
await nc.close()
srv.restart()
nc = await connect(srv.url)
js = nc.jetstream()
(await js.stream_info("USERS")).state.messages

# %%
mailer = await js.pull_subscribe_bind("mailer", "USERS")
[m.metadata.sequence.stream for m in await mailer.fetch(10, timeout=1)]

# %% [markdown]
# The picture now: the ack floor the durable kept through the restart (4), and the two
# messages it has just delivered, in flight until acknowledged.

# %%
await board.snapshot()

# %% [markdown]
# Sequences 5 and 6 were never acknowledged before the restart, so they come now.
#
# ## Where a new consumer starts: deliver policies
#
# | JetStream `deliver_policy` | STAN start option | starts at |
# |---|---|---|
# | `all` (JetStream's default) | `DeliverAllAvailable()` | the first message |
# | `last` | `StartWithLastReceived()` | the last message |
# | `new` | `StartAt(pb.StartPosition_NewOnly)`, also STAN's default | messages published after creation |
# | `by_start_sequence` | `StartAtSequence(n)` | sequence n |
# | `by_start_time` | `StartAtTime(t)` / `StartAtTimeDelta(d)` | the first message at or after t |
# | `last_per_subject` | none | the last message of each subject (needs a filter) |
#
# Watch the defaults: a STAN subscription without a start option got only new
# messages; a JetStream consumer without one replays the **whole** stream.
#
# To see each policy we need a few more events, on two subjects, and a point in time
# between them:

# %%
from edalab import utc_now

await publish_events(js, [make("user.updated", {"user_id": "u1"})])
between = utc_now()
await publish_events(js, [make("user.updated", {"user_id": "u2"})])
(await js.stream_info("USERS")).state.last_seq

# %% [markdown]
# `ensure_consumer` creates a durable with the options given (or finds it unchanged).
# A small function creates one per policy and lists the sequences it delivers:

# %%
from nats.js.api import DeliverPolicy

from edalab import EventConsumer


async def sequences(name, **options):
    consumer = await EventConsumer.create(js, "USERS", name, **options)
    return [d.seq async for d in consumer.events(timeout=0.3)]


{
    "all": await sequences("p-all", deliver_policy=DeliverPolicy.ALL),
    "last": await sequences("p-last", deliver_policy=DeliverPolicy.LAST),
    "by_start_sequence 7": await sequences(
        "p-seq", deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=7
    ),
    "by_start_time": await sequences(
        "p-time", deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=between
    ),
    "last_per_subject": await sequences(
        "p-lps", deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, filter_subject="user.>"
    ),
}

# %% [markdown]
# `new` delivers nothing that existed before it; only what is published afterwards:

# %%
fresh = await EventConsumer.create(js, "USERS", "p-new", deliver_policy=DeliverPolicy.NEW)
await publish_events(js, [make("user.deleted", {"user_id": "u3"})])
[d.seq async for d in fresh.events(timeout=0.3)]

# %% [markdown]
# ## The trap: a durable's policy is fixed
#
# You ran a cell creating durable `reports` from the start of the stream. Later you edit
# the cell to start from the last message and run it again. The server refuses:

# %%
from nats.js.api import ConsumerConfig

info = await js.add_consumer("USERS", ConsumerConfig(durable_name="reports"))
info.config.deliver_policy

# %% tags=["raises-exception"]
await js.add_consumer(
    "USERS", ConsumerConfig(durable_name="reports", deliver_policy=DeliverPolicy.LAST)
)

# %% [markdown]
# `ensure_consumer` says which field differs and what you can do:

# %% tags=["raises-exception"]
from edalab import ensure_consumer

await ensure_consumer(js, "USERS", "reports", deliver_policy=DeliverPolicy.LAST)

# %% [markdown]
# Starting afresh is an explicit choice, because it throws away the durable's position:

# %%
await ensure_consumer(js, "USERS", "reports", deliver_policy=DeliverPolicy.LAST, recreate=True)

# %% [markdown]
# ## Recap
#
# - A durable consumer is a named position on the server: it survives client
#   disconnects and (with file storage) server restarts.
# - Deliver policies choose where a consumer starts; JetStream's default is `all`,
#   STAN's was new-only.
# - A durable's deliver policy is fixed at creation: change the name, or recreate on
#   purpose.
#
# ## Exercise
#
# Create a durable `audit` on `USERS` that starts at stream sequence 3
# (`by_start_sequence`), and acknowledge everything it delivers. Then check:

# %% tags=["solution"]
audit = await EventConsumer.create(
    js, "USERS", "audit", deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=3
)
async for delivery in audit.events(timeout=0.5):
    await delivery.ack(sync=True)

# %%
from edalab.course import check, hint  # stuck? hint("07") in a new cell

await check("07", js)
