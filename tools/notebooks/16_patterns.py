# %% [markdown]
# # 16 · Patterns for event-driven services
#
# **About 60 minutes.** Needs 03 Publishing (`Nats-Msg-Id`), 10 Idempotency (idempotent
# handlers). One notebook at a time; when in doubt, Restart Kernel and Run All (the
# *Kernel* menu).
#
# **Learning goals**
#
# - tell commands, queries and events apart, and why a command sent by request-reply is
#   not an event;
# - see the dual-write problem lose an event, and the **transactional outbox** (a real
#   SQLite database) make the row and its event one write, surviving a relay crash;
# - give derived events **deterministic ids**, and carry **correlation**, **causation**
#   and a W3C **`traceparent`** from the first publish to the last handler;
# - run one order saga both ways, **choreography** and **orchestration**, with a
#   **compensation** when the payment is declined;
# - append to an event-sourced aggregate with **optimistic concurrency**
#   (`Nats-Expected-Last-Subject-Sequence`), and keep a **key-value read model** current
#   with a watch;
# - write the envelope as a **CloudEvents 1.0** event, structured and binary.
#
# > **From NATS Streaming.** STAN had no headers, so ids, correlation and trace context
# > had to live in the payload. JetStream messages carry headers (`Nats-Msg-Id`,
# > `Nats-Expected-Last-Subject-Sequence`, and your own), which is what most patterns
# > here rely on.

# %%
from edalab import connect, ensure_server

ensure_server()
nc = await connect()
js = nc.jetstream()

# %% [markdown]
# The lesson's services live in `edalab.course.saga`; its ORDERS stream holds three
# domains: `order.>`, `stock.>` and `billing.>`.

# %%
from edalab.course import saga

await saga.setup(js)
(await js.stream_info("ORDERS")).config.subjects

# %% [markdown]
# ## Commands, queries and events
#
# An **event** says what happened (`order.placed`), to whoever cares, and is stored. A
# **query** asks a service for an answer now; a **command** tells one service to do
# something. Here both are request-reply: the request goes to every subscriber of the
# subject and the requester keeps the first reply, so a service that must answer (or act)
# once subscribes in a **queue group**. Here is a query, raw nats-py: a responder and a
# request.

# %%
import json

levels = {"tea": 12, "cups": 0}


async def stock_level(msg):
    sku = json.loads(msg.data)["sku"]
    await msg.respond(json.dumps({"sku": sku, "level": levels.get(sku, 0)}).encode())


responder = await nc.subscribe("svc.stock.level", queue="stock", cb=stock_level)
reply = await nc.request("svc.stock.level", b'{"sku": "tea"}', timeout=2)
json.loads(reply.data)

# %% [markdown]
# Why a command over request-reply is not an event: nothing stores it (the stream
# captures no `svc.` subject, so a new service cannot replay it), and it reaches only the
# services listening at that moment. When nobody listens at all, nats-py says so at once
# (the server's "no responders" status, over a connection with headers, nats-py's
# default). A responder that is there but slow or crashed gives a timeout instead, and
# then the sender cannot know whether the command was done: it must retry with the same
# key, so the command has to be idempotent. (Commands that must not be lost are often
# published to a work-queue stream instead; notebook 04 shows one.)

# %%
import nats.errors

await responder.unsubscribe()
try:
    await nc.request("svc.stock.level", b'{"sku": "tea"}', timeout=2)
except nats.errors.NoRespondersError:
    print("no responders: nobody got the request, and nothing remembers it was asked")

# %% [markdown]
# ## The dual-write problem
#
# A service keeps orders in its own database and announces each with an event. Written
# naively it makes two writes: commit the row, then publish. A crash between them keeps
# the row and loses the event. Here is a real SQLite database, and a crash simulated by
# an exception after the commit.

# %%
import sqlite3
import tempfile
from pathlib import Path

db = sqlite3.connect(Path(tempfile.mkdtemp()) / "orders.db")
with db:
    db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, amount_cents INTEGER)")


