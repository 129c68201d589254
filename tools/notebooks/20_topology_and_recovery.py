# %% [markdown]
# # 20 · Stream topology and disaster recovery
#
# **About 40 minutes.** Needs 12 Security (users and permissions), 13 Clustering
# (replicated streams and catching up). One notebook at a time; when in doubt, Restart
# Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - keep a **mirror** as a read replica of a stream: read from it, see what it refuses,
#   and read its lag;
# - gather several streams into one with **sources**, renaming subjects on the way with a
#   subject transform;
# - share one consumer of a stream with **another account** (export and import), and see
#   what that account can and cannot do;
# - run a **leaf node** that keeps taking writes while its link to the hub is cut, and
#   watch the hub catch up when the link returns;
# - take a **snapshot** of a stream and restore it into a fresh server, every message and
#   consumer position intact.
#
# > **From NATS Streaming.** A STAN server could run with fault tolerance (an active
# > server and standbys sharing one store), with clustering (channels replicated with
# > Raft) or with partitioning (channels split between servers, not replicated); clustering
# > excluded the other two. It had nothing like mirrors, sources or leaf-node domains,
# > and no snapshot request for clients (its data lived in its store, files or a SQL
# > database, backed up as such), and no accounts: all the clients of a STAN cluster
# > shared one set of channels. In JetStream all of this belongs to the streams and to
# > the `nats-server`s themselves.
#
# The lesson starts servers of its own (five small ones, on loopback), so it disturbs
# no other notebook.
#
# ```text
#   server "20"                          server "20-accounts"
#   SALES ──mirror──▶ SALES_READ          account SHOP: INVOICES + consumer "partner"
#   SALES_EU ─┐                                │ exports: stream info, fetch, ack
#             ├─sources──▶ SALES_WORLD         ▼
#   SALES_US ─┘  (subjects renamed)      account PARTNER: imports them as $JS.SHOP.API...
#
#   server "20-leaf" (domain leaf)  ══ leaf link ══▶  server "20-hub" (domain hub)
#   STORE (store.>)          ──sources via $JS.leaf.API──▶  STORES
#
#   server "20"  SALES ──snapshot file──▶ server "20-restore"  SALES (same messages,
#                                                              same consumer positions)
# ```

# %% [markdown]
# ## A mirror: a read replica
#
# A server of the lesson's own, and a stream of sales:

# %%
import json

from edalab import connect
from edalab.course import fresh_stream, lesson_server

srv = lesson_server("20")
nc = await connect(srv.url)
js = nc.jetstream()
await fresh_stream(js, "SALES", ["sale.>"])
for n, kind in enumerate(["placed", "placed", "refunded", "placed", "shipped", "placed"]):
    await js.publish(f"sale.{kind}", json.dumps({"sale": n}).encode())
(await js.stream_info("SALES")).state.messages

# %% [markdown]
# A **mirror** is a stream whose only input is another stream: the server creates a
# consumer on the origin and copies every message, with its subject, headers and
# sequence number. With nats-py it is a `StreamConfig` whose `mirror` names the origin:

# %%
import contextlib

import nats.js.errors
from nats.js.api import StreamConfig, StreamSource

with contextlib.suppress(nats.js.errors.NotFoundError):  # a re-run starts over
    await js.delete_stream("SALES_READ")  # (even after the promotion further down)
created = await js.add_stream(StreamConfig(name="SALES_READ", mirror=StreamSource(name="SALES")))
created.config.mirror.name, created.config.subjects

# %% [markdown]
# The copy runs in the background. `wait_replicated` waits until the mirror holds the
# six sales and reports no **lag** (in its info, `mirror.lag`: how many messages of the
# origin it has yet to copy):

# %%
from edalab import wait_replicated
from edalab.course import Table

info = await wait_replicated(js, "SALES_READ", messages=6)
Table(
    ["stream", "messages", "last_seq", "mirror of", "lag"],
    [["SALES_READ", info.state.messages, info.state.last_seq, info.mirror.name, info.mirror.lag]],
)

# %% [markdown]
# It serves reads like any stream: messages by sequence, and consumers of its own (a
# reporting job can read here and leave the origin's server alone):

# %%
msg = await js.get_msg("SALES_READ", 3)
msg.subject, msg.data

# %%
reader = await js.pull_subscribe("sale.>", durable="report", stream="SALES_READ")
[m.subject for m in await reader.fetch(6, timeout=5)]

