# %% [markdown]
# # 12 · Security
#
# **About 35 minutes.** Needs 03 Publishing (streams), 05 Subscribing (pull consumers).
# One notebook at a time; when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - configure users authenticated by password and by nkey;
# - give each user the subjects it may publish and subscribe to;
# - see what a denied publish or subscribe looks like, raw and with the helpers;
# - grant JetStream clients **least privilege**: a publisher its subjects and its replies,
#   a consumer the fetch and ack subjects of its own consumer, never the whole API;
# - give each user a private inbox, so no user can read another's replies;
# - recognise bad credentials at once instead of after minutes of retries.
#
# > **From NATS Streaming.** STAN had no permissions of its own: it ran on top of a NATS
# > server and inherited its authentication, with every client able to use every
# > channel. In JetStream, the same NATS users and permissions govern streams too,
# > because every JetStream operation is a message on a subject.
#
# This lesson needs a server with its own configuration, so it starts one.

# %% [markdown]
# ## Every JetStream operation is a subject
#
# A JetStream client does everything by publishing requests to subjects under
# `$JS.API.` (the server's own names for them, `JSApi...T` in nats-server's
# `server/jetstream_api.go`): `$JS.API.STREAM.DELETE.<stream>`,
# `$JS.API.STREAM.PURGE.<stream>`, `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` (a
# fetch), `$JS.API.CONSUMER.INFO.<stream>.<consumer>` ... Acks are publishes too, to the
# reply subject each delivered message carries, `$JS.ACK.<stream>.<consumer>.<...>`.
# So permissions on subjects are permissions on JetStream, and a user allowed
# `$JS.API.>` may delete or purge **every** stream.
#
# Four users show the difference:
#
# - `orders` publishes orders, nothing else (`jetstream_user` adds its private inbox);
# - `billing`, authenticated by an **nkey** (a key pair whose secret seed never leaves
#   the client; the server only knows the public key), publishes payments and pulls
#   orders from its consumer `SHOP/billing` (`consume=` adds that consumer's fetch,
#   info and ack subjects);
# - `wide`, configured the easy way: the whole API, `$JS.API.>`, and the shared `_INBOX.>`;
# - `admin`, unrestricted, who creates streams and consumers.

# %%
from edalab import User, authorization_config, jetstream_user, nkey_user

orders = jetstream_user(User("orders", password="orders-secret", publish=["order.>"]))
bot, billing_seed = nkey_user("billing", publish=["payment.>"])
billing = jetstream_user(bot, consume=[("SHOP", "billing")])
wide = User("wide", password="wide-secret", publish=["$JS.API.>"], subscribe=["_INBOX.>"])
admin = User("admin", password="admin-secret")
config = authorization_config([orders, billing, wide, admin])
print(config)

# %% [markdown]
# Each restricted user may subscribe only to its own inbox, `_INBOX_<name>.>`: the
# replies to its requests (`PubAck`s, fetched messages, API answers) arrive there.

# %%
orders.inbox_prefix, billing.inbox_prefix

# %%
from edalab.course import lesson_server

srv = lesson_server("12", config=config)

# %% [markdown]
# ## Connecting
#
# A password user and an nkey user (the client signs the server's challenge with its
# seed; the connection `name` is only a label, shown in errors and monitoring). Each
# passes its inbox prefix: nats-py builds every reply subject from `inbox_prefix`
# (default `_INBOX`), so the server would otherwise refuse the subscriptions its
# requests need.

# %%
from edalab import connect

nc_orders = await connect(
    srv.url, user="orders", password="orders-secret", inbox_prefix=orders.inbox_prefix
)
nc_billing = await connect(
    srv.url, nkeys_seed_str=billing_seed, name="billing", inbox_prefix=billing.inbox_prefix
)
nc_wide = await connect(srv.url, user="wide", password="wide-secret")
nc_admin = await connect(srv.url, user="admin", password="admin-secret")
[nc.is_connected for nc in (nc_orders, nc_billing, nc_wide, nc_admin)]

# %% [markdown]
# A wrong password: plain `nats.connect` would retry for about two minutes before
# giving up. `edalab.connect` stops at the server's first refusal:

# %% tags=["raises-exception"]
await connect(srv.url, user="orders", password="guess")

# %% [markdown]
# ## A denied publish, raw
#
# The billing bot tries to forge an order. With plain nats-py the publish *returns
# normally*: the server refuses it, tells the client asynchronously, and nobody
# receives the message:

# %%
import nats

watch = await nc_admin.subscribe("order.>")
await nc_admin.flush()
await nc_billing.publish("order.placed", b'{"forged": true}')
await nc_billing.flush()
try:
    await watch.next_msg(timeout=0.5)
except nats.errors.TimeoutError:
    print("nothing was delivered")

# %% [markdown]
# The only trace is an error handed to the connection's `error_cb`, some time later.
# `edalab.connect` keeps those errors, and `publish_checked` waits for the server's
# verdict and raises, naming the user and the subject:

# %% tags=["raises-exception"]
from edalab import publish_checked

await publish_checked(nc_billing, "order.placed", b'{"forged": true}')

# %% [markdown]
# Allowed publishes pass silently:

# %%
await publish_checked(nc_billing, "payment.captured", b"{}")

# %% [markdown]
# ## A denied subscribe
#
# Subscribing to what one may not read is refused the same way:

# %% tags=["raises-exception"]
from edalab import subscribe_checked

await subscribe_checked(nc_billing, "payment.>")

# %% [markdown]
# ## Publishing through JetStream
#
# The admin creates the stream and billing's consumer. A JetStream publish is a request
# to the stream's subject; its `PubAck` comes back on the publisher's inbox. That is all
# `orders` needs, and it works:

# %%
from edalab import Event, ensure_consumer, ensure_stream, publish_event

js_admin = nc_admin.jetstream()
await ensure_stream(js_admin, "SHOP", ["order.>", "payment.>"])
await ensure_consumer(js_admin, "SHOP", "billing", filter_subject="order.>")
ack = await publish_event(nc_orders.jetstream(), Event.create("order.placed", {"id": 1}))
ack.stream, ack.seq

# %% [markdown]
# A payment from the orders service is denied. Without the helper this is a bare
# timeout; `publish_event` recognises the server's refusal:

# %% tags=["raises-exception"]
await publish_event(nc_orders.jetstream(), Event.create("payment.captured", {}), timeout=1)

# %% [markdown]
# ## What `$JS.API.>` allows
#
# The `wide` user was meant to publish too, but holds the whole API. Its first mistake
# can be anyone's stream. The admin has a second stream:

# %%
await ensure_stream(js_admin, "SCRATCH", ["scratch.>"])
await nc_wide.jetstream().delete_stream("SCRATCH")

# %% [markdown]
# Gone, with everything it held:

# %%
sorted(info.config.name for info in await js_admin.streams_info())

# %% [markdown]
# ## The publisher cannot delete a stream
#
# `orders` tries the same on `SHOP`. The server refuses the request and, as with any
# denied publish, only reports it asynchronously: raw nats-py waits for a reply that
# never comes and times out.

# %% tags=["raises-exception"]
await nc_orders.jetstream(timeout=1).delete_stream("SHOP")

# %% [markdown]
# `permission_checked` looks at what the server reported while its block ran and raises
# the denial instead (nats-py lower-cases the server's error; the names given are shown
# in their own case):

# %% tags=["raises-exception"]
from edalab import permission_checked

async with permission_checked(nc_orders, "SHOP"):
    await nc_orders.jetstream(timeout=1).delete_stream("SHOP")

# %% [markdown]
# `SHOP` is untouched:

# %%
(await js_admin.stream_info("SHOP")).state.messages

# %% [markdown]
# ## The consumer can fetch and ack, and no more
#
# `billing` binds to its consumer (`pull_subscribe_bind` asks the server nothing; a
# `pull_subscribe` would look up the stream and the consumer first), fetches the order
# and acknowledges it with `ack_sync`, which waits for the server's confirmation:

# %%
js_billing = nc_billing.jetstream(timeout=1)
sub = await js_billing.pull_subscribe_bind("billing", "SHOP")
[msg] = await sub.fetch(1, timeout=5)
await msg.ack_sync()
msg.subject, msg.reply.split(".")[:4]