class Crash(Exception):
    """The process dies here."""


# %%
from edalab import Event, publish_event


async def place_naively(order_id, amount_cents, *, crash=False):
    with db:  # ON CONFLICT DO NOTHING: placing an order again keeps one row
        db.execute(
            "INSERT INTO orders VALUES (?, ?) ON CONFLICT DO NOTHING", (order_id, amount_cents)
        )
    if crash:
        raise Crash(f"died after committing {order_id}, before publishing")
    event = Event.create("order.placed", {"order_id": order_id}, id=f"order-{order_id}")
    await publish_event(js, event)


try:
    await place_naively("n1", 900, crash=True)
except Crash as err:
    print(err)

# %% [markdown]
# The database has the order; the stream has no event for it, and no one will ever know.

# %%
from edalab import stream_messages


async def stored_ids():
    return [json.loads(raw.data)["id"] async for _, raw in stream_messages(js, "ORDERS")]


db.execute("SELECT id FROM orders").fetchall(), await stored_ids()

# %% [markdown]
# ## The transactional outbox
#
# The fix is one write: the order row and its event go into the same database, in the
# **same transaction**. A relay then publishes the outbox's rows in order, each with
# `Nats-Msg-Id` set to the event id, and marks them sent after the `PubAck`.

# %%
from edalab import Outbox, OutboxRelay

outbox = Outbox(db)


def place(order_id, amount_cents):
    with db:  # one transaction: both rows, or neither (sqlite3's default transactions)
        db.execute(
            "INSERT INTO orders VALUES (?, ?) ON CONFLICT DO NOTHING", (order_id, amount_cents)
        )
        outbox.add(Event.create("order.placed", {"order_id": order_id}, id=f"order-{order_id}"))


place("o1", 900)
place("o2", 1200)
outbox.counts()

# %% [markdown]
# Now the relay crashes: it publishes the pending events and dies before marking them.

# %%
relay = OutboxRelay(outbox, js)
published = await relay.publish_pending()  # ... and the process dies here
[(row.event.id, ack.seq, ack.duplicate) for row, ack in published], outbox.counts()

# %% [markdown]
# A new relay starts and publishes the two rows again: same event ids, so the stream's
# duplicate window drops the repeats (`duplicate=True`, same sequence). Nothing lost,
# nothing stored twice, as long as the relay is back within the stream's
# `duplicate_window` (two minutes by default).

# %%
acks = await OutboxRelay(outbox, js).relay_once()
[(a.seq, a.duplicate) for a in acks], outbox.counts(), await stored_ids()

# %% [markdown]
# ## Deterministic ids, correlation, causation and a trace
#
# A service that reacts to an event and publishes another makes a *derived* event. If
# it gave that event a fresh random id, a redelivered cause would produce a second,
# different event that `Nats-Msg-Id` dedup cannot recognise. So the derived id is
# computed from the cause: `derived_id(cause_id, kind)` is a UUIDv5, the same on every run.
# The stream drops the repeat only within its duplicate window (two minutes by default);
# a redelivery later than that, or a replay from the start, publishes it again, so
# consumers still deduplicate by event id (notebook 10).

# %%
from edalab import derived_id

derived_id("order-o1", "stock.reserved") == derived_id("order-o1", "stock.reserved")

# %% [markdown]
# Every event of one flow also carries headers: `Correlation-Id` (the flow's first
# event), `Causation-Id` (the event that caused this one) and a W3C `traceparent`
# (`00-<trace id>-<span id>-01`): one trace id from the first publish to the last
# handler, a new span per hop. `saga.place_order` starts a trace; `saga.emit` derives
# each next event. Let the choreography run two orders: one within the card limit, one
# above it.

# %%
await saga.setup(js)
choreography = saga.Choreography(js)
await choreography.start()
await saga.place_order(js, "o1", amount_cents=900)
await saga.place_order(js, "o2", amount_cents=9000)
await choreography.settle()
await saga.outcomes(js)

# %% [markdown]
# Order `o1`'s trace, read back from the headers the stream stored:

# %%
from edalab import CAUSATION_ID, CORRELATION_ID, TraceContext
from edalab.course.charts.trace import Hop, draw_trace


async def flow(correlation_id):
    hops = []
    async for seq, raw in stream_messages(js, "ORDERS"):
        headers = raw.headers or {}
        if headers.get(CORRELATION_ID) == correlation_id:
            trace = TraceContext.parse(headers["traceparent"])
            event_id = json.loads(raw.data)["id"]
            hops.append(
                Hop(
                    seq,
                    raw.subject,
                    event_id,
                    headers.get(CAUSATION_ID),
                    trace.trace_id,
                    trace.parent_id,
                )
            )
    return hops


hops = await flow("order-o1")
caused_by_previous = [
    h.causation_id == (hops[i - 1].event_id if i else None) for i, h in enumerate(hops)
]
[h.subject for h in hops], caused_by_previous, len({h.trace_id for h in hops})

# %%
fig = draw_trace(hops)

# %% [markdown]
# Trace ids and span ids are **random**, unlike event ids. They do a different job: an
# event id names a fact, so a redelivered cause must give the same derived id; a span
# names one run of a handler, so a handler that runs twice for a redelivery made two
# spans, and the trace shows both. The W3C Trace Context spec also asks for random trace
# ids: one computed from an order id would be guessable from business data. So a
# service never recomputes a trace; it reads it from the message's `traceparent`, as
# `saga.emit` does. Two runs of billing for the same `stock.reserved`:

# %%
reserved = TraceContext(hops[1].trace_id, hops[1].span_id)  # stock.reserved's span
first_run, second_run = reserved.child("billing"), reserved.child("billing")
charged_id = derived_id(hops[1].event_id, "billing.charged")
(
    first_run.trace_id == second_run.trace_id == reserved.trace_id,
    first_run.parent_id != second_run.parent_id,
    [len(part) for part in first_run.traceparent.split("-")],
    charged_id == derived_id(hops[1].event_id, "billing.charged"),
)

# %% [markdown]
# A redelivered `stock.reserved` makes billing publish `billing.charged` again: same
# cause, same derived id, so the stream keeps one (inside the duplicate window). The
# handler did run twice: any effect outside the stream (charging a card) needs its own
# idempotency key, and this one is ready-made: the derived id.

# %%
again = Event.create(
    "billing.charged", {"order_id": "o1"}, id=derived_id(hops[1].event_id, "billing.charged")
)
ack = await publish_event(js, again)
ack.duplicate, [h.subject for h in await flow("order-o1")].count("billing.charged")

# %% [markdown]
# ## One saga, two ways
#
# Order `o2` was declined. Nothing in an event log is rolled back: the saga
# **compensates**, a new action that undoes an earlier one (release the stock). Above,
# in **choreography**, nobody was in charge: stock, billing and orders each reacted to
# events. Here is how stock reacts, both to an order and to a declined payment:

# %%
import inspect

from IPython.display import Code

Code(inspect.getsource(saga.Choreography.on_stock), language="python")

# %%
choreography.stock, choreography.billing

# %% [markdown]
# In **orchestration**, one coordinator owns the saga: it reacts to `order.placed`, sends
# *commands* to the same services (request-reply, `cmd.stock.reserve`,
# `cmd.billing.charge`, `cmd.stock.release`) and decides each next step.

# %%
Code(inspect.getsource(saga.Orchestration.coordinate), language="python")

# %%
await choreography.stop()
await saga.setup(js)
orchestration = saga.Orchestration(js, nc)
await orchestration.start()
await saga.place_order(js, "o1", amount_cents=900)
await saga.place_order(js, "o2", amount_cents=9000)
await orchestration.settle()
await orchestration.stop()
await saga.outcomes(js), orchestration.stock, orchestration.billing