# %% [markdown]
# ## What a mirror refuses
#
# A mirror has no subjects of its own: nothing publishes into it. A publish that insists
# on the mirror (`stream=` sends the header `Nats-Expected-Stream`) reaches the stream
# that owns the subject, `SALES`, which refuses it; giving the mirror subjects, or
# pointing it at another stream, is refused too (codes from nats-server's
# `server/errors.json`):

# %%
from dataclasses import replace

cfg = (await js.stream_info("SALES_READ")).config
attempts = {
    "publish into the mirror": js.publish("sale.placed", b"{}", stream="SALES_READ"),
    "give it subjects": js.update_stream(replace(cfg, subjects=["report.>"])),
    "mirror another stream": js.update_stream(replace(cfg, mirror=StreamSource(name="OTHER"))),
}
refused = []
for attempt, call in attempts.items():
    try:
        await call
    except nats.js.errors.APIError as err:
        refused.append([attempt, err.err_code, err.description])
Table(["attempt", "err_code", "description"], refused)

# %% [markdown]
# Both streams still hold six messages: the refused publish was stored nowhere.

# %%
[(await js.stream_info(name)).state.messages for name in ("SALES", "SALES_READ")]

# %% [markdown]
# In a disaster the origin may be gone for good. Then the replica can take over:
# removing `mirror` from its configuration **promotes** it to an ordinary stream
# (nats-server 2.12+), with every message it copied. Given no subjects, it takes its
# own name as its subject, and now accepts writes:

# %%
promoted = await js.update_stream(replace(cfg, mirror=None))
ack = await js.publish("SALES_READ", b'{"sale": "after the promotion"}')
promoted.config.mirror, promoted.config.subjects, ack.stream, ack.seq

# %% [markdown]
# ## Sources: several streams into one
#
# Two regions keep their own streams. A third stream takes both as **sources**: the
# server copies each into it, in the order they arrive. Unlike a mirror, a sourcing
# stream may have subjects of its own, and each source may rename subjects on the way
# with a **subject transform** (`src` pattern, `dest` with `{{wildcard(n)}}` for the
# n-th `*`): here `eu.sale.placed` becomes `sale.placed.eu`.

# %%
from nats.js.api import SubjectTransform

await fresh_stream(js, "SALES_EU", ["eu.sale.>"])
await fresh_stream(js, "SALES_US", ["us.sale.>"])
for region in ("eu", "us"):
    for kind in ("placed", "refunded"):
        await js.publish(f"{region}.sale.{kind}", json.dumps({"region": region}).encode())


def renamed(region):
    rename = SubjectTransform(src=f"{region}.sale.*", dest=f"sale.{{{{wildcard(1)}}}}.{region}")
    return StreamSource(name=f"SALES_{region.upper()}", subject_transforms=[rename])


await js.add_stream(StreamConfig(name="SALES_WORLD", sources=[renamed("eu"), renamed("us")]))
world = await wait_replicated(js, "SALES_WORLD", messages=4)
[(s.name, s.lag) for s in sorted(world.sources, key=lambda s: s.name)]

# %% [markdown]
# The copies carry their new subjects, and a header, `Nats-Stream-Source`, that names the
# stream and sequence each came from (the order between the two regions depends on
# which copy arrived first, so they are sorted here):

# %%
copies = [await js.get_msg("SALES_WORLD", seq) for seq in range(1, 5)]
sorted((m.subject, " ".join(m.headers["Nats-Stream-Source"].split()[:2])) for m in copies)

# %% [markdown]
# New sales keep flowing in; `SALES_WORLD` gathers them from both regions as they come.
#
# ## Sharing a stream with another account
#
# An **account** is a namespace of its own: its subjects, its streams, its JetStream
# API. Nothing crosses between accounts unless one **exports** a subject and another
# **imports** it. To let a partner company read invoices, the account `SHOP` exports
# exactly three subjects: two of its JetStream API (its stream's info, and the fetch of
# one consumer, `partner`) and the subjects that consumer's messages are acked on
# (`$JS.ACK.INVOICES.partner.>`, not part of the API). `PARTNER` imports the two API
# subjects under the prefix `$JS.SHOP.API`, so they do not collide with its own
# JetStream's, and the acks under their own names. In the
# server's configuration (`share_consumer` lists the subjects, `accounts_config` writes
# the block; the users come in the next cell):

# %%
from edalab import ConfigAccount, User, accounts_config, share_consumer

exports, imports = share_consumer("SHOP", "INVOICES", "partner")
print(
    accounts_config(
        [ConfigAccount("SHOP", [], exports=exports), ConfigAccount("PARTNER", [], imports=imports)]
    )
)

