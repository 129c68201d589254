# %% [markdown]
# # 17 · Capstone: a shop made of events
#
# **Learning goals**
#
# - see five services cooperate only through events, across several domains;
# - rebuild a read model by replaying a stream;
# - roll out a new event version while the system runs;
# - catch a poison event in dead letters and replay it after the fix;
# - draw what actually happened: publishes, deliveries, acks and retries per service.
#
# The services live in `edalab.course.shop` (with tests), so this notebook only
# drives them. Each is a durable pull consumer running as an asyncio task:
#
# | service | listens to | publishes |
# |---|---|---|
# | users | | `shop.user.registered` |
# | orders | `shop.payment.captured` | `shop.order.placed` |
# | payments | `shop.order.placed` | `shop.payment.captured` |
# | email | `shop.user.registered`, `shop.payment.captured` | (e-mails, once each) |
# | analytics | `shop.>` | (a read model: revenue per user) |
#
# > **From NATS Streaming.** Nothing here needs more than the seed tutorial's ideas
# > (events, subjects, durable subscribers, acks), plus what JetStream adds: streams
# > shared by many consumers, dead letters, versioned schemas and replay.

# %%
from edalab import connect, ensure_server
from edalab.course.shop import Shop

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
shop = Shop(js)
await shop.setup()
await shop.start()

# %% [markdown]
# ## Customers arrive, orders flow
#
# Two users register and place orders. The second order is free (zero cents), and the
# payments service has a bug: it divides by the order total.

# %%
await shop.register_user("u1", "ann@example.com")
await shop.register_user("u2", "bo@example.com")
await shop.place_order("o1", "u1", 1250)
await shop.settle()
await shop.place_order("o2", "u2", 0)
await shop.settle()
sorted(shop.paid_orders)

# %% [markdown]
# `settle()` waits until every service's consumer has nothing pending or unacknowledged
# (the notebook settles between orders so that stream sequences read the same on every
# run; the services themselves need no such pauses).
# Order `o2` is not paid: payments failed three times (`max_deliver=3`) and gave up.
# The server's advisory landed in the dead-letter stream:

# %%
from edalab import DeadLetters

DeadLetters.table(await shop.dead.wait_for(1))

# %% [markdown]
# Everyone else carried on: the e-mail service welcomed both users and confirmed the
# one payment.

# %%
shop.emails

# %% [markdown]
# ## A schema change while the system runs
#
# Orders gain a `currency` (version 2 of `shop.order.placed`). The safe order of a
# rollout: first the **consumers** learn version 2 (payments gets the new model and an
# upcaster that gives old orders `EUR`), then **producers** start sending it. Old
# producers may keep sending version 1 for a while: both are handled.

# %%
shop.roll_out_order_v2()
await shop.place_order("o3", "u2", 990, currency="USD")
await shop.place_order("o4", "u1", 500)
await shop.settle()
sorted(shop.paid_orders)

# %% [markdown]
# ## Fix the bug, replay the poison event
#
# The payments fix is deployed; the dead letter is replayed to the payments service
# only (to its replay subject in the dead-letter stream, notebook 11), so the services
# that had handled that order already do not handle it again.

# %%
shop.payments_bug = False
letter = (await shop.dead.letters())[0]
await shop.dead.replay(letter)
await shop.settle()
sorted(shop.paid_orders), await shop.dead.letters()

# %%
await shop.stop()

# %% [markdown]
# ## The read model, live and rebuilt
#
# Analytics folded every payment into revenue per user as it happened. Because the
# stream keeps every event, the same model can be rebuilt from scratch by replaying it:
# the way to add a new read model, or to repair a broken one.

# %%
shop.analytics

# %%
rebuilt = await shop.rebuild_analytics()
rebuilt == shop.analytics

# %% [markdown]
# ## What happened, per service
#
# The trace recorded every publish, delivery, ack, retry and termination:

# %%
from edalab import Table

counts = shop.trace.counts()
kinds = ["publish", "deliver", "ack", "retry", "term"]
Table(["service", *kinds], [[s, *(counts[s].get(k, 0) for k in kinds)] for s in counts])

# %% [markdown]
# And as a timeline (the three retries of the poison order show as crosses on the
# payments lane; the replay comes at the end):

# %%
# NBVAL_IGNORE_OUTPUT
fig = shop.trace.plot()

# %% [markdown]
# ## Recap
#
# - Services that share only events can be added, replaced and restarted independently.
# - A stream is the source of truth: read models are derived, and can be rebuilt by replay.
# - Roll out a new event version consumers first, producers second; upcasters cover the past.
# - A poison event stops nobody: it waits in dead letters until the fix, then is replayed.
#
# ## Exercise
#
# Add a sixth service, **loyalty**, that gives a user one point per 100 cents paid.
# Build it as a read model from a replay of the `SHOP` stream (an `EventConsumer` on
# `shop.payment.captured` with a fresh durable name), and check that `u1` has 17 points.

# %% tags=["solution"]
from edalab import EventConsumer
from edalab.course.shop import PaymentCaptured

points = {}
loyalty = await EventConsumer.create(
    js, "SHOP", "loyalty", filter_subject="shop.payment.captured", recreate=True
)
async for delivery in loyalty.events(timeout=0.5):
    pay = delivery.event.payload(PaymentCaptured)
    points[pay.user_id] = points.get(pay.user_id, 0) + pay.amount_cents // 100
    await delivery.ack()
points

# %%
await nc.close()
