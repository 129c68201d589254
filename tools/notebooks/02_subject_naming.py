# %% [markdown]
# # 02 · Subject naming
#
# **About 25 minutes.** Needs 00 Start here (a connection; publish and subscribe on core
# NATS). One notebook at a time; when in doubt, Restart Kernel and Run All (the *Kernel*
# menu).
#
# **Learning goals**
#
# - name events `domain.event_type`, and finer (`user.profile.updated`) where it helps;
# - subscribe with the wildcards `*` (one token) and `>` (one or more, at the end), and
#   watch the server decide which subjects arrive;
# - design a hierarchy so that the subscriptions you need are simple patterns;
# - decide whether a value belongs in a subject token, a header or the payload.
#
# Notebook 00 subscribed to one exact subject. Every later notebook relies on patterns:
# a stream stores `order.>` (notebook 03), a consumer reads `order.placed` (notebook 05).
# This one explains subjects with nothing but core NATS, the plain subscriptions of
# notebook 00, on a server of its own: there no stream that another notebook left
# behind stores its messages (they use `user.>` and `order.>` too), and a `>`
# subscription sees this notebook's messages only.
#
# > **From NATS Streaming.** STAN *channels* were flat names: a subscription named one
# > channel exactly, with no wildcards. NATS subjects are dot-separated tokens, and a
# > subscription can name a pattern, so the naming scheme does real work.

# %%
from edalab import connect, subject
from edalab.course import lesson_server

srv = lesson_server("02")
nc = await connect(srv.url)

# %% [markdown]
# ## The convention
#
# Tokens are separated by dots. The first is the **domain** (who owns the events), the
# last the **event type** in the past tense: it happened. In between, finer levels that
# subscribers may want to select. `edalab.subject()` builds names from tokens and refuses
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
# ## Wildcards, decided by the server
#
# In a subscription, `*` stands for exactly one token and `>` for one or more tokens,
# only as the last token. To see which subjects a pattern receives, subscribe, publish
# some subjects, and read what arrives. How do we know when everything has arrived?
# NATS delivers the messages of one publisher to a subscriber in the order they were
# published; so publish last a marker the pattern surely matches (its wildcards replaced
# by `end`) and read until the marker:


# %%
async def arrivals(pattern, subjects):
    sub = await nc.subscribe(pattern)
    for s in subjects:
        await nc.publish(s, b"{}")
    marker = ".".join("end" if t in ("*", ">") else t for t in pattern.split("."))
    await nc.publish(marker, b"end")
    got = []
    while (msg := await sub.next_msg(timeout=2)).data != b"end":
        got.append(msg.subject)
    await sub.unsubscribe()
    return got


await arrivals("user.*", ["user", "user.created", "user.profile.updated"])

# %% [markdown]
# Now five patterns against the same four subjects, with a tick for each delivery:

# %%
from edalab.course import Table

tried = ["user.*", "user.>", "user.*.updated", "*.created", ">"]
published = ["user", "user.created", "user.profile.updated", "order.created"]
arrived = {p: await arrivals(p, published) for p in tried}
Table(
    ["subject", *tried],
    [[s, *("x" if s in arrived[p] else "" for p in tried)] for s in published],
)

# %% [markdown]
# Read it column by column: `user.*` takes `user.created` but neither `user` (no second
# token) nor `user.profile.updated` (three tokens); `user.>` needs at least one token
# after `user`; `>` takes everything. `edalab.matches(pattern, subject)` answers the same
# question without a server (its tests compare it with one); it agrees with every tick:

# %%
from edalab import matches

all(matches(p, s) == (s in arrived[p]) for p in tried for s in published)

# %% [markdown]
# A wildcard is a whole token: in `user.prof*` the last token is just the text `prof*`.
# And `>` must be the last token; the server refuses `user.>.updated`, and edalab
# checks a pattern before you subscribe:

# %% tags=["raises-exception"]
validate_subject("user.>.updated", wildcards=True)

# %% [markdown]
# ## Designing the hierarchy
#
# Put the dimensions subscribers select on **early and as whole tokens**, so a
# selection is a pattern, not a scan of payloads. Compare two designs for orders in
# several regions:
#
# | design | "all EU orders" | "every placed order" |
# |---|---|---|
# | `order.placed.eu` | `order.*.eu` | `order.placed.*` |
# | `order.eu.placed` | `order.eu.>` | `order.*.placed` |
#
# Both work; pick the order that makes the *common* selection a prefix (`>`), and keep
# the number of tokens fixed per domain so `*` patterns stay meaningful. With the
# second design, the EU team's subscription sees every EU event, whatever its type:

# %%
await arrivals("order.eu.>", ["order.eu.placed", "order.us.placed", "order.eu.cancelled"])

# %% [markdown]
# ## Token, header or payload?
#
# - **Subject token**: what subscribers route or select on (domain, event type, region,
#   version), and an entity id when you need one entity's history in order. Never
#   secrets or personal data: subjects show up in logs and permissions.
# - **Header**: metadata about the message that infrastructure reads without parsing
#   the body: `Nats-Msg-Id` (duplicate detection, notebook 03), a trace id, a content type.
# - **Payload**: the facts of the event. Anything else.
#
# An id in the subject lets one subscriber follow a single user:

# %%
from edalab import EventFactory

make = EventFactory(prefix="usr-")
u7 = await nc.subscribe("user.u7.>")
for event in [make("user.u7.created"), make("user.u8.created"), make("user.u7.renamed")]:
    await nc.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})
got = [await u7.next_msg(timeout=2) for _ in range(2)]
await u7.unsubscribe()
[(msg.subject, msg.headers["Nats-Msg-Id"]) for msg in got]

# %% [markdown]
# In publish order, with `user.u8.created` (published second) nowhere: not for this
# subscriber.

# %% [markdown]
# ## Versions in the subject
#
# When an event's payload changes incompatibly, one option is a version token at the
# end: `user.created.v2`. `subject()` and `split_version()` handle the suffix; notebook
# 08 weighs it against the `version` field of notebook 01.

# %%
from edalab import split_version

subject("user", "created", version=2), split_version("user.created.v2")

# %% [markdown]
# ## Where subjects go next
#
# Core NATS subscriptions only see what is published while they listen. Notebook 03
# adds **streams**, which store every message whose subject matches their patterns
# (`order.>`); notebook 05 adds **consumers**, which read a stream and can select
# subjects with the same patterns. The rules you just watched are the rules they use.
#
# ## Recap
#
# - `domain.event_type`, finer tokens where subscribers select, past tense, no spaces.
# - `*` one token, `>` one or more at the end; the server decides, and `matches` agrees.
# - Make the common selection a prefix; keep the number of tokens fixed per domain.
# - Route on tokens, describe in headers, carry facts in the payload.
#
# ## Exercise
#
# A mailer sends an e-mail whenever one part of a user's record changes
# (`user.<part>.updated`, exactly three tokens: `user.email.updated`,
# `user.address.updated`, and parts nobody has invented yet) and when an account is
# deleted (`user.deleted`). It wants nothing else: not `user.created`, not
# `user.profile.photo.updated`, not `order.deleted`, and no event twice. Choose the
# pattern(s) it subscribes to, try them, then let the check publish a set of probe
# subjects on the server and report exactly which ones your patterns receive.

# %%
patterns = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
patterns = ["user.*.updated", "user.deleted"]
mailer = [await nc.subscribe(p) for p in patterns]
await nc.publish("user.address.updated", b"{}")
(await mailer[0].next_msg(timeout=2)).subject

# %%
from edalab.course import check, hint  # stuck? hint("02") in a new cell

await check("02", nc, patterns)
