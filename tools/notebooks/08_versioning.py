# %% [markdown]
# # 08 · Versioning
#
# **About 30 minutes.** Needs 01 Event structure (the `Event` model and its `version`),
# 05 Subscribing (`EventConsumer`). One notebook at a time; when in doubt, Restart
# Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - version events with a `version` field, or with a subject suffix (`user.created.v2`),
#   and weigh the two;
# - write one pydantic model per version and upcasters from each version to the next;
# - replay a stream of mixed versions so the handler always sees the newest shape;
# - route an event of an unknown (future) version away from the handler;
# - check whether a new version breaks consumers before shipping it.
#
# > **From NATS Streaming.** STAN knew nothing of schemas, and neither does JetStream:
# > the payload is bytes to the server. The seed tutorial suggested exactly these two
# > strategies, a `version` field or versioned channel names. One thing changes: STAN
# > could not subscribe to channels with wildcards, while a JetStream stream or
# > consumer can take all versions at once (`user.created.*`).

# %%
from pydantic import BaseModel

from edalab import EventFactory, connect, ensure_server, publish_event
from edalab.course import fresh_stream

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="usr-")

# %% [markdown]
# ## Three versions of `user.created`
#
# Version 1 had one `name`; version 2 split it; version 3 added an optional e-mail.


# %%
class UserCreatedV1(BaseModel):
    user_id: str
    name: str


class UserCreatedV2(BaseModel):
    user_id: str
    first_name: str
    last_name: str


class UserCreatedV3(BaseModel):
    user_id: str
    first_name: str
    last_name: str
    email: str | None = None


# %% [markdown]
# ## Strategy 1: a `version` field
#
# The envelope says which shape `data` has. One subject carries all versions; a
# consumer reads `event.version` and picks the model:

# %%
v1 = make("user.created", {"user_id": "u1", "name": "Ann Lee"})
v2 = make("user.created", {"user_id": "u2", "first_name": "Bo", "last_name": "Kim"}, version=2)
models = {1: UserCreatedV1, 2: UserCreatedV2, 3: UserCreatedV3}
[e.payload(models[e.version]) for e in (v1, v2)]

# %% [markdown]
# ## Strategy 2: the version in the subject
#
# `user.created.v1`, `user.created.v2`: a consumer's filter can take exactly the
# versions it understands, and permissions (notebook 12) can allow publishing some
# versions and not others. `split_version` reads the suffix:

# %%
from edalab import split_version

split_version("user.created.v2"), split_version("user.created")

# %% [markdown]
# | | `version` field | subject suffix |
# |---|---|---|
# | consumers see | every version, must handle them | only the versions they filter |
# | one stream / filter for all | yes: `user.created` | yes: `user.created.*` (plus the bare name) |
# | routing, permissions by version | no | yes |
# | cost of a new version | a new model | a new model and new subjects everywhere |
#
# Many teams combine them: the field is the truth, the suffix is for routing.
#
# ## Upcasters: the handler sees only the newest version
#
# A `SchemaRegistry` knows each version's model and how to turn version *n* into
# *n + 1*. Upcasting chains the steps, so a v1 event becomes v3:

# %%
from edalab import SchemaRegistry

registry = SchemaRegistry()
for version, model in models.items():
    registry.register("user.created", version, model)


@registry.upcaster("user.created", 1)
def split_name(data):
    first, _, last = data.pop("name").partition(" ")
    return {**data, "first_name": first, "last_name": last}


@registry.upcaster("user.created", 2)
def add_email(data):
    return {**data, "email": None}


registry.upcast(v1).data

# %% [markdown]
# The version can also come from the subject (a `.vN` suffix wins over the field):

# %%
plain_v2 = make("user.created", {"user_id": "u3", "first_name": "Cy", "last_name": "Ng"})
registry.upcast(plain_v2, subject="user.created.v2").version

# %% [markdown]
# ## Replaying a stream of mixed versions
#
# The stream `USERS` holds years of history: old v1 events, v2 events under a
# versioned subject, new v3 events, and one event from a much newer producer (version 5)
# that this consumer does not know yet.

# %%
await fresh_stream(js, "USERS", ["user.>"])
await publish_event(js, v1)
await publish_event(js, plain_v2, subject="user.created.v2")
await publish_event(
    js,
    make(
        "user.created",
        {"user_id": "u4", "first_name": "Di", "last_name": "Ox", "email": "di@example.com"},
        version=3,
    ),
)
await publish_event(js, make("user.created", {"user_id": "u5", "full_name": "Ed"}, version=5))
(await js.stream_info("USERS")).state.messages

# %% [markdown]
# `EventConsumer` with the registry upcasts every event before the handler sees it. The
# unknown version is not a crash: it is terminated with its reason and kept aside.

# %%
from edalab import EventConsumer

replay = await EventConsumer.create(js, "USERS", "replay", registry=registry)
[(d.seq, d.event.version, d.event.data["first_name"]) async for d in replay.events(timeout=0.3)]

# %%
replay.quarantined

# %% [markdown]
# ## Will a new version break consumers?
#
# `compare_models` lists what changed between two versions and which changes break
# something: a removed or retyped field breaks consumers still on the old model; a new
# required field breaks reading old events with the new model (they lack it); a new
# optional field breaks neither (pydantic ignores fields a model does not declare).

# %%
from edalab import compare_models

compare_models(UserCreatedV1, UserCreatedV2)

# %%
compare_models(UserCreatedV2, UserCreatedV3)

# %% [markdown]
# A breaking change is still possible: it needs an upcaster for old events and a new
# version number, never an in-place edit of the old model.
#
# ## Recap
#
# - A `version` field from day one; subject suffixes when routing by version helps.
# - One model per version, upcasters between neighbours; handlers see the newest shape.
# - Unknown versions are a typed error, quarantined with the reason, not a crash.
# - `compare_models` flags breaking changes before they ship.
#
# ## Exercise
#
# Add version 4 of `user.created` with a new field `country: str = "unknown"`, register
# it with an upcaster from version 3, make sure `compare_models` finds it compatible with
# version 3, and check that every event in `USERS` (but the version 5 one) replays as
# version 4:


# %% tags=["solution"]
class UserCreatedV4(UserCreatedV3):
    country: str = "unknown"


registry.register("user.created", 4, UserCreatedV4)


@registry.upcaster("user.created", 3)
def add_country(data):
    return {**data, "country": "unknown"}


compare_models(UserCreatedV3, UserCreatedV4).compatible

# %%
from edalab.course import check, hint  # stuck? hint("08") in a new cell

await check("08", js, registry)
