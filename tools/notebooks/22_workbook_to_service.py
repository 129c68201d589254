# %% [markdown]
# # 22 · From workbook to service
#
# **About 40 minutes.** Needs 17 Capstone: a shop made of events (the capstone's shop),
# 11 Dead letters (dead letters and replay). One notebook at a time; when in doubt,
# Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - run two of the capstone's services as FastStream apps, one file each, started with
#   FastStream's own CLI, next to the notebook's services on the same stream;
# - know what FastStream gives a service (the handler loop, validation, ack policies, a
#   test broker) and what it leaves to you: deduplication, dead letters, idempotency,
#   upcasting;
# - add each of edalab's guarantees to a FastStream broker through FastStream's own
#   extension points (a middleware, a decoder), and watch each one hold;
# - write a service's middleware stack that survives redelivery, transient failures and
#   poison events.
#
# The capstone ran its services as asyncio tasks in this kernel. A real service is a
# process of its own: here `payments` and `emails` are FastStream apps in
# `edalab.course.services_faststream`, run with `faststream run module:app`, while
# `orders` and `analytics` still run in the notebook. They share only the `SHOP` stream.
#
# The lesson runs on a server of its own, so it can use the capstone's stream names.

# %%
from collections import Counter

from edalab import Event, connect
from edalab.course import Table, lesson_server
from edalab.course.services_faststream import start_service
from edalab.course.shop import Shop

server = lesson_server("22")
nc = await connect(server.url)
js = nc.jetstream()
shop = Shop(js)
await shop.setup()
shop.roll_out_order_v2()  # payments reads version 2 of order.placed: producers may send it
await shop.start(["orders", "analytics"])  # payments and emails run as FastStream apps

# %% [markdown]
# ## The map: what you used, what FastStream has, what edalab adds
#
# | in the workbook (edalab) | in FastStream | what edalab adds on a FastStream broker |
# |---|---|---|
# | `Event`, `event.payload(Model)` | pydantic models as handler arguments | `EventDecoder`: the envelope (id, type, version) decoded, not only the payload |
# | `SchemaRegistry`, upcasters | nothing: a version-1 body fails validation | `EventDecoder(registry)`: old versions arrive upcast |
# | `publish_event` (`Nats-Msg-Id` = event id) | `broker.publish(body, subject, stream=...)`, no `Nats-Msg-Id` | `EventPublishing` (a `publish_scope` middleware): the id, and the flow's `Correlation-Id`, `Causation-Id`, `traceparent` |
# | `EventConsumer.run`: ack, nak, term | `AckPolicy`; `NackMessage`, `RejectMessage`; default `REJECT_ON_ERROR` | `Failures` (a `consume_scope` middleware): `TransientError` → nak with a delay, `PermanentError` → `+TERM` with the reason |
# | `DeadLetters`: advisories kept, replayed to one consumer | nothing | the same `DeadLetters`; `ReplayRoute` stacks the replay subscriber on the handler |
# | `ProcessedIds.record`: effect and mark in one write | nothing | `IdempotencyGuard`: the handler's result recorded once per event id |
# | `ensure_stream`: idempotent, reports changes | declares the stream at start; one that exists with another config is updated to FastStream's, the old subjects kept, with a warning | `JStream(..., declare=False)` and `ensure_stream` at start-up |
# | `edalab.testing` fixtures (a real server) | `TestNatsBroker(broker, with_real=True)` | both together: tests/server/test_faststream.py |
#
# FastStream's default for a JetStream subscriber (when neither it nor the broker sets
# `ack_policy`) deserves a look: an exception in a handler *terminates* the message. A
# timeout of a payment provider would throw the order away, with no reason given:

# %%
from faststream.nats import JStream, NatsBroker, PullSub

plain = NatsBroker(server.url)
sub = plain.subscriber(
    "shop.order.placed", stream=JStream("SHOP", declare=False), durable="x", pull_sub=PullSub()
)
sub.ack_policy

# %% [markdown]
# ## A service in one file
#
# This is the payments app, the file FastStream's CLI runs. The broker gets edalab's
# pieces as middlewares (the list is outermost first; `add_middleware` appends the
# guard, innermost); the handler is the capstone's, returning the payment event that
# the `@publisher` sends:

# %%
import inspect