# %% [markdown]
# Same outcomes. Choreography keeps services independent, but the flow exists only as
# the sum of their reactions. Orchestration makes the flow one readable function, at the
# price of a coordinator that knows every service's commands and must itself be up and
# correct; and because its commands here are request-reply, every service must be up at
# the same time (in choreography an event simply waits in the stream for a service that
# is down). Either way every step must be idempotent: a crash redelivers the event the
# crashed service was handling (for the coordinator that is `order.placed`, so its saga
# runs again from the top). `Stock` and `Billing` keep their idempotency in memory here;
# a real service keeps it durable (notebook 10's key-value `create`).
#
# ## Optimistic concurrency for an aggregate
#
# An event-sourced account is the events on its subjects, `account.<id>.*`. A writer
# reads the account, decides, and appends, saying which stream sequence it last saw in
# `Nats-Expected-Last-Subject-Sequence`. The server stores the event only if the last
# message on the subject named by `Nats-Expected-Last-Subject-Sequence-Subject` (here a
# wildcard: the whole account; nats-server 2.11+) is still at that sequence; `0` means
# "none yet". Without the second header the check covers only the subject being published
# to. Raw nats-py:

# %%
from edalab.course import fresh_stream

await fresh_stream(js, "ACCOUNTS", ["account.>"])


def expecting(seq):
    return {
        "Nats-Expected-Last-Subject-Sequence": str(seq),
        "Nats-Expected-Last-Subject-Sequence-Subject": "account.a1.>",
    }


opened = await js.publish("account.a1.opened", b'{"balance": 100}', headers=expecting(0))
opened.seq

# %% [markdown]
# Two tellers read the account at that sequence and both withdraw 80. The first append
# wins; the second is refused with JetStream's "wrong last sequence" (error 10071; a
# clustered stream may say 10164): no lock, and no lost update.

# %%
import nats.js.errors

for teller in ("first", "second"):
    try:
        ack = await js.publish(
            "account.a1.withdrawn", b'{"amount": 80}', headers=expecting(opened.seq)
        )
        print(teller, "appended at", ack.seq)
    except nats.js.errors.APIError as err:
        print(teller, "refused:", err.err_code, err.description)

# %% [markdown]
# `edalab.append` wraps it: it checks the whole aggregate (every subject of
# `account.a1.>`, with `Nats-Expected-Last-Subject-Sequence-Subject`) and raises a typed
# `ConcurrencyConflict`. The loser reloads, sees a balance of 20, and decides again.

# %%
from edalab import ConcurrencyConflict, aggregate_version, append

withdraw = Event.create("account.withdrawn", {"amount": 80}, id="w-2")
try:
    await append(
        js, "account.a1.withdrawn", withdraw, expected=opened.seq, aggregate="account.a1.>"
    )
except ConcurrencyConflict as err:
    print(err)
await aggregate_version(js, "ACCOUNTS", "account.a1.>")

# %% [markdown]
# ## A key-value read model, kept current by a watch
#
# A projector writes each order's status to a key-value bucket; a reader watches the
# bucket and keeps its own copy current, without polling.

# %%
kv = await js.create_key_value(bucket="order-status")
watcher = await kv.watchall()
statuses = {}


async def follow(expected):
    while len(statuses) < expected:
        entry = await watcher.updates(timeout=5)  # None marks "caught up with the bucket"
        if entry is None:
            continue
        if entry.operation in ("DEL", "PURGE"):  # a deleted key leaves the read model
            statuses.pop(entry.key, None)
        else:
            statuses[entry.key] = entry.value.decode()


finished = await saga.outcomes(js)
for order_id, outcome in finished.items():
    await kv.put(order_id, outcome[0].split(".")[1].encode())
await follow(len(finished))
statuses

# %%
await watcher.stop()
await js.delete_key_value("order-status")

# %% [markdown]
# ## The envelope as a CloudEvents 1.0 event
#
# CloudEvents standardises the envelope every event system reinvents; `Event` maps onto
# it one to one (`time` is the timestamp, optional in CloudEvents but not in our
# envelope; `version` travels as the extension `dataversion`; CloudEvents requires a
# `source`). *Structured* mode puts the whole event in the body, and says so in a
# header, `Content-Type: application/cloudevents+json`:

# %%
from datetime import UTC, datetime

from edalab import from_binary, from_message, from_structured, to_binary, to_structured

event = Event(
    id="e-1",
    type="order.placed",
    data={"order_id": "o9"},
    source="/shop/orders",
    timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)
structured_headers, structured_body = to_structured(event)
structured_headers, json.loads(structured_body)

# %% [markdown]
# *Binary* mode puts each attribute in a `ce-` header (`datacontenttype` too) and only
# the data in the body. The released NATS binding (1.0.2) defines structured mode only,
# in text that predates NATS headers. Its working draft adds binary mode, as the Go
# SDK's JetStream binding does, and tells a receiver how to tell the two apart: a
# message whose `Content-Type` starts with `application/cloudevents` is structured,
# **any other is binary**. A structured event published without that header would be
# misread. Both go through the stream, and `from_message` reads each by its header:

# %%
headers, body = to_binary(event)
await js.publish("order.placed", body, headers=headers)
as_binary = await js.get_last_msg("ORDERS", "order.placed")
await js.publish("order.placed", structured_body, headers=structured_headers)
as_structured = await js.get_last_msg("ORDERS", "order.placed")
(
    sorted(headers),
    from_binary(as_binary.headers, as_binary.data) == event,
    from_structured(as_structured.data) == event,
    [from_message(m.headers, m.data) == event for m in (as_binary, as_structured)],
)

# %% [markdown]
# A receiver also unquotes a double-quoted header value before it percent-decodes it:
# older drafts allowed `ce-id: "e-1"`, and the draft says receivers must still accept it:

# %%
from_binary({**headers, "ce-id": '"e-1"'}, body) == event

# %% [markdown]
# ## Recap
#
# - Events are stored facts for anyone; commands and queries are request-reply to one
#   responder, remembered by no one.
# - Commit and publish are two writes: the outbox makes them one, and `Nats-Msg-Id` makes
#   a relay's resend harmless (within the duplicate window).
# - Derive ids from causes; carry correlation, causation and `traceparent` on every hop.
# - Sagas compensate instead of rolling back; choreography spreads the flow over the
#   services, orchestration puts it in one place.
# - `Nats-Expected-Last-Subject-Sequence` turns appends into optimistic concurrency.
# - CloudEvents is the envelope, in the body (structured) or in headers (binary).
#
# ## Exercise
#
# The cell below places order `ex16` (`placed`), names the id of the `stock.reserved`
# event that stock would derive from it (`reserved_id`) and the order's trace, read from
# its stored `traceparent` (`order_trace`). Write billing's handler,
# `async def on_reserved(cause_id)`, which publishes `billing.charged` for the order,
# and call it **twice** with `reserved_id` (a redelivery). The stream must store `billing.charged` for `ex16` **once**, with the
# flow's `Correlation-Id` (the order event's id), a `Causation-Id` naming the
# `stock.reserved` event, and a `traceparent` in the order's trace (hint: `derived_id`,
# `flow_headers` from `edalab`, `order_trace.child(...)`). Then run the check.

# %%
await saga.setup(js)
placed = await saga.place_order(js, "ex16", amount_cents=700)
reserved_id = derived_id(placed.id, "stock.reserved")
order_trace = TraceContext.from_headers((await js.get_last_msg("ORDERS", "order.placed")).headers)

# %% tags=["solution"]
from edalab import flow_headers


async def on_reserved(cause_id):
    event = Event.create(
        "billing.charged", {"order_id": "ex16"}, id=derived_id(cause_id, "billing.charged")
    )
    # (saga.emit takes the span from the cause's own headers; here the order's trace.)
    headers = flow_headers(
        order_trace.child("billing"), correlation_id=placed.id, causation_id=cause_id
    )
    await publish_event(js, event, headers=headers)


await on_reserved(reserved_id)
await on_reserved(reserved_id)  # the redelivery

# %%
from edalab.course import check, hint  # stuck? hint("16") in a new cell

await check("16", js)
