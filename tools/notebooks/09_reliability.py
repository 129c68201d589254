# %% [markdown]
# # 09 · Reliability
#
# **Learning goals**
#
# - kill the server in the middle of a stream of publishes and lose nothing;
# - recover the events a crashed consumer held, and keep side effects to once;
# - understand what `sync_interval` protects against;
# - catch poison messages in a dead-letter stream and replay them after a fix.
#
# > **From NATS Streaming.** The seed tutorial promised that events are never lost, even
# > when services go down: STAN stored messages and redelivered unacknowledged ones.
# > JetStream does the same, and this notebook checks the promise with real crashes.
#
# This lesson kills its server, so it starts its own, with file storage and
# `sync_interval="always"` (explained below).

# %%
import asyncio

from edalab import connect, fresh_stream, publish_events
from edalab.factories import EventFactory
from edalab.server import lesson_server

srv = lesson_server("09", sync_interval="always")
nc = await connect(srv.url, max_reconnect_attempts=-1)
js = nc.jetstream()
make = EventFactory(prefix="pay-")
await fresh_stream(js, "PAYMENTS", ["payment.>"])

# %% [markdown]
# ## Durability: what `sync_interval` is for
#
# JetStream writes each message to its store files before acknowledging it, but by
# default asks the operating system to flush them to disk (`fsync`) only every two
# minutes. A *process* crash (even `kill -9`) loses nothing: the data is in the
# operating system's cache and reaches the disk anyway. A *machine* crash or power cut
# can lose writes that were acknowledged but not yet flushed: Jepsen's 2025 analysis of
# NATS 2.12 found exactly that. `sync_interval: always` flushes before acknowledging:
# slower, and safe against power loss. The lesson server's configuration:

# %%
print(srv.config_file.read_text())

# %% [markdown]
# ## Kill the server while publishing
#
# A publisher sends 3,000 payment events in chunks through `publish_events` with
# `retry_for`: an event whose acknowledgement does not come is sent again, with the same
# `Nats-Msg-Id`. After the first thousand are acknowledged we `kill -9` the server, then
# start it again on the same store and port. The client reconnects by itself.

# %%
events = [make("payment.captured", {"n": i}) for i in range(3000)]
acked = []
first_thousand = asyncio.Event()


async def publisher():
    for start in range(0, len(events), 250):
        acks = await publish_events(js, events[start : start + 250], timeout=2, retry_for=60)
        acked.extend(acks)
        if len(acked) >= 1000:
            first_thousand.set()


task = asyncio.create_task(publisher())
await asyncio.wait_for(first_thousand.wait(), timeout=60)
srv.kill()
await asyncio.to_thread(srv.start)
await asyncio.wait_for(task, timeout=120)

# %% [markdown]
# Now read the whole stream back and count each event id (`stored_event_ids` reads the
# stream from start to end; `loss_report` compares it with what was published):

# %%
from edalab.consuming import loss_report, stored_event_ids

loss_report(events, len(acked), await stored_event_ids(js, "PAYMENTS"))

# %% [markdown]
# Some publishes were in flight when the server died: a few were stored but their
# acknowledgement was lost, others never arrived. Retrying with the same `Nats-Msg-Id`
# covers both: the server stores the missing ones and answers `duplicate` for the others.
#
# ## A consumer crashes before acknowledging
#
# A worker fetches five events and dies (here: its connection closes) before acking.
# The server still counts them as *ack pending*; after `ack_wait` they are delivered
# again, to whichever worker asks.

# %%
from edalab import EventConsumer

await fresh_stream(js, "PAYMENTS", ["payment.>"])
await publish_events(js, [make("payment.captured", {"n": i}) for i in range(5)])
doomed = await connect(srv.url)
worker = await EventConsumer.create(doomed.jetstream(), "PAYMENTS", "ledger", ack_wait=1)
held = await worker.fetch(5)
await doomed.close()  # the crash: nothing was acknowledged
len(held)

# %%
survivor = await EventConsumer.create(js, "PAYMENTS", "ledger", ack_wait=1)
again = await survivor.fetch(5, timeout=5)
[(d.seq, d.num_delivered) for d in again]

# %% [markdown]
# ## Side effects once: idempotent handlers
#
# Redelivery means a handler can see an event twice: here the first worker may have
# charged the card before dying. Remember processed event ids (in a JetStream
# key-value bucket, shared by every instance and kept across restarts) and skip those
# seen before:

