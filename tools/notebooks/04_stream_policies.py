# %% [markdown]
# # 04 · Stream policies
#
# **About 40 minutes.** Needs 03 Publishing (streams and `PubAck`). One notebook at a
# time; when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - choose a stream's **retention**: limits, interest or work queue, and see when each
#   one deletes a message;
# - set the **limits** `max_msgs`, `max_bytes`, `max_age`, `max_msgs_per_subject` and
#   `max_msg_size`, and watch each one being hit;
# - choose what happens when a limit is hit: **discard old** or **discard new**, and
#   recognise the error a publisher gets from a full `discard: new` stream;
# - give single messages their own lifetime with a **per-message TTL**, and let
#   consumers hear about expired messages through **subject delete markers**.
#
# > **From NATS Streaming.** A STAN channel had limits too (`max_msgs`, `max_bytes`,
# > `max_age` in the server's configuration), always discarding the oldest messages.
# > JetStream puts them on each stream, adds per-subject limits, per-message TTLs and
# > discard-new, and lets a stream delete what its consumers have acknowledged.

# %%
from edalab import connect, ensure_server
from edalab.course import fresh_stream, state_change

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()

# %% [markdown]
# Every table below shows one stream's state before and after the cell acted on it.
# To read a stream, this lesson uses a consumer in its simplest form (notebook 05
# explains consumers properly): `js.pull_subscribe` creates one, `fetch(n)` takes up to
# `n` messages, and `ack_sync()` acknowledges one and waits until the server has it.
#
# ## Retention: limits (the default)
#
# A **limits** stream keeps a message until a limit removes it. Reading and acknowledging
# it changes nothing:

# %%
await fresh_stream(js, "LOG", ["log.>"])
before = await js.stream_info("LOG")
for i in range(3):
    await js.publish("log.app", f"line {i}".encode())
after_publish = await js.stream_info("LOG")
state_change(before, after_publish)

# %%
sub = await js.pull_subscribe("log.>", durable="reader", stream="LOG")
for msg in await sub.fetch(3, timeout=5):
    await msg.ack_sync()
state_change(after_publish, await js.stream_info("LOG"))

# %% [markdown]
# ## Retention: interest
#
# An **interest** stream keeps a message only while some consumer still has to
# acknowledge it. With no consumer at all, nobody is interested: the message is not kept.

# %%
from nats.js.api import RetentionPolicy

await fresh_stream(js, "ALERTS", ["alert.>"], retention=RetentionPolicy.INTEREST)
before = await js.stream_info("ALERTS")
await js.publish("alert.disk", b"disk 91% full")
state_change(before, await js.stream_info("ALERTS"))

# %% [markdown]
# With two consumers, a message stays until **both** have acknowledged it:

# %%
pager = await js.pull_subscribe("alert.>", durable="pager", stream="ALERTS")
mailer = await js.pull_subscribe("alert.>", durable="mailer", stream="ALERTS")
await js.publish("alert.cpu", b"cpu 99%")
stored = await js.stream_info("ALERTS")
stored.state.messages

# %%
[msg] = await pager.fetch(1, timeout=5)
await msg.ack_sync()
pager_acked = await js.stream_info("ALERTS")
state_change(stored, pager_acked)

# %%
[msg] = await mailer.fetch(1, timeout=5)
await msg.ack_sync()
state_change(pager_acked, await js.stream_info("ALERTS"))

# %% [markdown]
# ## Retention: work queue
#
# A **work-queue** stream deletes a message as soon as it is acknowledged, and each
# message goes to one consumer only. Workers that pull from the **same** consumer share
# the jobs: each job goes to one worker at a time. That is what STAN's `QueueSubscribe`
# gave a group of subscribers, now with the jobs stored until done (a STAN channel kept
# them after delivery too, until its limits removed them).

# %%
await fresh_stream(js, "JOBS", ["job.>"], retention=RetentionPolicy.WORK_QUEUE)
for i in range(6):
    await js.publish("job.resize", f"image-{i}".encode())
stored = await js.stream_info("JOBS")
stored.state.messages

# %%
worker_a = await js.pull_subscribe("job.>", durable="workers", stream="JOBS")
worker_b = await js.pull_subscribe("job.>", durable="workers", stream="JOBS")
done = {"a": await worker_a.fetch(3, timeout=5), "b": await worker_b.fetch(3, timeout=5)}
{name: [msg.data.decode() for msg in batch] for name, batch in done.items()}