# %% [markdown]
# A fetch is answered with several messages, hence `response_type: stream` on its
# export. Each account gets a user (as in lesson 12) and its own JetStream:

# %%
shop = ConfigAccount("SHOP", [User("shop", password="shop-pw")], exports=exports)
partner = ConfigAccount("PARTNER", [User("partner", password="partner-pw")], imports=imports)
acc_srv = lesson_server("20-accounts", config=accounts_config([shop, partner]))
nc_shop = await connect(acc_srv.url, user="shop", password="shop-pw")
js_shop = nc_shop.jetstream()
await fresh_stream(js_shop, "INVOICES", ["invoice.>"])
for n in range(3):
    await js_shop.publish("invoice.issued", json.dumps({"invoice": n}).encode())
shared = await js_shop.add_consumer("INVOICES", durable_name="partner", ack_policy="explicit")
shared.name, shared.num_pending

# %% [markdown]
# The partner connects to its own account. A JetStream context with the imported prefix
# reaches `SHOP`'s stream: its info, and a fetch from the shared consumer, acked:

# %%
nc_partner = await connect(acc_srv.url, user="partner", password="partner-pw")
js_on_shop = nc_partner.jetstream(prefix="$JS.SHOP.API", timeout=2)
invoices = await js_on_shop.pull_subscribe_bind("partner", "INVOICES")
fetched = await invoices.fetch(3, timeout=5)
for msg in fetched:
    await msg.ack_sync()
(await js_on_shop.stream_info("INVOICES")).state.messages, [m.data for m in fetched]

# %% [markdown]
# The acks landed in `SHOP`'s account: the consumer's ack floor moved to 3.

# %%
(await js_shop.consumer_info("INVOICES", "partner")).ack_floor.stream_seq

# %% [markdown]
# What the partner cannot do. Its own JetStream (`$JS.API`, without the prefix) has no
# stream `INVOICES`, and lists no streams at all; through the prefix, nothing but the
# two imported API subjects has a responder, so deleting the stream or reading another
# consumer finds nobody to answer (status 503, "no responders"):

# %%
own = nc_partner.jetstream(timeout=2)
attempts = {
    "delete INVOICES in its own account": own.delete_stream("INVOICES"),
    "delete INVOICES through $JS.SHOP.API": js_on_shop.delete_stream("INVOICES"),
    "read another consumer's info": js_on_shop.consumer_info("INVOICES", "billing"),
}
refused = []
for attempt, call in attempts.items():
    try:
        await call
    except nats.js.errors.APIError as err:
        refused.append([attempt, type(err).__name__, err.err_code])
Table(["attempt", "error", "err_code"], refused)

# %%
[info.config.name for info in await own.streams_info()]

# %% [markdown]
# (`ServiceUnavailableError` is how nats-py reports a request nobody answered.) The
# invoices are untouched:

# %%
(await js_shop.stream_info("INVOICES")).state.messages

# %% [markdown]
# ## A leaf node cut off from its hub
#
# A **leaf node** is a server that connects out to another (the **hub**) and extends its
# subjects, say a shop's server connected to headquarters. Each keeps its own JetStream
# **domain**; from across the link, a domain's API is `$JS.<domain>.API`. The hub
# listens for leaf nodes; the leaf names the hub in its `leafnodes.remotes`
# (`NatsServer` writes both blocks):

# %%
from edalab import wait_for

hub = lesson_server("20-hub", domain="hub", leafnode_port=0)
leaf = lesson_server("20-leaf", domain="leaf", leaf_remotes=(hub.leafnode_url,))


async def linked():
    return leaf.leaf_connections() == 1


await wait_for(linked, timeout=10, what="the leaf node to connect to the hub")
for server in (hub, leaf):
    block = "leafnodes" + server.config_file.read_text().split("leafnodes")[1]
    print(server.name, block.replace(str(hub.leafnode_port), "PORT"))

# %% [markdown]
# The shop writes to a stream on its own server; headquarters' stream `STORES` sources
# it across the link, through the leaf domain's API (an `external` source):

# %%
from nats.js.api import ExternalStream

from edalab import EventFactory, publish_events

nc_leaf = await connect(leaf.url)
js_leaf = nc_leaf.jetstream()
nc_hub = await connect(hub.url)
js_hub = nc_hub.jetstream()
await fresh_stream(js_leaf, "STORE", ["store.>"])
from_leaf = StreamSource(name="STORE", external=ExternalStream(api="$JS.leaf.API"))
await js_hub.add_stream(StreamConfig(name="STORES", sources=[from_leaf]))
make = EventFactory(prefix="store-")
before = [make("store.sale", {"n": i}) for i in range(20)]
await publish_events(js_leaf, before)
(await wait_replicated(js_hub, "STORES", messages=20)).state.messages

