# %% [markdown]
# # 01 · Event structure
#
# **About 20 minutes.** Needs 00 Start here (what an event is). One notebook at a time;
# when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - read the seed tutorial's Go `Event` struct and the JSON it puts on the wire;
# - decode and encode that JSON with `edalab.Event`, a pydantic model;
# - see what a malformed event looks like as an error;
# - know why ids are UUIDs, timestamps are UTC, and a `version` field exists from day one.
#
# ## The seed's envelope
#
# The Go tutorial this course grew from defined every event as:
#
# ```go
# type Event struct {
#     ID        string    `json:"id"`
#     Type      string    `json:"type"`
#     Data      string    `json:"data"`
#     Timestamp time.Time `json:"timestamp"`
# }
# ```
#
# `encoding/json` writes it like this (note: `data` is a *string* holding JSON, and the
# timestamp has nanoseconds and a zone offset):

# %%
go_json = (
    b'{"id":"123","type":"user.created",'
    b'"data":"{\\"user_id\\": \\"user123\\", \\"username\\": \\"testuser\\"}",'
    b'"timestamp":"2024-05-01T10:20:30.123456789+08:00"}'
)

# %% [markdown]
# ## With the standard library
#
# `json.loads` reads it, but everything stays a string: the timestamp, and `data` must
# be decoded a second time. Nothing checks that a field is present.

# %%
import json

raw = json.loads(go_json)
raw["timestamp"], json.loads(raw["data"])["username"]

# %% [markdown]
# ## The `Event` model
#
# `edalab.Event` keeps the seed's four JSON names and adds `version` (default 1) and an
# optional `source`. Decoding validates every field and parses the timestamp (Python
# keeps microseconds, so Go's nanoseconds are cut to six digits).

# %%
from edalab import Event

event = Event.from_json(go_json)
event.id, event.type, event.version, event.timestamp.isoformat()

# %% [markdown]
# `payload()` reads `data` whether it is a JSON string (Go style) or an object, and a
# pydantic model gives it a type:

# %%
from pydantic import BaseModel


class UserCreated(BaseModel):
    user_id: str
    username: str


event.payload(UserCreated)

# %% [markdown]
# ## Creating events
#
# `Event.create` gives a fresh UUID and the current time in **UTC**. Store and send UTC;
# convert to local time only to show it to a person. The payload can be a model.

# %%
event = Event.create("user.created", UserCreated(user_id="u1", username="ann"))
event.id, event.timestamp.tzinfo

# %% [markdown]
# On the wire it is JSON with `data` as an object...

# %%
event.to_json()

# %% [markdown]
# ...or, for the seed's Go struct whose `Data` is a `string`, with `data` as a JSON string:

# %%
event.to_json(data_as_string=True)

# %% [markdown]
# Both decode back to the same event:

# %%
go_style = Event.from_json(event.to_json(data_as_string=True))
(
    Event.from_json(event.to_json()) == event,
    go_style.payload(UserCreated) == event.payload(UserCreated),
)

# %% [markdown]
# ## Malformed events are errors, never half-built events
#
# A timestamp without a zone is ambiguous, so it is refused. The error is an
# `EventDecodeError` naming the subject, the stream sequence (when known) and the field:

# %% tags=["raises-exception"]
Event.from_json(
    b'{"id":"7","type":"user.created","timestamp":"2024-05-01T10:20:30"}',
    subject="user.created",
    sequence=7,
)

# %% [markdown]
# Bytes that are not JSON at all, and a missing field:

# %% tags=["raises-exception"]
Event.from_json(b"\x00\x01 not json", subject="user.created")

# %% tags=["raises-exception"]
Event.from_json(b'{"type":"user.created","timestamp":"2024-05-01T10:20:30Z"}')

# %% [markdown]
# Every edalab error derives from `EdalabError`, and the decode error keeps the raw
# bytes (`err.raw`), so a consumer can put the message aside instead of losing it
# (notebook 06 does exactly that).

# %%
from edalab import EdalabError, EventDecodeError

try:
    Event.from_json(b"{broken", subject="user.created", sequence=3)
except EdalabError as err:
    assert isinstance(err, EventDecodeError)
    print(err.subject, err.sequence, err.raw)

# %% [markdown]
# ## Ids, clocks and tests
#
# Random ids and the wall clock make every run different. For tests (and for stable
# outputs in lessons), `edalab.EventFactory` makes ids `evt-0001`, `evt-0002`,
# ... and a clock that starts at 2024-01-01 and ticks one second per event:

# %%
from edalab import EventFactory

make = EventFactory()
[(e.id, e.timestamp.isoformat()) for e in (make("user.created"), make("user.deleted"))]

# %% [markdown]
# ## Why `version` from day one
#
# The payload of `user.created` will change: a field is renamed, another becomes
# required. Consumers must then tell old events from new ones, including events
# written years ago and replayed today. A `version` field that has always been there
# costs nothing; adding one later means every old event is "version unknown".
# Notebook 08 builds on it.

# %%
Event.create("user.created", {"user_id": "u1", "email": "ann@example.com"}, version=2).version

# %% [markdown]
# ## Recap
#
# - The envelope: `id`, `type`, `data`, `timestamp` (the seed's names), plus `version`
#   and `source`.
# - `Event.from_json` validates or raises `EventDecodeError` (subject, sequence, field,
#   raw bytes); `payload(Model)` types the data.
# - `to_json(data_as_string=True)` speaks to the seed's Go struct.
# - UUIDs for ids, UTC for time, and a version from the start.
#
# ## Exercise
#
# Define an `OrderPlaced` model (`order_id: str`, `amount_cents: int`), create an
# `order.placed` event with it, encode it for the Go struct, decode it again and read the
# payload back as `OrderPlaced`. What error do you get when `amount_cents` is `"ten"`?
# The check sends your model through the same round trip, then tries payloads it must
# refuse.

# %%
OrderPlaced = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
from edalab import PayloadError


class OrderPlaced(BaseModel):
    order_id: str
    amount_cents: int


order = Event.create("order.placed", OrderPlaced(order_id="o-1", amount_cents=1250))
back = Event.from_json(order.to_json(data_as_string=True))
print(back.payload(OrderPlaced))
try:
    Event.create("order.placed", {"order_id": "o-2", "amount_cents": "ten"}).payload(OrderPlaced)
except PayloadError as err:
    print(err.reason)

# %%
from edalab.course import check, hint  # stuck? hint("01") in a new cell

await check("01", OrderPlaced)
