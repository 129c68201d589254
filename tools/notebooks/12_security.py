# %% [markdown]
# # 12 · Security
#
# **Learning goals**
#
# - configure users authenticated by password and by nkey;
# - give each user the subjects it may publish and subscribe to;
# - see what a denied publish or subscribe looks like, raw and with the helpers;
# - recognise bad credentials at once instead of after minutes of retries.
#
# > **From NATS Streaming.** STAN had no permissions of its own: it ran on top of a NATS
# > server and inherited its authentication, with every client able to use every
# > channel. In JetStream, the same NATS users and permissions govern streams too,
# > because every JetStream operation is a message on a subject.
#
# This lesson needs a server with its own configuration, so it starts one.

# %% [markdown]
# ## Users and permissions
#
# Three users: `orders` (the orders service, password), `billing` (a bot, authenticated
# by an **nkey**: a key pair whose secret seed never leaves the client; the server only
# knows the public key) and `admin`. `jetstream_user` adds what a JetStream client
# needs: publishing to the JetStream API and receiving replies on `_INBOX.>`.

# %%
from edalab import User, authorization_config, jetstream_user, nkey_user

orders = jetstream_user(
    User("orders", password="orders-secret", publish=["order.>"], subscribe=["order.>"])
)
billing, billing_seed = nkey_user(
    "billing", publish=["payment.>"], subscribe=["order.placed", "_INBOX.>"]
)
admin = User("admin", password="admin-secret")
config = authorization_config([orders, billing, admin])
print(config)

# %%
from edalab.server import lesson_server

srv = lesson_server("12", config=config)

# %% [markdown]
# ## Connecting
#
# A password user and an nkey user (the client signs the server's challenge with its
# seed; the connection `name` is only a label, shown in errors and monitoring):

# %%
from edalab import connect

nc_orders = await connect(srv.url, user="orders", password="orders-secret")
nc_billing = await connect(srv.url, nkeys_seed_str=billing_seed, name="billing")
nc_admin = await connect(srv.url, user="admin", password="admin-secret")
nc_orders.is_connected, nc_billing.is_connected, nc_admin.is_connected

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
# ## JetStream under permissions
#
# A stream for both domains, created by the admin. The orders service may publish
# orders through JetStream; a payment from it is denied. Without the helper this is a
# bare timeout; `publish_event` recognises the server's refusal:

# %%
from edalab import Event, ensure_stream, publish_event

await ensure_stream(nc_admin.jetstream(), "SHOP", ["order.>", "payment.>"])
ack = await publish_event(nc_orders.jetstream(), Event.create("order.placed", {"id": 1}))
ack.stream, ack.seq

# %% tags=["raises-exception"]
await publish_event(nc_orders.jetstream(), Event.create("payment.captured", {}), timeout=1)

# %%
(await nc_admin.jetstream().stream_info("SHOP")).state.messages

# %% [markdown]
# ## Recap
#
# - Users authenticate by password, token or nkey (the server stores only public keys).
# - Permissions are allow/deny lists of subjects, for publish and subscribe; JetStream
#   clients need the API (`$JS.API.>`) and replies (`_INBOX.>`).
# - nats-py reports denials only asynchronously; `publish_checked`, `subscribe_checked`
#   and `publish_event` turn them into `PermissionDenied`; bad credentials raise
#   `AuthenticationError` at once.
#
# ## Exercise
#
# Add a user `auditor` (password of your choice) who may subscribe to `order.>` and
# nothing else, and may publish nothing (`publish=[]`, which `User` turns into "deny
# everything": to the server an empty allow list means no restriction). Restart the
# lesson server with the new configuration, then check:

# %% tags=["solution"]
for nc in (nc_orders, nc_billing, nc_admin):
    await nc.close()
auditor = User("auditor", password="audit-secret", publish=[], subscribe=["order.>"])
srv = lesson_server("12", config=authorization_config([orders, billing, admin, auditor]))
nc_admin = await connect(srv.url, user="admin", password="admin-secret")

# %%
from edalab.course import check

await check("12", nc_admin.jetstream(), url=srv.url, user="auditor", password="audit-secret")

# %%
await nc_admin.close()
srv.stop()