# %%
for msg in done["a"] + done["b"]:
    await msg.ack_sync()
state_change(stored, await js.stream_info("JOBS"))

# %% [markdown]
# One worker at a time is not "done once": a work queue delivers **at least once**. A
# job whose worker does not acknowledge it within the consumer's `ack_wait` (30 seconds
# by default) is delivered again, to whichever worker asks next, so a worker that
# crashed after doing the job but before acking has the job done twice. Notebook 10
# makes handlers safe for that. Here with `ack_wait=1`, a worker that never acks:

# %%
from nats.js.api import ConsumerConfig

await fresh_stream(js, "JOBS", ["job.>"], retention=RetentionPolicy.WORK_QUEUE)
await js.publish("job.resize", b"image-7")
config = ConsumerConfig(ack_wait=1)
workers = await js.pull_subscribe("job.>", durable="workers", stream="JOBS", config=config)
[job] = await workers.fetch(1, timeout=5)  # taken, never acknowledged
[again] = await workers.fetch(1, timeout=10)  # about one second later
await again.ack_sync()
again.data == job.data, again.metadata.num_delivered

# %% [markdown]
# Because a job must go to exactly one consumer, the server refuses a **second
# consumer** whose filter overlaps the first one's (here `job.resize` is inside `job.>`):

# %% tags=["raises-exception"]
await js.add_consumer("JOBS", ConsumerConfig(durable_name="resizer", filter_subject="job.resize"))

# %% [markdown]
# The JetStream API error code says which rule was broken; consumers with **disjoint**
# filters are allowed, each owning its part of the queue:

# %%
import nats.js.errors

try:
    await js.add_consumer(
        "JOBS", ConsumerConfig(durable_name="resizer", filter_subject="job.resize")
    )
except nats.js.errors.BadRequestError as err:
    refused = (err.code, err.err_code, err.description)
refused

# %%
await fresh_stream(js, "JOBS", ["job.>"], retention=RetentionPolicy.WORK_QUEUE)
for name in ("resize", "email"):
    await js.add_consumer("JOBS", ConsumerConfig(durable_name=name, filter_subject=f"job.{name}"))
sorted(c.name for c in await js.consumers_info("JOBS"))

# %% [markdown]
# ## Limits: `max_msgs` with discard old
#
# A limit says how much the stream may hold; **discard old** (the default) makes room by
# deleting the oldest messages. Five messages into a stream of three: the first two go.

# %%
await fresh_stream(js, "RECENT", ["recent"], max_msgs=3)
before = await js.stream_info("RECENT")
for i in range(5):
    await js.publish("recent", f"reading {i}".encode())
state_change(before, await js.stream_info("RECENT"))

# %% [markdown]
# ## `max_bytes`
#
# Bytes count each stored record, not only the payload: on the file store a message
# with no headers takes `30 + len(subject) + len(payload)` bytes. So 100-byte payloads on
# subject `blob` take 134 bytes each, and a 500-byte stream holds three of them:

# %%
await fresh_stream(js, "BLOBS", ["blob"], max_bytes=500)
before = await js.stream_info("BLOBS")
for _ in range(5):
    await js.publish("blob", bytes(100))
state_change(before, await js.stream_info("BLOBS"))

# %% [markdown]
# ## `max_age`
#
# Messages older than `max_age` (seconds in nats-py) are removed by the server in the
# background. We do not sleep for it: `wait_for` asks the server until the stream is
# empty, and fails loudly if that takes more than ten seconds.

# %%
from edalab import wait_for

await fresh_stream(js, "FRESH", ["fresh"], max_age=2.0)
for i in range(2):
    await js.publish("fresh", f"quote {i}".encode())
before = await js.stream_info("FRESH")


async def emptied():
    return (await js.stream_info("FRESH")).state.messages == 0


await wait_for(emptied, timeout=10, what="FRESH to age out its messages")
state_change(before, await js.stream_info("FRESH"))

# %% [markdown]
# ## `max_msgs_per_subject`: the last value per key
#
# With `max_msgs_per_subject=1`, each subject keeps only its newest message: put the key
# in the subject (`quote.AAPL`) and the stream is a table of current values.