# %% [markdown]
# Now the link goes down: `cut_leaf_links` marks the leaf's remote `disabled` and has
# the server reload its configuration (nats-server 2.12+). The leaf's JetStream does not
# depend on the hub, so it keeps acknowledging sales:

# %%
import asyncio

await asyncio.to_thread(leaf.cut_leaf_links)
during = [make("store.sale", {"n": i}) for i in range(20, 220)]
acked = await publish_events(js_leaf, during)
at_hub = await js_hub.stream_info("STORES")
Table(
    ["links", "published in the cut", "acked by the leaf", "STORE", "STORES", "lag seen"],
    [
        [
            leaf.leaf_connections(),
            len(during),
            len(acked),
            (await js_leaf.stream_info("STORE")).state.messages,
            at_hub.state.messages,
            at_hub.sources[0].lag,
        ]
    ],
)

# %% [markdown]
# Headquarters holds the 20 sales from before the cut. Its source still reports a lag
# of 0: lag is what the hub last heard from the leaf, and it has heard nothing since the
# cut. A lag of 0 says "caught up with what I know", not "caught up": watch how long
# ago a source was last active (`active`, in nanoseconds) too.

# %% [markdown]
# The link comes back. The hub's source resumes where its copy ended (each copied
# message records its origin sequence in `Nats-Stream-Source`), and catches up:

# %%
import time

started = time.monotonic()
await asyncio.to_thread(leaf.restore_leaf_links)
hq = await wait_replicated(js_hub, "STORES", messages=220, timeout=30)
caught_up = time.monotonic() - started
hq.state.messages

# %% [markdown]
# How long that took (it varies from run to run; the output is not compared):

# %% tags=["nbval-ignore-output"]
"under 2 s" if caught_up < 2 else f"{caught_up:.0f} s"

# %% [markdown]
# Nothing published during the cut is missing at headquarters, and nothing came twice:

# %%
from edalab import stored_event_ids
from edalab.course import loss_report

loss_report(before + during, len(before) + len(acked), await stored_event_ids(js_hub, "STORES"))

# %% [markdown]
# The quick catch-up holds for a short cut. The consumer that feeds the hub's source
# (an ephemeral one, since `STORE` keeps messages by limits) sends a heartbeat every
# second, and the hub checks its sources every 10 s: at the first check after 10 s of
# silence (so 10 to 20 s into the cut) it asks the leaf for a new consumer; a request
# sent while the link is still down waits 30 s for an answer before the next try, and
# further tries back off (10 s, 20 s, ... up to 2 minutes). So after a long outage the
# copy resumes tens of seconds, or a couple of minutes, after the link returns
# (nats-server's `server/stream.go`: `sourceHealthCheckInterval`,
# `srcConsumerWaitTime`, `calculateRetryBackoff`).
#
# ## A snapshot, restored elsewhere
#
# A mirror is a live copy inside the same system. A **snapshot** is a copy at one
# moment, kept aside as a file: to go back to after a mistake, or to bring a stream to
# a server that never knew it. nats-py has no API for it; the server's is two requests.
# First a busier day for `SALES`, and a consumer part way through it, so there is a
# position to keep:

# %%
for n in range(6, 306):
    await js.publish("sale.placed", json.dumps({"sale": n}).encode())
invoicing = await js.pull_subscribe("sale.>", durable="invoicing", stream="SALES")
for msg in await invoicing.fetch(4, timeout=5):
    await msg.ack_sync()
(await js.consumer_info("SALES", "invoicing")).ack_floor.stream_seq

# %% [markdown]
# The raw protocol: ask `$JS.API.STREAM.SNAPSHOT.<stream>` to send the snapshot to a
# subject of ours. The answer is the stream's configuration and state; then the chunks
# come, each full one with a reply subject to acknowledge (the last, shorter one has
# none). That is the flow control: the server sends up to a window of chunks (8 MiB by
# default) ahead of the acks, and gives up when 5 s pass with the window full. An empty
# message ends it (with status `204` after full chunks, or the reason the server
# stopped: `408`, `500`):

# %%
inbox = nc.new_inbox()
chunks = await nc.subscribe(inbox)
request = {"deliver_subject": inbox, "chunk_size": 1024}
answer = await nc.request("$JS.API.STREAM.SNAPSHOT.SALES", json.dumps(request).encode())
received = []
while (chunk := await chunks.next_msg(timeout=5)).data:
    received.append(chunk.reply)
    if chunk.reply:
        await nc.publish(chunk.reply, b"")
