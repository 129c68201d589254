# %% [markdown]
# # 11 · Dead letters
#
# **About 30 minutes.** Needs 06 Acks and redelivery (`max_deliver` and `term`). One
# notebook at a time; when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - read the *advisories* the server publishes when a consumer gives up on a message:
#   `MAX_DELIVERIES` (never acknowledged) and `MSG_TERMINATED` (rejected);
# - keep them in a stream with `DeadLetters`, so none is lost while nobody listens;
# - see why republishing a dead letter to its original subject is wrong: every consumer
#   whose filter matches gets it again;
# - replay a letter to the one consumer that gave up, and to no other.
#
# > **From NATS Streaming.** STAN redelivered an unacknowledged message until it was
# > acknowledged, with no limit on the attempts: to give up on a poison message, a
# > subscriber acknowledged it. JetStream by default does the same (`max_deliver` is
# > -1, unlimited); set `max_deliver` and it bounds the attempts and tells you when a
# > consumer gives up.
#
# Two consumers read the `PAYMENTS` stream: `payments` books each payment,
# `audit` records every event.

# %%
import json

from edalab import EventConsumer, EventFactory, connect, ensure_server, publish_events
from edalab.course import fresh_stream

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="pay-")

# %% [markdown]
# Six messages: a negative amount (rejected on purpose), one message that is not an
# event at all, and four payments, two of them of zero cents (the bookkeeping divides
# by the amount), in a fresh stream (so running this cell again starts over).

# %%
await fresh_stream(js, "PAYMENTS", ["payment.>"])
await publish_events(js, [make("payment.captured", {"amount_cents": -1})])
await js.publish("payment.captured", b"\x00 not an event")
amounts = [500, 0, 700, 0]
acks = await publish_events(js, [make("payment.captured", {"amount_cents": a}) for a in amounts])
[a.seq for a in acks]

# %% [markdown]
# ## The raw advisories
#
# When a consumer gives up on a message, the server publishes a JSON advisory on
# `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` or
# `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>`. These are plain
# core NATS messages; we subscribe to both:

# %%
maxed = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.PAYMENTS.*")
termed = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.PAYMENTS.*")

# %% [markdown]
# Nobody listening means an advisory is gone, so `DeadLetters` keeps them in a stream of
# their own, `DEAD_LETTERS` (file storage), from now on:

# %%
from edalab import DeadLetters

dead = DeadLetters(js)
await dead.setup(fresh=True)

# %% [markdown]
# The `payments` handler has a bug (it divides by the amount) and rejects negative
# amounts with `PermanentError`, which `EventConsumer.run` turns into a `term`. The
# `audit` handler records every event.

# %%
from collections import Counter

from edalab import PermanentError

handled = {"payments": Counter(), "audit": Counter()}
fees = {}


async def book(event):
    amount = event.data["amount_cents"]
    if amount < 0:
        raise PermanentError(f"negative amount {amount}")
    fees[event.id] = 1000 // amount
    handled["payments"][event.id] += 1


async def record(event):
    handled["audit"][event.id] += 1


# %% [markdown]
# Before the consumers run, open a live picture of the stream: each consumer's position,
# what it has in flight, and the last advisories the server publishes for `PAYMENTS`
# (max deliveries, terminated, consumer deleted). It redraws itself while the next cells
# run, at most four times a second.

# %%
from edalab.course import view

board = await view(js, "PAYMENTS")
board

# %% [markdown]
# `payments` may try each message three times (`max_deliver=3`); it pulls one message
# at a time and retries at once, so the order of events is the same on every run.

# %%
payments = await EventConsumer.create(
    js, "PAYMENTS", "payments", filter_subject="payment.captured", max_deliver=3
)
audit = await EventConsumer.create(js, "PAYMENTS", "audit", filter_subject="payment.>")
await payments.run(book, batch=1, timeout=0.5, retry_delay=0)

# %% [markdown]
# `audit` sets no `max_deliver`, so the server keeps the default, -1: it would redeliver
# an unacknowledged message without end, and never publish a `MAX_DELIVERIES` advisory.

# %%
(await js.consumer_info("PAYMENTS", "audit")).config.max_deliver

# %% [markdown]
# The negative amount was terminated first. Here is the server's advisory, as it
# arrived (its `id` is random, its timestamp the moment it was sent); the reason is
# the text `EventConsumer` sent after `+TERM`:

# %%
json.loads((await termed.next_msg(timeout=5)).data)

# %% [markdown]
# The first zero-cents payment was delivered three times and never acknowledged:

# %%
json.loads((await maxed.next_msg(timeout=5)).data)

# %% [markdown]
# `audit` handles everything it can. The message that is not an event is terminated by
# `audit` too: a dead letter belongs to one consumer.

