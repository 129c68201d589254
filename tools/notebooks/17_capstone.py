# %% [markdown]
# # 17 · Capstone: a shop made of events
#
# **About 45 minutes.** Needs 08 Versioning (upcasters), 10 Idempotency
# (`ProcessedIds`), 11 Dead letters (`DeadLetters` and replay). One notebook at a time;
# when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - see five services cooperate only through events, across several domains;
# - rebuild a read model by replaying a stream;
# - roll out a new event version while the system runs;
# - catch a poison event in dead letters and replay it, after the fix, to the one
#   service that gave up on it;
# - give derived events deterministic ids, so a redelivered order cannot pay twice;
# - keep a read model idempotent;
# - draw what actually happened: publishes, deliveries, acks and retries per service.
#
# The plumbing of the services lives in `edalab.course.shop` (with tests): each service
# is a durable pull consumer running its handler in an asyncio task. The handlers, the
# part that is the services' own logic, are shown below.
#
#
# | service | listens to | publishes |
# |---|---|---|
# | users | | `shop.user.registered` |
# | orders | `shop.payment.captured` | `shop.order.placed` |
# | payments | `shop.order.placed` | `shop.payment.captured` |
# | email | `shop.user.registered`, `shop.payment.captured` | (e-mails, one per event, repeats rare) |
# | analytics | `shop.>` | (a read model: revenue per user) |
#
# > **From NATS Streaming.** Nothing here needs more than the seed tutorial's ideas
# > (events, subjects, durable subscribers, acks, replay), plus what JetStream adds:
# > streams that capture many subjects through wildcards, pull consumers that any
# > number of workers share, `max_deliver` with its advisories (dead letters), and
# > headers such as `Nats-Msg-Id` for deduplication. Versioned schemas are this
# > course's convention.

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
# ## The handlers
#
# Each service is one coroutine taking the event (and its delivery). This is their
# source, read from the package:

# %%
import inspect

from IPython.display import Code


def show(handler):
    return Code(inspect.getsource(handler), language="python")


show(Shop.payments_handler)

# %% [markdown]
# Payments gives the event it publishes an id derived from the order event's id
# (`payment_id`); why, below. Orders marks an order paid (a set: idempotent by nature):

# %%
show(Shop.orders_handler)

# %% [markdown]
# E-mail sends an e-mail for an event id only if the id is not yet marked, then marks
# it (`ProcessedIds.once`, notebook 10): a redelivery sends nothing more, though a crash
# between sending and marking, or two workers holding the same message, can still send
# one twice (rare, not impossible):

# %%
show(Shop.email_handler)

# %% [markdown]
# Analytics folds every event into the read model; the fold ignores an event it has
# already counted:

# %%
show(Shop.analytics_handler)

# %%
from edalab.course.shop import Analytics

show(Analytics.apply)

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
from edalab.course import dead_letter_table

dead_letter_table(await shop.dead.wait_for(1))

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
# ## Fix the bug, replay the poison event to payments only
#
# The payments fix is deployed. Republishing the dead order to `shop.order.placed`
# would reach every consumer whose filter matches: analytics (`shop.>`) would see it a
# second time. `DeadLetters.replay` sends it instead to a replay subject of its own,
# `deadletters.replay.SHOP.shop-payments` in the dead-letter stream (notebook 11), where only the
# payments service reads (each service runs a replay reader next to its consumer,
# `DeadLetters.replays`):

# %%
letter = (await shop.dead.letters())[0]
shop.dead.replay_subject(letter.stream, letter.consumer)

# %% [markdown]
# Before the replay, the trace shows who was delivered the poison order: payments three
# times, analytics once.

# %%
from collections import Counter

from edalab import Event

poison = Event.from_json((await shop.dead.original(letter)).data)


def deliveries_of(event):
    seen = Counter(
        e.service for e in shop.trace.entries if e.kind == "deliver" and e.event_id == event.id
    )
    return dict(sorted(seen.items()))


deliveries_of(poison)

# %%
shop.payments_bug = False
await shop.dead.replay(letter)
await shop.settle()
sorted(shop.paid_orders), await shop.dead.letters()

# %% [markdown]
# Payments got it once more; analytics did not:

# %%
deliveries_of(poison)