# %% [markdown]
# The reply subject is `$JS.ACK.SHOP.billing.…`: exactly what its permission
# `$JS.ACK.SHOP.billing.>` allows. (This is the server's default form of ack subjects; a
# server started with the `js_ack_fc_v2` feature flag inserts a domain and an account
# hash after `$JS.ACK`, and the permission would have to follow.) The consumer's ack
# floor moved:

# %%
info = await js_admin.consumer_info("SHOP", "billing")
info.ack_floor.stream_seq, info.num_ack_pending

# %% [markdown]
# Deleting the stream is refused (so is purging it, `$JS.API.STREAM.PURGE.SHOP`):

# %% tags=["raises-exception"]
async with permission_checked(nc_billing, "SHOP"):
    await js_billing.delete_stream("SHOP")

# %% [markdown]
# ## Private inboxes
#
# Every reply travels on the requester's inbox. Users sharing the default `_INBOX`
# prefix can read each other's replies: `wide`, allowed `_INBOX.>`, sees the `PubAck`
# of an admin's publish (the admin connected with the default prefix):

# %%
import json

snoop = await nc_wide.subscribe("_INBOX.>")
await nc_wide.flush()


async def snooped():
    for _ in range(3):  # a copy is core NATS, at most once: publish again if it went astray
        await js_admin.publish("order.placed", b"{}")
        try:
            return json.loads((await snoop.next_msg(timeout=3)).data)
        except nats.errors.TimeoutError:
            continue
    raise TimeoutError("wide saw none of the admin's three PubAcks")


ack = await snooped()
ack["stream"], sorted(ack)  # the admin's PubAck, read by wide

# %% [markdown]
# With private prefixes, `billing` may not listen on `orders`' inbox:

# %% tags=["raises-exception"]
await subscribe_checked(nc_billing, "_INBOX_orders.>")

# %% [markdown]
# ## Recap
#
# - Users authenticate by password, token, nkey, TLS certificate or JWT; with nkeys the
#   server stores only public keys.
# - Permissions are allow/deny lists of subjects, for publish and subscribe. JetStream's
#   operations are subjects too: `$JS.API.>` lets a user delete or purge any stream.
# - Least privilege: a publisher gets its subjects and its inbox; a pull consumer gets
#   `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`, `$JS.API.CONSUMER.INFO.<...>` if it
#   asks for its info, `$JS.ACK.<stream>.<consumer>.>` and its inbox. Streams and
#   consumers are created by an administrator.
# - Each user gets a private inbox prefix (`connect(inbox_prefix=...)` and subscribe
#   permission on `_INBOX_<name>.>`), so no user reads another's replies.
# - nats-py reports denials only asynchronously; `publish_checked`, `subscribe_checked`,
#   `publish_event` and `permission_checked` turn them into `PermissionDenied`; bad
#   credentials raise `AuthenticationError` at once.
#
# ## Exercise
#
# Add a user `auditor` (password of your choice) who reads `SHOP` through a durable pull
# consumer `audit` on `order.>` and may do nothing else: fetch and ack on that consumer,
# subscribe to its own inbox, and no publishing, no stream or consumer administration,
# no other inbox. Restart the lesson server with the new configuration, create the
# stream and the consumer as admin (keep the admin's JetStream context in `js`), then check (the checker publishes a probe order,
# logs in as the auditor, fetches and acks it, and tries what it must not do):

# %%
js = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
for nc in (nc_orders, nc_billing, nc_wide, nc_admin):
    await nc.close()
auditor = jetstream_user(
    User("auditor", password="audit-secret", publish=[]), consume=[("SHOP", "audit")]
)
srv = lesson_server("12", config=authorization_config([orders, billing, admin, auditor]))
nc_admin = await connect(srv.url, user="admin", password="admin-secret")
js = nc_admin.jetstream()
await ensure_stream(js, "SHOP", ["order.>", "payment.>"])
await ensure_consumer(js, "SHOP", "audit", filter_subject="order.>")

# %%
from edalab.course import check, hint  # stuck? hint("12") in a new cell

await check("12", js, url=srv.url, user="auditor", password="audit-secret")