# %%
await fresh_stream(js, "QUOTES", ["quote.*"], max_msgs_per_subject=1)
before = await js.stream_info("QUOTES")
updates = [("AAPL", 190), ("MSFT", 410), ("AAPL", 191), ("AAPL", 189), ("MSFT", 412)]
for symbol, price in updates:
    await js.publish(f"quote.{symbol}", str(price).encode())
state_change(before, await js.stream_info("QUOTES"))

# %% [markdown]
# `js.get_last_msg` reads the current value of one key without a consumer:

# %%
{s: (await js.get_last_msg("QUOTES", f"quote.{s}")).data.decode() for s in ("AAPL", "MSFT")}

# %% [markdown]
# ## `max_msg_size`
#
# A message larger than `max_msg_size` bytes is refused outright, whatever the discard
# policy, and the stream does not change:

# %%
await fresh_stream(js, "UPLOADS", ["upload"], max_msg_size=1024)
before = await js.stream_info("UPLOADS")

# %% tags=["raises-exception"]
await js.publish("upload", bytes(2048))

# %%
state_change(before, await js.stream_info("UPLOADS"))

# %% [markdown]
# ## Discard new: the publisher is told
#
# With `discard=new`, a full stream keeps what it has and **refuses** the new message.
# The publisher gets an error instead of a `PubAck`, so nothing is lost silently: it
# can slow down, alert, or try later.

# %%
from nats.js.api import DiscardPolicy

await fresh_stream(js, "TICKETS", ["ticket"], max_msgs=3, discard=DiscardPolicy.NEW)
before = await js.stream_info("TICKETS")
for i in range(3):
    await js.publish("ticket", f"seat {i}".encode())
full = await js.stream_info("TICKETS")
state_change(before, full)

# %% tags=["raises-exception"]
await js.publish("ticket", b"seat 3")

# %% [markdown]
# The error is a `ServiceUnavailableError` (status 503, API error code 10077). Note
# that the same status also means "JetStream is not ready": a publisher that retries
# every 503 would retry this one forever, so look at the description too.

# %%
try:
    await js.publish("ticket", b"seat 3")
except nats.js.errors.ServiceUnavailableError as err:
    refused = (err.code, err.err_code, err.description)
refused, state_change(full, await js.stream_info("TICKETS"))

# %% [markdown]
# Only the limits that count or weigh what is stored refuse: `max_msgs` and `max_bytes`.
# `max_age` never refuses a publish, `discard=new` or not: it only removes what has grown
# too old, and so makes room. Two messages fill this stream; the third is refused by
# `max_msgs`, and once the two have aged out, the same publish is accepted:

# %%
await fresh_stream(js, "STAMPS", ["stamp"], max_msgs=2, max_age=1.0, discard=DiscardPolicy.NEW)
for i in range(2):
    await js.publish("stamp", f"stamp {i}".encode())
try:
    await js.publish("stamp", b"stamp 2")
except nats.js.errors.ServiceUnavailableError as err:
    refused = err.description


async def stamps_aged_out():
    return (await js.stream_info("STAMPS")).state.messages == 0


await wait_for(stamps_aged_out, timeout=10, what="STAMPS to age out its messages")
refused, (await js.publish("stamp", b"stamp 2")).seq

# %% [markdown]
# `max_msgs_per_subject` does not refuse under `discard=new` either: the subject's
# oldest message still goes. Two holders for one seat, and the second one wins:

# %%
await fresh_stream(js, "SEATS", ["seat.*"], max_msgs_per_subject=1, discard=DiscardPolicy.NEW)
for holder in (b"ana", b"ben"):
    await js.publish("seat.12A", holder)
(await js.get_last_msg("SEATS", "seat.12A")).data, (await js.stream_info("SEATS")).state.messages

# %% [markdown]
# To refuse per subject, set `discard_new_per_subject=True` as well (it needs
# `discard=new` and a `max_msgs_per_subject`): now the first holder keeps the seat and
# the second publish gets an error:

# %%
await fresh_stream(
    js,
    "SEATS",
    ["seat.*"],
    max_msgs_per_subject=1,
    discard=DiscardPolicy.NEW,
    discard_new_per_subject=True,
)
await js.publish("seat.12A", b"ana")
try:
    await js.publish("seat.12A", b"ben")
except nats.js.errors.APIError as err:
    refused = (err.err_code, err.description)
refused, (await js.get_last_msg("SEATS", "seat.12A")).data