await chunks.unsubscribe()
replied = all(received[:-1])  # every chunk but the last had a reply subject
sorted(json.loads(answer.data)), len(received) > 1, replied, (chunk.headers or {}).get("Status")

# %% [markdown]
# (The bytes are a compressed archive of the stream's files and its consumers' state.)
# Restoring is the mirror image: `$JS.API.STREAM.RESTORE.<stream>` with the configuration
# and state, then each chunk sent as a request, then an empty one. `snapshot_stream`
# and `restore_stream` do both, and keep the snapshot in one file with its size and
# SHA-256, so a damaged copy is refused before it reaches a server:

# %%
import tempfile
from pathlib import Path

from edalab import restore_stream, snapshot_stream

backup = Path(tempfile.mkdtemp(prefix="edalab-20-")) / "sales.snapshot"
taken = await snapshot_stream(js, "SALES", backup)
taken.messages, taken.last_seq, taken.consumers

# %% [markdown]
# A server that has never seen `SALES` (a new site after a disaster):

# %%
fresh = lesson_server("20-restore")
nc_fresh = await connect(fresh.url)
js_fresh = nc_fresh.jetstream()
restored = await restore_stream(js_fresh, backup)
restored.config.name, restored.state.messages, restored.state.last_seq

# %% [markdown]
# Every message, at its sequence, and the consumers where they were:

# %%
from edalab import stream_messages
from edalab.course import consumer_table


async def contents(js, stream):
    return [(seq, m.subject, m.data) async for seq, m in stream_messages(js, stream)]


await contents(js, "SALES") == await contents(js_fresh, "SALES")

# %%
rows = [(await consumer_table(j, "SALES", "invoicing")).rows[0] for j in (js, js_fresh)]
Table(
    ["server", "consumer", "pending", "ack_pending", "redelivered", "delivered_seq", "ack_floor"],
    [["20", *rows[0]], ["20-restore", *rows[1]]],
)

# %% [markdown]
# ## Recap
#
# - A **mirror** (`StreamConfig(mirror=StreamSource(name=...))`) copies one stream,
#   subjects and sequences included; it serves reads and consumers, has no subjects of
#   its own (10034 "stream mirrors can not contain subjects"), cannot be re-pointed
#   (10055), and reports its `lag`. Since nats-server 2.12, removing `mirror` from its
#   configuration promotes it to an ordinary stream that takes writes.
# - **Sources** gather several streams into one, each copy tagged `Nats-Stream-Source`;
#   `subject_transforms` on a source rename subjects on the way.
# - **Accounts** share nothing by default; an owner exports the few API subjects a
#   partner needs (a stream's info, one consumer's fetch and acks) and the partner
#   imports them under a prefix. Everything else finds no responder, and the partner's
#   own JetStream sees only its own streams.
# - A **leaf node** keeps its own JetStream domain: it takes writes while cut off, and a
#   hub stream that sources it through `$JS.<domain>.API` catches up when the link
#   returns: quickly after a short cut, tens of seconds or minutes after a long one.
# - A **snapshot** (`$JS.API.STREAM.SNAPSHOT.<stream>`, `...RESTORE.<stream>`) copies a
#   stream with its consumers' positions into a file; `snapshot_stream` and
#   `restore_stream` drive it and refuse a damaged file.
#
# ## Exercise
#
# The reporting team wants one stream, `REPORTS`, with every sale of `SALES_EU` and
# `SALES_US`, each under the prefix `report.` (`eu.sale.placed` arrives as
# `report.eu.sale.placed`), and no way to publish into it: it is a read replica. Create
# it and pass its info (what `add_stream` returns) to the check. The checker publishes
# new sales in both regions and expects each in `REPORTS` once, under its new subject,
# then tries to publish into `REPORTS`. (If an earlier try left a `REPORTS`, delete it
# first, `await js.delete_stream("REPORTS")`: `add_stream` refuses a name in use with
# another configuration, error 10058.)

# %%
reports = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
reports = await js.add_stream(
    StreamConfig(
        name="REPORTS",
        sources=[
            StreamSource(
                name=f"SALES_{region.upper()}",
                subject_transforms=[
                    SubjectTransform(src=f"{region}.sale.>", dest=f"report.{region}.sale.>")
                ],
            )
            for region in ("eu", "us")
        ],
    )
)

# %%
from edalab.course import check, hint  # stuck? hint("20") in a new cell

await check("20", js, reports)