# %%
from edalab import ProcessedIds

processed = await ProcessedIds.open(js, "ledger-processed")
charged = []


async def charge(event):
    charged.append(event.id)


for delivery in again:
    await processed.once(delivery.event.id, lambda e=delivery.event: charge(e))
    await delivery.ack(sync=True)
for delivery in again[:2]:  # the same events delivered once more
    await processed.once(delivery.event.id, lambda e=delivery.event: charge(e))
len(charged), len(set(charged))

# %% [markdown]
# `delivery.ack(sync=True)` is the **double ack**: it waits for the server to confirm the
# ack. Without it, a crash right after `ack()` can lose the ack itself, and the event comes
# back. With a processed-id store *and* confirmed acks, each event's effect happens once.
#
# ## Poison messages and dead letters
#
# A message that fails every time is redelivered until `max_deliver`, then dropped by
# the consumer; a message the handler rejects is terminated. In both cases the server
# publishes an *advisory*. `DeadLetters` keeps them in a stream, so none is missed while
# no operator is watching:

# %%
from edalab import DeadLetters

dead = DeadLetters(js)
await dead.setup()
await js.purge_stream(dead.stream)
await fresh_stream(js, "PAYMENTS", ["payment.>"])
await publish_events(
    js,
    [
        make("payment.captured", {"amount_cents": 500}),
        make("payment.captured", {"amount_cents": 0}),
        make("payment.captured", {"amount_cents": 700}),
        make("payment.captured", {"amount_cents": -1}),
    ],
)
ack = await js.publish("payment.captured", b"\x00 not an event")

# %% [markdown]
# The handler has a bug: it divides by the amount. An amount of zero always fails; the
# negative amount is rejected on purpose.

# %%
from edalab import PermanentError

booked = []


async def book(event):
    amount = event.data["amount_cents"]
    if amount < 0:
        raise PermanentError(f"negative amount {amount}")
    booked.append(1000 // amount)


payments = await EventConsumer.create(js, "PAYMENTS", "payments", max_deliver=3)
await payments.run(book, timeout=1, retry_delay=0.05, double_ack=True)

# %%
letters = await dead.wait_for(3)
DeadLetters.table(letters)

# %% [markdown]
# Inspect one: the original message is found in its stream by the advisory's sequence.

# %%
detail = await dead.inspect(letters[0])
detail["subject"], detail["data"]

# %% [markdown]
# Fix the handler, replay the letter to its subject (it gets a new `Nats-Msg-Id`, so
# deduplication does not drop it), and the consumer handles it like any new event:


# %%
async def book(event):
    amount = event.data["amount_cents"]
    if amount < 0:
        raise PermanentError(f"negative amount {amount}")
    booked.append(1000 // amount if amount else 0)


poison = next(d for d in letters if d.category == "max deliveries")
await dead.replay(poison)
await payments.run(book, timeout=0.5, double_ack=True)
[d.category for d in await dead.letters()]

# %% [markdown]
# ## Recap
#
# - Publishing with retries and a stable `Nats-Msg-Id` survives a server crash with no
#   loss and no duplicates.
# - Unacknowledged events return after `ack_wait`; idempotent handlers plus the double
#   ack keep side effects to once.
# - `sync_interval: always` protects acknowledged writes from power loss, not just
#   process crashes.
# - Dead letters are captured from the server's advisories, inspected, replayed after a
#   fix, or discarded.
#
# ## Exercise
#
# Two letters remain: the undecodable message and the negative amount. Discard the
# undecodable one (it cannot be fixed), replay the negative amount with corrected data
# (`amount_cents` 100, using `replay(letter, data=...)`), and process it with `payments`.
# Then check:

# %% tags=["solution"]
from edalab import Event

for letter in await dead.letters(stream="PAYMENTS"):
    if letter.category == "undecodable":
        await dead.discard(letter)
    else:
        original = Event.from_json((await dead.original(letter)).data)
        fixed = original.model_copy(update={"data": {"amount_cents": 100}})
        await dead.replay(letter, data=fixed.to_json())
await payments.run(book, timeout=0.5, double_ack=True)

# %%
from edalab.course import check

await check("09", js)

# %%
await nc.close()
srv.stop()