from IPython.display import Code

from edalab.course.services_faststream import payments

source = inspect.getsource(payments)
Code(source[source.index("registry = ") :], language="python")

# %% [markdown]
# Outside Jupyter it runs with FastStream's CLI, given the server's URL:
#
# ```
# NATS_URL=nats://127.0.0.1:4222 faststream run edalab.course.services_faststream.payments:app
# ```
#
# `start_service` runs exactly that command as a subprocess and returns once the app's
# consumers are pulling (their pull requests are waiting on the server); run again, it
# stops the previous process first. The e-mail app is the other file:

# %%
payments = await start_service("payments", server.url, js)
emails = await start_service("emails", server.url, js)
[payments.running, emails.running]

# %% [markdown]
# The notebook runs `orders` and `analytics` as before (started in the first cell).
# `settle` waits until the notebook's consumers and the apps' durables have nothing
# pending or unacknowledged:

# %%
from edalab.course.services_faststream import settled


async def settle():
    await shop.settle()
    await settled(js, "payments", "emails")


# %% [markdown]
# ## Guarantee 1: a retried publish is stored once
#
# A producer that lost its PubAck publishes again. With plain FastStream, the stream
# cannot tell the retry from a new event: the message carries no `Nats-Msg-Id`.

# %%
from edalab.course.shop import UserRegistered

await plain.connect()
ann = Event.create("shop.user.registered", UserRegistered(user_id="u1", email="ann@example.com"))
first = await plain.publish(ann, "shop.user.registered", stream="SHOP")
retry = await plain.publish(ann, "shop.user.registered", stream="SHOP")
[first.seq, retry.seq, bool(retry.duplicate)]

# %%
sorted((await js.get_msg("SHOP", retry.seq)).headers)

# %% [markdown]
# Two copies of one registration. With `EventPublishing` on the broker, the event's id
# goes out as `Nats-Msg-Id` and the retry comes back as a duplicate:

# %%
from edalab.faststream import EventPublishing

broker = NatsBroker(server.url, middlewares=[EventPublishing()])
await broker.connect()
bo = Event.create("shop.user.registered", UserRegistered(user_id="u2", email="bo@example.com"))
first = await broker.publish(bo, "shop.user.registered", stream="SHOP")
retry = await broker.publish(bo, "shop.user.registered", stream="SHOP")
[first.seq, retry.seq, retry.duplicate]

# %%
sorted((await js.get_msg("SHOP", first.seq)).headers)

# %% [markdown]
# Ann's registration is in the stream twice, yet the e-mail app wrote her one welcome:
# its `IdempotencyGuard` recorded the e-mail under the event id, and the second copy
# found it recorded. The bucket holds one e-mail per event:

# %%
await settle()
sent = await js.key_value("shop-emails-sent")
sorted([(await sent.get(key)).value.decode() for key in await sent.keys()])

# %% [markdown]
# ## Guarantee 2: a version-1 event arrives upcast
#
# Order `o1` is placed the old way (version 1, no currency); `o3` as version 2, in
# dollars. The payments app's decoder upcasts `o1` through its `SchemaRegistry`
# (the currency becomes EUR), so the handler only ever sees version 2:

# %%
await shop.place_order("o1", "u1", 1250)
await shop.place_order("o3", "u2", 700, currency="USD")
await settle()
Table(
    ["order", "version placed", "paid", "currency"],
    [
        [o.data["order_id"], o.version, p.data["amount_cents"], p.data["currency"]]
        for o, p in zip(
            await shop.stored("shop.order.placed"),
            await shop.stored("shop.payment.captured"),
            strict=True,
        )
    ],
)

# %% [markdown]
# ## Guarantee 3: a poison event is dead-lettered, then replayed
#
# Order `o2` is free. The payments app still has the capstone's bug (it divides by the
# total). `Failures` treats an unexpected error as possibly passing: nak with a delay,
# until the consumer's `max_deliver` (3) is used up. Then the server gives up and says
# so in an advisory, which the dead-letter stream keeps:

# %%
from edalab.course import dead_letter_table

await shop.place_order("o2", "u2", 0)
await settle()
dead_letter_table(await shop.dead.wait_for(1))

