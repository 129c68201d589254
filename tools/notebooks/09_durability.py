# %% [markdown]
# # 09 · Durability
#
# **About 25 minutes.** Needs 03 Publishing (`PubAck` and `Nats-Msg-Id` deduplication).
# One notebook at a time; when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - know what a `PubAck` promises, and what it does not;
# - know what `sync_interval` protects against: `fsync` every two minutes by default,
#   or `always`, on each write;
# - kill -9 the server in the middle of a stream of publishes and lose nothing that was
#   acknowledged;
# - retry a publish with the same `Nats-Msg-Id`, so that a retry within the stream's
#   duplicate window is never stored twice.
#
# > **From NATS Streaming.** The seed tutorial promised that events are never lost, even
# > when services go down: STAN stored messages and the publisher waited for an ack.
# > JetStream does the same, with one difference in what the ack means: STAN's default
# > store was memory, but its file store `fsync`ed before acking (`file_sync`, on by
# > default), while JetStream acks after a `write` and `fsync`s every two minutes by
# > default. This notebook checks the promise with a real crash.
#
# This lesson kills its server, so it starts one of its own (file storage, default
# settings).

# %%
import asyncio
import json
import urllib.request

from edalab import EventFactory, connect, publish_events
from edalab.course import fresh_stream, lesson_server

srv = lesson_server("09")
nc = await connect(srv.url, max_reconnect_attempts=-1)
js = nc.jetstream()
make = EventFactory(prefix="pay-")
await fresh_stream(js, "PAYMENTS", ["payment.>"])

# %% [markdown]
# ## What a PubAck means
#
# A JetStream publish waits for the server's answer, the `PubAck`: the stream that
# stored the message and its sequence there.

# %%
ack = await js.publish("payment.captured", make("payment.captured", {"n": 0}).to_json())
ack

# %% [markdown]
# What "stored" means depends on the stream's retention. A limits or work-queue stream
# keeps the message (until a limit, or the ack of a work-queue job, removes it). An
# **interest** stream keeps a message only for consumers that want its subject: with
# none, it answers with a `PubAck` and a sequence, and keeps nothing (notebook 04 showed
# the same). So a `PubAck` says "the stream accepted this, and stored it if its
# retention had any reason to":

# %%
from nats.js.api import RetentionPolicy

await fresh_stream(js, "NOTICES", ["notice.>"], retention=RetentionPolicy.INTEREST)
notice = await js.publish("notice.sent", b"hello")
notice.stream, notice.seq, (await js.stream_info("NOTICES")).state.messages

# %% [markdown]
# On a single server with a file-backed stream, the server has written the message to
# its file (a `write` to the operating system) before it answers. It has **not**
# necessarily forced it onto the disk (`fsync`): that happens every `sync_interval`,
# two minutes by default. This server's own settings, from its monitoring endpoint:

# %%
varz = json.load(urllib.request.urlopen(f"{srv.monitor_url}/varz"))
config = varz["jetstream"]["config"]
config["sync_interval"] / 1e9, config.get("sync_always", False)

# %% [markdown]
# So:
#
# - a *process* crash (even `kill -9`) loses nothing acknowledged: the data is in the
#   operating system's cache, which reaches the disk anyway (Jepsen found a clustering
#   bug in 2.10.20 to 2.10.22 that could delete a replicated stream after process
#   crashes; 2.10.23 fixed it);
# - an *operating-system* crash or a power cut can lose what was acknowledged since the
#   last `fsync`, up to two minutes of it. The NATS documentation says so for a single
#   server; Jepsen's 2025 analysis of NATS 2.12.1 lost acknowledged writes in a
#   replicated cluster too, after coordinated power failures, or after an OS crash on a
#   single node combined with network delays or process pauses.
#
# `sync_interval: always` makes the server `fsync` on every write, before it
# acknowledges: slower, and safe against power loss. A server started so:

# %%
safe = lesson_server("09-always", sync_interval="always")
varz = json.load(urllib.request.urlopen(f"{safe.monitor_url}/varz"))
varz["jetstream"]["config"].get("sync_always", False)

# %%
print(safe.config_file.read_text().replace(str(safe.store_dir), "<store>"))

# %%
safe.stop()

# %% [markdown]
# ## A retry with the same Nats-Msg-Id is stored once
#
# When an ack does not come (the server died, the network dropped it), the publisher
# cannot know whether the message was stored. It sends it again, with the same
# `Nats-Msg-Id` header: within the stream's duplicate window (two minutes by default)
# the server stores it once and answers `duplicate` to the retry.

# %%
event = make("payment.captured", {"n": 1})
headers = {"Nats-Msg-Id": event.id}
first = await js.publish("payment.captured", event.to_json(), headers=headers)
retry = await js.publish("payment.captured", event.to_json(), headers=headers)
first.seq, retry.seq, retry.duplicate

# %% [markdown]
# `publish_events(js, events, retry_for=...)` does this for you: each event's id is its
# `Nats-Msg-Id`, and an event whose ack does not come is sent again until `retry_for`
# seconds have passed. Keep `retry_for` well below the stream's duplicate window: a
# retry that comes after it is stored a second time. The window is two minutes unless
# the stream sets `duplicate_window`, or has a shorter `max_age`; in seconds:

# %%
(await js.stream_info("PAYMENTS")).config.duplicate_window

# %% [markdown]
# ## Kill the server while publishing
#
# A publisher sends 3,000 payment events in chunks. After the first thousand are
# acknowledged we `kill -9` the server, then start it again on the same store and
# port. The client reconnects by itself.

# %%
await fresh_stream(js, "PAYMENTS", ["payment.>"])
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
# Read the whole stream back and count each event id (`stored_event_ids` reads the
# stream from start to end; `loss_report` compares it with what was published):

# %%
from edalab import stored_event_ids
from edalab.course import loss_report

loss_report(events, len(acked), await stored_event_ids(js, "PAYMENTS"))

# %% [markdown]
# Some publishes may have been in flight when the server died: some may have been
# stored with their acknowledgement lost, others may never have arrived. Retrying with
# the same `Nats-Msg-Id` covers both: the server stores the missing ones and answers
# `duplicate` for the others. Nothing acknowledged was lost: the process died, the operating system did not.
#
# ## Recap
#
# - A `PubAck` means the stream accepted the message: a limits or work-queue stream
#   stored it, an interest stream stored it only if some consumer wants its subject
#   (with none, it acks and keeps nothing), and `duplicate=True` means an earlier copy
#   was accepted and this one dropped. On one server what was stored has been written to the
#   file, and is `fsync`ed within `sync_interval` (two minutes by default).
# - `kill -9` loses nothing acknowledged; an OS crash or power cut can, unless
#   `sync_interval: always`.
# - A publisher that did not get its ack retries with the same `Nats-Msg-Id`; the
#   server drops the duplicate within the duplicate window.
#
# ## Exercise
#
# Create a stream `LEDGER` (subjects `ledger.>`, file storage) and publish the 200
# events of `entries`. Kill the server (`srv.kill()`, then
# `await asyncio.to_thread(srv.start)`) after the first 100 are acknowledged, then, as
# a publisher that cannot know which of its messages landed, send **all 200 again**.
# The checker reads `LEDGER`: every entry stored exactly once, each with its
# `Nats-Msg-Id`.

# %%
entries = [make("ledger.entry", {"n": i}) for i in range(200)]

# %% tags=["solution"]
await fresh_stream(js, "LEDGER", ["ledger.>"])
await publish_events(js, entries[:100])
srv.kill()
await asyncio.to_thread(srv.start)
acks = await publish_events(js, entries, retry_for=30)
sum(bool(a.duplicate) for a in acks)

# %%
from edalab.course import check, hint  # stuck? hint("09") in a new cell

await check("09", js)