# %% [markdown]
# ## Per-message TTL (server 2.11+)
#
# A stream with `allow_msg_ttl=True` honours a `Nats-TTL` header on each message: seconds
# (`"5"`) or a duration (`"1s"`, `"1h"`), at least one second, or `"never"`. A stream
# without it refuses such messages:

# %%
await fresh_stream(js, "PLAIN", ["plain"])
try:
    await js.publish("plain", b"x", headers={"Nats-TTL": "1s"})
except nats.js.errors.BadRequestError as err:
    refused = (err.err_code, err.description)
refused

# %% [markdown]
# Here one session token lives two seconds, set with nats-py's `msg_ttl=` argument (it
# writes the same header), and the other forever, with the header `never`:

# %%
await fresh_stream(js, "SESSIONS", ["session.*"], allow_msg_ttl=True)
await js.publish("session.guest", b"token-g", msg_ttl=2)
await js.publish("session.admin", b"token-a", headers={"Nats-TTL": "never"})
before = await js.stream_info("SESSIONS")


async def guest_expired():
    return (await js.stream_info("SESSIONS")).state.messages == 1


await wait_for(guest_expired, timeout=10, what="the guest session to expire")
state_change(before, await js.stream_info("SESSIONS"))

# %%
(await js.get_last_msg("SESSIONS", "session.admin")).data

# %% [markdown]
# ## Subject delete markers (server 2.11+)
#
# A message removed by `max_age` disappears without a word: a consumer never learns
# that a key expired. With `subject_delete_marker_ttl`, the server publishes a **marker**
# on that subject when its last message ages out: an empty message whose headers say
# why (`Nats-Marker-Reason: MaxAge`) and how long the marker itself lives.

# %%
await fresh_stream(js, "PRESENCE", ["presence.*"], max_age=2.0, subject_delete_marker_ttl=60)
sub = await js.pull_subscribe("presence.*", durable="watcher", stream="PRESENCE")
await js.publish("presence.ana", b"online")
[msg] = await sub.fetch(1, timeout=5)
await msg.ack_sync()
msg.subject, msg.data, msg.headers

# %% [markdown]
# The next fetch waits until the server writes the marker, about two seconds later:

# %%
[msg] = await sub.fetch(1, timeout=10)
await msg.ack_sync()
msg.subject, msg.data, msg.headers

# %% [markdown]
# Setting a marker TTL also switches on `allow_msg_ttl` and roll-ups (the marker uses
# both), as the stream's configuration shows:

# %%
config = (await js.stream_info("PRESENCE")).config
config.allow_msg_ttl, config.allow_rollup_hdrs, config.subject_delete_marker_ttl

# %% [markdown]
# ## Recap
#
# - **Retention** says when a message may go: limits (only by limits), interest (once
#   every consumer has acknowledged it), work queue (once one consumer has acknowledged
#   it; overlapping consumers are refused). A work queue delivers at least once: a job
#   not acknowledged within `ack_wait` comes back (notebook 10).
# - **Limits** `max_msgs`, `max_bytes`, `max_age` and `max_msgs_per_subject` make room by
#   discarding the oldest messages. With `discard=new`, a full `max_msgs` or `max_bytes`
#   refuses the new message instead, with an error the publisher sees; `max_age` never
#   refuses, and `max_msgs_per_subject` still drops the subject's oldest unless
#   `discard_new_per_subject=True` is set too. `max_msg_size` always refuses.
# - `max_msgs_per_subject=1` turns a stream into a table of the last value per key.
# - `allow_msg_ttl` lets each message carry its own `Nats-TTL`; subject delete markers
#   tell consumers that a subject's last message expired.
#
# ## Exercise
#
# Create a stream `PRICES` on `price.*` that keeps only the **latest price per symbol**.
# Publish at least two prices for each of three symbols (`price.AAPL`, `price.MSFT`,
# `price.NVDA`), so that older prices were really replaced. The check also publishes two
# prices of its own to see the stream replace the first. Then check:

# %% tags=["solution"]
await fresh_stream(js, "PRICES", ["price.*"], max_msgs_per_subject=1)
for symbol in ("AAPL", "MSFT", "NVDA"):
    for price in (100, 101):
        await js.publish(f"price.{symbol}", str(price).encode())

# %%
from edalab.course import check, hint  # stuck? hint("04") in a new cell

await check("04", js)