# %% [markdown]
# ## A redelivered order must not pay twice
#
# JetStream delivers at least once. If payments publishes `payment.captured` and dies
# before its ack reaches the server, the order is delivered again and the handler
# publishes again. With a fresh random id (`Event.create` without `id=`) that second
# payment would be a new message: the stream's deduplication by `Nats-Msg-Id` could not
# tell. With the id derived from the order event, it is the *same* message.
#
# To see it, payments is redeployed with its consumer reset: every order is delivered
# to the handler again.

# %%
from edalab import EventConsumer

again = await EventConsumer.create(
    js,
    "SHOP",
    "payments-again",
    filter_subject="shop.order.placed",
    registry=shop.registry,
    recreate=True,
)
(await again.run(shop.payments_handler, timeout=0.5, double_ack=True)).handled

# %% [markdown]
# Four orders handled again, four payments published again, and the stream still holds
# one payment per order: each second publish came back as a duplicate.

# %%
await shop.settle()
Counter(event.data["order_id"] for event in await shop.stored("shop.payment.captured"))

# %%
shop.trace.counts()["payments"]["duplicate"]

# %% [markdown]
# The server remembers message ids for the stream's `duplicate_window` (two minutes
# unless configured): a redelivery later than that would be stored again. That is why the
# consumers of payments are idempotent too: orders keeps a set, e-mail remembers event
# ids, and analytics counts each payment id once.

# %%
await js.delete_consumer("SHOP", "payments-again")
(await js.stream_info("SHOP")).config.duplicate_window

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
# Replaying into a model that already holds the events changes nothing either: the
# fold is idempotent.

# %%
for event in await shop.stored("shop.payment.captured"):
    rebuilt.apply(event)
rebuilt == shop.analytics

# %% [markdown]
# ## What happened, per service
#
# The trace recorded every publish, delivery, ack, retry and termination:

# %%
from edalab.course import Table

counts = shop.trace.counts()
kinds = ["publish", "duplicate", "deliver", "ack", "retry", "term"]
Table(["service", *kinds], [[s, *(counts[s].get(k, 0) for k in kinds)] for s in counts])

# %% [markdown]
# And as a timeline (the three retries of the poison order show as crosses on the
# payments lane; the replay comes at the end):

# %% tags=["nbval-ignore-output"]
fig = shop.trace.plot()

# %% [markdown]
# ## Recap
#
# - Services that share only events can be added, replaced and restarted independently.
# - A stream is the source of truth: read models are derived, and can be rebuilt by replay.
# - Roll out a new event version consumers first, producers second; upcasters cover the past.
# - A poison event stops nobody: it waits in dead letters until the fix, then is replayed
#   to the consumer that gave up on it, and no other.
# - A derived event's id comes from its cause's id: a redelivered cause re-publishes the
#   same event, which `Nats-Msg-Id` deduplication drops (within the duplicate window).
# - Read models fold idempotently: an event applied twice counts once.
#
# ## Exercise
#
# Add a sixth service, **loyalty**, that gives a user one point per 100 cents paid. Its
# handler takes a `shop.payment.captured` event and publishes a `shop.points.awarded`
# event (payload `PointsAwarded`: `user_id`, `payment_id`, `points`) whose id is derived
# from the payment's id, so that a redelivered payment awards nothing twice. Run it as
# the durable consumer `shop-loyalty` on `shop.payment.captured` over the whole stream,
# then check, passing your handler: the checker delivers every payment to it once more
# and counts the awards in the stream. `u1` should end with 17 points.

# %%
award = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
from edalab import publish_event
from edalab.course.shop import PaymentCaptured, PointsAwarded


async def award(event):
    pay = event.payload(PaymentCaptured)
    points = PointsAwarded(user_id=pay.user_id, payment_id=event.id, points=pay.amount_cents // 100)
    await publish_event(
        js, Event.create("shop.points.awarded", points, id=f"points-for-{event.id}")
    )


loyalty = await EventConsumer.create(
    js, "SHOP", "shop-loyalty", filter_subject="shop.payment.captured", recreate=True
)
await loyalty.run(award, timeout=0.5, double_ack=True)
points = Counter()
for event in await shop.stored("shop.points.awarded"):
    points[event.data["user_id"]] += event.data["points"]
dict(sorted(points.items()))

# %%
from edalab.course import check, hint  # stuck? hint("17") in a new cell

await check("17", js, award=award)