# %% [markdown]
# The fix is deployed (a new process of the app, `SHOP_PAYMENTS_FIXED=1`) and the letter
# is replayed to `shop-payments`, and to nobody else: the app's second subscriber,
# stacked on the same handler by `ReplayRoute`, reads `deadletters.replay.SHOP.shop-payments`.

# %%
payments = await start_service("payments", server.url, js, env={"SHOP_PAYMENTS_FIXED": "1"})
for letter in await shop.dead.letters(consumer="shop-payments"):
    await shop.dead.replay(letter)
await settle()
sorted(shop.paid_orders)

# %% [markdown]
# ## Guarantee 4: a redelivered order is charged once
#
# The payments app is redeployed with its consumer reset (deleted and created again by
# the app), so every order in the stream is delivered to it once more. Its guard finds
# each charge recorded in `shop-charges`, skips the handler, and sends the recorded
# payment again, which the stream drops as a duplicate: its `Nats-Msg-Id` was seen within
# the stream's duplicate window.

# %%
payments.stop()
await js.delete_consumer("SHOP", "shop-payments")
payments = await start_service("payments", server.url, js, env={"SHOP_PAYMENTS_FIXED": "1"})
await settle()
(await js.consumer_info("SHOP", "shop-payments")).delivered.consumer_seq

# %% [markdown]
# All three orders were delivered again to the new consumer, and still: one payment per
# order in the stream, one charge per order in the bucket, and the bucket's stream was
# written three times in all, once per charge:

# %%
charges = await js.key_value("shop-charges")
[
    dict(
        sorted(
            Counter(p.data["order_id"] for p in await shop.stored("shop.payment.captured")).items()
        )
    ),
    len(await charges.keys()),
    (await js.stream_info("KV_shop-charges")).state.last_seq,
]

# %% [markdown]
# Two limits of what you just saw. The stream drops a copy only within its duplicate
# window, two minutes unless the stream sets another: a redelivery after that sends the
# recorded payment again and it is stored twice, and then it is the e-mail app's guard
# (same event id) that keeps the customer from a second e-mail. And the guard makes one
# thing atomic, the handler's *result* and its mark. Anything else the handler does (a
# call to a card provider, an HTTP request) happens before the record: a crash between
# the two, or two workers holding the same message at once, runs it again. Give such a
# call the event id as its idempotency key, so the other system drops the repeat.
# The `SHOP` stream's window, in seconds:

# %%
(await js.stream_info("SHOP")).config.duplicate_window

# %%
payments.stop()
emails.stop()
await shop.stop()

# %% [markdown]
# ## Recap
#
# - FastStream runs the handler loop; delivery guarantees stay yours. Its JetStream
#   subscribers terminate a message on any error by default, and it sets no `Nats-Msg-Id`.
# - Each edalab guarantee is one FastStream piece on your broker: `EventPublishing`
#   (a `publish_scope`), `EventDecoder` (a decoder), `Failures` and `IdempotencyGuard`
#   (`consume_scope`s), `ReplayRoute` (a second subscriber on the same handler).
# - The guard's effect is the handler's result, recorded with one atomic `create`: a
#   redelivery or a duplicate that slipped past the dedup window finds it recorded, and
#   of two workers running the same event at once only one record lands. Effects outside
#   the result are not covered: pass them the event id as their idempotency key.
# - A service is a process: start it with `faststream run module:app`, wait until its
#   consumers pull, stop it with SIGTERM.
#
# ## Exercise
#
# Write `middlewares(charges)`: the list of broker middlewares for a payments service,
# given the `ProcessedIds` bucket its charges go to. The checker builds a FastStream
# broker with your list, runs a payments handler of its own on four orders (one fine,
# one whose first try fails with `TransientError`, one that fails with `PermanentError`,
# one whose body is no event at all), then resets the consumer so every order is
# delivered again. It passes when each good order is charged once, in `charges`, and its
# payment event stored once, the transient one after a retry, and the two poison orders
# are terminated at once and captured as dead letters.

# %%
middlewares = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
from edalab.faststream import Failures, IdempotencyGuard


def middlewares(charges):
    return [EventPublishing(), Failures(delay=0.1), IdempotencyGuard(charges)]


# %%
from edalab.course import check, hint  # stuck? hint("22") in a new cell

await check("22", js, middlewares=middlewares)
