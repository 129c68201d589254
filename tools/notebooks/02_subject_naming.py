# %% [markdown]
# # 02 · Subject naming
#
# **Learning goals**
#
# - name events `domain.event_type`, and finer (`user.profile.updated`) where it helps;
# - match subjects with the wildcards `*` (one token) and `>` (one or more, at the end);
# - tell a stream's subjects from a consumer's filter subjects, including several filters;
# - design a hierarchy so consumers filter cheaply;
# - decide whether a value belongs in a subject token, a header or the payload.
#
# > **From NATS Streaming.** STAN *channels* were flat names: a subscription named one
# > channel exactly, with no wildcards. JetStream streams capture subjects *with*
# > wildcards, and consumers filter them, so the naming scheme now does real work.

# %%
from edalab import connect, ensure_server, fresh_stream, publish_events, subject
from edalab.factories import EventFactory

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="usr-")

# %% [markdown]
# ## The convention
#
# Tokens are separated by dots. The first is the **domain** (who owns the events), the
# last the **event type** in the past tense: it happened. In between, finer levels that
# consumers may want to select. `subject()` builds names from tokens and refuses
# tokens that would change the shape:

# %%
subject("user", "created"), subject("user", "profile", "updated"), subject("order", "placed")

# %% tags=["raises-exception"]
subject("user", "profile updated")

# %% [markdown]
# `validate_subject` checks a whole name. Each rule has its own message:

# %%
from edalab import SubjectError, validate_subject

for bad in ["user..created", ".user.created", "user.created.", "user created", "user.*"]:
    try:
        validate_subject(bad)
    except SubjectError as err:
        print(f"{bad!r:18} {err.reason}")

# %% [markdown]
# ## Wildcards
#
# `*` stands for exactly one token, `>` for one or more tokens and only at the end.
# `matches(pattern, subject)` follows the server's rules (the tests check it against a
# real server):

# %%
from edalab import Table, matches

patterns = ["user.*", "user.>", "user.*.updated", "*.created", ">"]
subjects = ["user", "user.created", "user.profile.updated", "order.created"]
Table(
    ["subject", *patterns],
    [[s, *("x" if matches(p, s) else "" for p in patterns)] for s in subjects],
)

# %% [markdown]
# ## A stream's subjects and a consumer's filters
#
# The stream decides what is **stored**: here everything under `user.`. Each consumer
# decides what it **receives** from that store with filter subjects.

# %%
await fresh_stream(js, "USERS", ["user.>"])
events = [
    make("user.created", {"user_id": "u1"}),
    make("user.profile.updated", {"user_id": "u1", "bio": "hi"}),
    make("user.email.updated", {"user_id": "u1", "email": "a@example.com"}),
    make("user.deleted", {"user_id": "u1"}),
]
acks = await publish_events(js, events)
[(a.seq, e.type) for a, e in zip(acks, events, strict=True)]

# %% [markdown]
# With raw nats-py, a filter is part of the consumer configuration:

# %%
from nats.js.api import ConsumerConfig

await js.add_consumer(
    "USERS", ConsumerConfig(durable_name="updates", filter_subject="user.*.updated")
)
updates = await js.pull_subscribe_bind("updates", "USERS")
[m.subject for m in await updates.fetch(10, timeout=0.5)]

# %% [markdown]
# Since nats-server 2.10 a consumer can have several filters (`filter_subjects`), and
# the helper takes any consumer option:

# %%
from edalab import EventConsumer

lifecycle = await EventConsumer.create(
    js, "USERS", "lifecycle", filter_subjects=["user.created", "user.deleted"]
)
[d.event.type async for d in lifecycle.events(timeout=0.3)]

# %% [markdown]
# ## Designing the hierarchy
#
# Put the dimensions consumers select on **early and as whole tokens**, so a filter is a
# pattern, not a scan of payloads. Compare two designs for orders in several regions:
#
# | design | "all EU orders" | "every placed order" |
# |---|---|---|
# | `order.placed.eu` | `order.*.eu` | `order.placed.*` |
# | `order.eu.placed` | `order.eu.>` | `order.*.placed` |
#
# Both work; pick the order that makes the *common* filter a prefix (`>`), and keep the
# number of tokens fixed per domain so `*` patterns stay meaningful.
#
# ## Token, header or payload?
#
# - **Subject token**: what consumers route or filter on (domain, event type, region,
#   version), and an entity id when you need per-entity order or the last event per
#   entity (`deliver_policy=last_per_subject`, key-value style). Never secrets or
#   personal data: subjects show up in logs and permissions.
# - **Header**: metadata about the message that infrastructure reads without parsing
#   the body: `Nats-Msg-Id` (dedup), a trace id, a content type.
# - **Payload**: the facts of the event. Anything else.
#
# An id in the subject lets one consumer read a single user's history:

# %%
await publish_events(
    js,
    [make("user.u7.created", {"name": "Ann"}), make("user.u7.renamed", {"name": "Anna"})],
)
history = await EventConsumer.create(js, "USERS", "u7-history", filter_subject="user.u7.>")
[d.event.type async for d in history.events(timeout=0.3)]

# %% [markdown]
# ## Recap
#
# - `domain.event_type`, finer tokens where consumers filter, past tense, no spaces.
# - `*` one token, `>` the rest; `matches` and the validator speak the server's rules.
# - Streams store by subject; consumers filter (one filter, or several since 2.10).
# - Route on tokens, describe in headers, carry facts in the payload.
#
# ## Exercise
#
# Create a consumer `profile-watch` on `USERS` that receives every `user.*.updated`
# event and `user.deleted`, and nothing else. Then check:

# %% tags=["solution"]
watch = await EventConsumer.create(
    js, "USERS", "profile-watch", filter_subjects=["user.*.updated", "user.deleted"]
)
[d.event.type async for d in watch.events(timeout=0.3)]

# %%
from edalab.course import check

await check("02", js)

# %%
await nc.close()
