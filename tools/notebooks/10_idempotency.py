# %% [markdown]
# # 10 · Idempotency
#
# **About 35 minutes.** Needs 03 Publishing (`Nats-Msg-Id`), 06 Acks and redelivery
# (`ack_wait` and redelivery). One notebook at a time; when in doubt, Restart Kernel and
# Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - see at-least-once delivery: a message not acknowledged in time comes back;
# - see why "check a processed-id store, do the effect, mark the id" still repeats the
#   effect: when the process dies between effect and mark, and when two workers hold
#   the same message;
# - make the effect and its mark **one atomic step** with a conditional write
#   (`Nats-Expected-Last-Subject-Sequence`, key-value `create`);
# - use `ProcessedIds.record`, and know what `ProcessedIds.once` does not promise.
#
# > **From NATS Streaming.** STAN and JetStream both deliver *at least once*: neither
# > can know whether a handler that did not acknowledge had already done its work.
# > Making a repeated event harmless is the handler's job.

# %%
import asyncio
import contextlib

from edalab import EventConsumer, EventFactory, connect, ensure_server, publish_events
from edalab.course import fresh_stream

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="pay-")
await fresh_stream(js, "PAYMENTS", ["payment.>"])

# %% [markdown]
# ## At least once
#
# The `ledger` worker charges a card for each `payment.captured`. It gets one second
# to acknowledge each message (`ack_wait=1`). It fetches one and dies before it acks
# (here: it simply never acks):

# %%
await publish_events(js, [make("payment.captured", {"amount_cents": 500})])
worker = await EventConsumer.create(
    js, "PAYMENTS", "ledger", filter_subject="payment.captured", ack_wait=1
)
[held] = await worker.fetch(1)
held.seq, held.num_delivered

# %% [markdown]
# After `ack_wait` the server delivers the same message again, to whichever worker asks:

# %%
[again] = await worker.fetch(1, timeout=5)
again.seq, again.num_delivered

# %%
await again.ack(sync=True)

# %% [markdown]
# ## Check, effect, mark: the crash window
#
# The usual fix remembers processed event ids in a key-value bucket: skip an id seen
# before, else do the effect and mark the id. Written out:

# %%
from edalab import ProcessedIds

processed = await ProcessedIds.open(js, "ledger-processed", fresh=True)
charged = []  # the effect: one entry per charge of a card


class Crash(Exception):
    """The process dies here."""


async def charge_naive(event, die_before_mark=False):
    if await processed.seen(event.id):
        return
    charged.append(event.id)  # the card is charged
    if die_before_mark:
        raise Crash
    await processed.mark(event.id)


# %% [markdown]
# The card is charged, then the process dies before the mark (and before the ack):

# %%
await publish_events(js, [make("payment.captured", {"amount_cents": 700})])
[delivery] = await worker.fetch(1)
with contextlib.suppress(Crash):
    await charge_naive(delivery.event, die_before_mark=True)
charged

# %% [markdown]
# The message comes back after `ack_wait`; the store has no mark, so the card is
# charged a second time:

# %%
[delivery] = await worker.fetch(1, timeout=5)
await charge_naive(delivery.event)
await delivery.ack(sync=True)
delivery.num_delivered, charged

# %% [markdown]
# ## Two workers, one message
#
# Worker A fetches a message, checks the store (not processed yet) and is slow. Its
# `ack_wait` runs out, so the server hands the message to worker B:

# %%
charged.clear()
worker_b = await EventConsumer.create(
    js, "PAYMENTS", "ledger", filter_subject="payment.captured", ack_wait=1
)
await publish_events(js, [make("payment.captured", {"amount_cents": 900})])
[at_a] = await worker.fetch(1)
await processed.seen(at_a.event.id)

# %%
[at_b] = await worker_b.fetch(1, timeout=5)
at_b.seq == at_a.seq, at_b.num_delivered, await processed.seen(at_b.event.id)

# %% [markdown]
# Both passed the check; both go on to charge and mark:

# %%
for delivery in (at_a, at_b):
    charged.append(delivery.event.id)
    await processed.mark(delivery.event.id)
await at_b.ack(sync=True)
charged

# %% [markdown]
# A processed-id store checked before the effect and marked after it makes repeats
# rarer, not impossible. The gap is between two steps; close it by making the effect
# and its mark **one** step that the server performs atomically.
#
# ## One atomic step: a conditional write
#
# JetStream accepts a publish only if a condition holds. With the header
# `Nats-Expected-Last-Subject-Sequence: 0` the condition is "no message on this subject
# yet": the first publish is stored, a second one is refused.