# %%
await audit.run(record, timeout=0.5)
sorted(handled["payments"]), sorted(handled["audit"])

# %% [markdown]
# On the picture: both consumers have delivered every message, but `payments`' ack floor
# stays at 3, since the zero-cents payment at sequence 4 was never acknowledged; the
# advisories that made the dead letters are listed, newest last.

# %%
await board.snapshot()

# %% [markdown]
# ## DeadLetters: the advisories, kept
#
# `dead.letters()` parses what the stream holds; `category` is a typed `Reason`:

# %%
from edalab import Reason
from edalab.course import dead_letter_table

letters = await dead.wait_for(5)
dead_letter_table(letters)

# %%
Counter((letter.consumer, letter.category) for letter in letters)

# %% [markdown]
# The advisory names the stream and sequence, so the message itself is found there:

# %%
first, second = [d for d in letters if d.category is Reason.MAX_DELIVERIES]
detail = await dead.inspect(first)
detail["subject"], detail["data"]

# %% [markdown]
# ## Replaying to the original subject reaches everyone
#
# Fix the handler. The obvious replay publishes the message again on its subject:


# %%
async def book(event):
    amount = event.data["amount_cents"]
    if amount < 0:
        raise PermanentError(f"negative amount {amount}")
    fees[event.id] = 1000 // amount if amount else 0
    handled["payments"][event.id] += 1


original = await dead.original(first)
await js.publish(original.subject, original.data)

# %% [markdown]
# `payments` books it, as wanted, but `audit`, which had handled that payment already,
# handles it a second time: a stream delivers a new message to every consumer whose
# filter matches it.

# %%
await payments.run(book, timeout=0.5)
await audit.run(record, timeout=0.5)
event_id = json.loads(original.data)["id"]
handled["payments"][event_id], handled["audit"][event_id]

# %% [markdown]
# ## Replay to the consumer that gave up
#
# `dead.replay(letter)` publishes the message instead to a subject of that consumer's
# own, `deadletters.replay.<stream>.<consumer>`, kept in the `DEAD_LETTERS` stream, and
# discards the letter. `dead.replays(stream, consumer)` is an `EventConsumer` that reads
# only that subject: run it with the same handler.

# %%
ack = await dead.replay(second)
replays = await dead.replays("PAYMENTS", "payments")
await replays.run(book, timeout=0.5)
await audit.run(record, timeout=0.5)
event_id = json.loads((await dead.original(second)).data)["id"]
handled["payments"][event_id], handled["audit"][event_id]

# %% [markdown]
# The replay landed in `DEAD_LETTERS` on the payments consumer's subject, with headers
# saying where it came from; `audit` was never offered it.

# %%
replayed = await js.get_msg(dead.stream, ack.seq)
replayed.subject, replayed.headers["Edalab-Replay-Of"], replayed.headers["Edalab-Replay-Subject"]

# %% [markdown]
# The whole flow, read from the server: what each consumer acknowledged, the letters
# still held, and the replay that went to `payments` only.

# %%
from edalab.course.charts.deadletters import draw, flow_state

draw(await flow_state(js, dead, "PAYMENTS"))

# %% [markdown]
# ## Recap
#
# - The server publishes an advisory when a consumer gives up on a message
#   (`MAX_DELIVERIES`, `MSG_TERMINATED` with the reason); a stream keeps them.
# - A dead letter belongs to one consumer; its category is a typed `Reason`.
# - Republishing to the original subject delivers the message to *every* consumer
#   whose filter matches: handlers that had done their work do it again.
# - `dead.replay(letter)` sends it to that consumer's replay subject; `dead.replays(...)`
#   reads it with the same handler; nobody else sees it.
#
# ## Exercise
#
# Three letters remain: the message that is not an event (for `payments` and for
# `audit`) and the negative amount. Discard the two undecodable ones (they cannot be
# fixed); replay the negative amount to `payments` only, with corrected data
# (`amount_cents` 100, using `replay(letter, data=...)`), and process it with
# `payments`' replay reader. Then check: no letter is left, and the fixed payment was
# handled by `payments` and by no other consumer.

# %% tags=["solution"]
from edalab import Event

for letter in await dead.letters(stream="PAYMENTS"):
    if letter.category is Reason.UNDECODABLE:
        await dead.discard(letter)
    else:
        original = Event.from_json((await dead.original(letter)).data)
        fixed = original.model_copy(update={"data": {"amount_cents": 100}})
        await dead.replay(letter, data=fixed.to_json())
await replays.run(book, timeout=0.5)

# %%
from edalab.course import check, hint  # stuck? hint("11") in a new cell

await check("11", js)