# %%
import nats.js.errors

only_once = {"Nats-Expected-Last-Subject-Sequence": "0"}
await js.purge_stream("PAYMENTS", subject="payment.charged.pay-0003")  # a re-run starts clean
first = await js.publish("payment.charged.pay-0003", b"900", headers=only_once)
first.seq

# %%
try:
    await js.publish("payment.charged.pay-0003", b"900", headers=only_once)
except nats.js.errors.APIError as err:
    refused = err
refused.err_code, refused.description

# %% [markdown]
# "Once" lasts as long as the stream keeps that message. The server checks the header
# against what it **currently stores** on the subject (its last message there), so `0`
# means "no message on this subject is stored now". When the message goes (a purge, a
# message delete, `max_age`, a stream-wide `max_msgs` or `max_bytes`, the TTL of a
# key-value bucket or of the message itself), the same "first" write succeeds again.
# Keep such a record for longer than any redelivery or retry can come. A purge of the
# subject:

# %%
await js.purge_stream("PAYMENTS", subject="payment.charged.pay-0003")
reopened = await js.publish("payment.charged.pay-0003", b"900", headers=only_once)
reopened.seq > first.seq

# %% [markdown]
# A key-value bucket is a stream with one subject per key, and `kv.create(key, value)`
# is that very publish: nats-py sends it with `Nats-Expected-Last-Subject-Sequence: 0`
# and turns the refusal into `KeyWrongLastSequenceError` (for a key that was deleted,
# it tries once more, expecting the deletion marker's revision). We keep the charges in a
# bucket of their own; the charge *is* the write (`history=5` keeps every write of a
# key, so we can count them):

# %%
charges = await ProcessedIds.open(js, "charges", history=5, fresh=True)
kv = charges.kv
await kv.create("pay-0003", b"900")

# %%
try:
    await kv.create("pay-0003", b"900")
except nats.js.errors.KeyWrongLastSequenceError as err:
    refused = err
type(refused).__name__

# %% [markdown]
# `ProcessedIds.record(event_id, value)` wraps it: `True` for the one call that wrote,
# `False` for every other. The handler records the charge; a `False` means "done
# before", so it just returns and the message is acknowledged:


# %%
async def charge_once(event):
    await charges.record(event.id, str(event.data["amount_cents"]).encode())


# %% [markdown]
# The race again: A holds a message, its `ack_wait` runs out, B gets it, and both
# handle it at the same moment:

# %%
await publish_events(js, [make("payment.captured", {"amount_cents": 1200})])
[at_a] = await worker.fetch(1)
[at_b] = await worker_b.fetch(1, timeout=5)
await asyncio.gather(charge_once(at_a.event), charge_once(at_b.event))
await at_b.ack(sync=True)
at_a.event.id == at_b.event.id, len(await kv.history(at_a.event.id))

# %% [markdown]
# One write, so one charge. A crash has no window left either: before the write
# nothing happened, after it the redelivery finds the charge and returns.
#
# `ProcessedIds.once(event_id, effect)` is the check-effect-mark of the first part: it
# skips ids marked before, and still repeats the effect in the crash window and in the
# race. Use it where a rare repeat is harmless (a second "welcome" e-mail). An effect
# outside NATS (a card payment, an e-mail service) cannot share a write with the
# bucket: give it the event id as its own idempotency key, so that system drops the
# repeat.
#
# ## Recap
#
# - JetStream delivers at least once: a message not acknowledged within `ack_wait`
#   comes back, to any worker.
# - Check, effect, mark repeats the effect when the process dies between effect and
#   mark, and when two workers hold the same message.
# - A conditional write makes the effect and its mark one atomic step:
#   `Nats-Expected-Last-Subject-Sequence: 0`, key-value `create`, `ProcessedIds.record`.
#   It holds while the stream keeps the record: after a purge, a delete or an expiry,
#   the same write succeeds again.
#
# ## Exercise
#
# Write `charge(event)` so that each payment is charged once however many workers
# handle it: record the charge in the `charges` bucket under the event id (value: the
# amount in cents, as text), and return normally when it is already there. The checker
# calls your handler from two workers at once, then as a redelivery, then for a payment
# another process has already charged, and counts the writes on the server.

# %%
charge = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
charges = await ProcessedIds.open(js, "charges", history=5)


async def charge(event):
    await charges.record(event.id, str(event.data["amount_cents"]).encode())


# %%
from edalab.course import check, hint  # stuck? hint("10") in a new cell

await check("10", js, charge)
