# %% [markdown]
# # 19 · One active worker, and a standby
#
# **About 35 minutes.** Needs 06 Acks and redelivery (`ack_wait` and redelivery), 14
# Ordering, backpressure and lag (partitions and `max_ack_pending`). One notebook at a
# time; when in doubt, Restart Kernel and Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - keep exactly one worker active on a consumer, with a standby that takes over, using
#   a **priority group** with the `pinned_client` policy (ADR-42, nats-server 2.11+);
# - read the pin on the wire (the `Nats-Pin-Id` header) and say how long a takeover
#   takes: `priority_timeout` after the pinned worker's last pull;
# - unpin by hand, and know what the old and the new worker see;
# - let extra workers help only when the backlog grows, with the `overflow` policy;
# - tell this apart from a queue group, from `max_ack_pending=1` and from one worker
#   per partition (notebook 14), and say what changing the partition count does.
#
# > **From NATS Streaming.** STAN had no standby subscriber: a (durable) queue group
# > spread the messages over all its members (each to the member with the fewest
# > unacknowledged ones), so "one active worker" was yours to coordinate outside the
# > streaming server. With a priority group, the JetStream server picks it.
#
# nats-py 2.16 has no API for priority groups (nothing in its source mentions
# `priority_groups`, `Nats-Pin-Id` or `min_pending`), so this lesson shows them on the
# wire first, then with edalab's small helpers. It runs its own server.

# %%
from edalab import connect
from edalab.course import fresh_stream, lesson_server

server = lesson_server("19")
nc = await connect(server.url)
js = nc.jetstream()
await fresh_stream(js, "WORK", ["work.>"])

# %% [markdown]
# ## The picture
#
# ```text
#                 consumer "work": group "workers", policy pinned_client
#   WORK ──────▶  the server remembers one pin id, e.g. "4Hq…"
#                    │                                     │
#     messages, each with the header                 nothing: its pulls wait
#     Nats-Pin-Id: 4Hq…                              until they expire (408)
#                    ▼                                     ▼
#           worker a (pinned)                      worker b (standby)
#           pulls {"group": "workers",             pulls {"group": "workers"}
#                  "id": "4Hq…"}
#
#   a stops pulling ─▶ priority_timeout after a's last pull the server drops the pin
#                   ─▶ b's waiting pull gets the next message, and a new pin id
# ```
#
# Each pull the pinned worker sends with its pin id restarts the server's
# `priority_timeout` timer: a pull is its heartbeat. Nothing else does (not its acks).
#
# ## The consumer, on the wire
#
# The consumer's configuration gets three fields (nats-server 2.11): `priority_groups`
# (a list of names, each pull names one), `priority_policy` and `priority_timeout`
# (nanoseconds; on a `pinned_client` consumer 2 minutes when left out). Give it one
# group: ADR-42 meant one per consumer for now, and although nats-server 2.15 accepts
# more, it keeps a single pin per consumer and reports only the first group's state.
# nats-py's `ConsumerConfig` has none of these fields:

# %%
import dataclasses

from nats.js.api import ConsumerConfig

priority_fields = ["priority_groups", "priority_policy", "priority_timeout"]
[f.name for f in dataclasses.fields(ConsumerConfig) if f.name in priority_fields]

# %% [markdown]
# so the consumer is created with a raw request to the JetStream API, JSON in, JSON out:

# %%
import json

config = {
    "durable_name": "work",
    "ack_policy": "explicit",
    "priority_groups": ["workers"],
    "priority_policy": "pinned_client",
    "priority_timeout": 1 * 10**9,
}
request = {"stream_name": "WORK", "config": config}
reply = await nc.request("$JS.API.CONSUMER.CREATE.WORK.work", json.dumps(request).encode())
{key: json.loads(reply.data)["config"][key] for key in priority_fields}

# %% [markdown]
# Left out, `priority_timeout` is 2 minutes; two groups are accepted, but the consumer's
# state (the `priority_groups` of its info) covers the first only. A consumer to look at,
# then delete:

# %%
two = {key: value for key, value in config.items() if key != "priority_timeout"}
two |= {"durable_name": "two", "priority_groups": ["x", "y"]}
request = {"stream_name": "WORK", "config": two}
reply = await nc.request("$JS.API.CONSUMER.CREATE.WORK.two", json.dumps(request).encode())
created = json.loads(reply.data)
await js.delete_consumer("WORK", "two")
minutes = created["config"]["priority_timeout"] / 60e9
minutes, created["config"]["priority_groups"], [g["group"] for g in created["priority_groups"]]

# %% [markdown]
# `ensure_priority_consumer` does the same, idempotently (seconds, as everywhere in
# edalab); run again with the same settings, it changes nothing:

# %%
from edalab import ensure_priority_consumer

await ensure_priority_consumer(js, "WORK", "work", group="workers", priority_timeout=1.0)

# %% [markdown]
# ## A pull, on the wire
#
# A pull request is a message to `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` with a
# reply subject; the answers (messages, or a status) come to that subject. Not with
# `nc.request`: nats-py matches its replies by their subject, and a delivered message
# keeps its own (`work.job`). Without a group, the server refuses the pull at once,
# whether or not a message is waiting:


# %%
async def pull(request):
    """One raw pull request; the first answer: a message, or a status in its headers."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.WORK.work", json.dumps(request).encode(), inbox)
    try:
        return await sub.next_msg(timeout=3)
    finally:
        await sub.unsubscribe()


def shown(msg):
    """What a learner needs of an answer: its headers (as plain text) and data."""
    headers = {str(getattr(k, "value", k)): v for k, v in (msg.headers or {}).items()}
    return headers, msg.data


shown(await pull({"batch": 1, "expires": 10**9}))

# %% [markdown]
# With the group, a job's message comes, and with it the pin id the server just gave
# this client (the `Nats-Pin-Id` header: a random 22-character NUID, new with each pin):

# %%
await js.publish("work.job", b"1")
first = await pull({"batch": 1, "expires": 2 * 10**9, "group": "workers"})
await first.ack()
shown(first)

# %% [markdown]
# A pinned client sends that id with each later pull (`"id": ...`). This raw client will
# not pull again: in one second (`priority_timeout`) the server drops its pin.
#
# ## Two workers, one active
#
# `PriorityPuller` does what a worker needs: it pulls in the group, keeps the pin id
# from the first message and sends it on, and forgets it when the server answers 423
# (the pin went elsewhere). Two workers, `a` and `b`, each pull batches of up to 5 with
# a 0.25 s expiry, well below `priority_timeout`:

# %%
import asyncio
import contextlib
import time

from edalab import PriorityPuller

for task in globals().get("running", {}).values():  # this cell's loops, if run before
    task.cancel()
workers = {name: PriorityPuller(js, "WORK", "work", "workers") for name in ("a", "b")}
handled = {"a": [], "b": []}
times = {"a": {}, "b": {}}  # when each last pulled, and got its first job
running = {}


async def work(puller, jobs, times):
    while True:
        times["last pull"] = time.monotonic()
        for msg in await puller.fetch(batch=5, timeout=0.25):
            times.setdefault("first job", time.monotonic())
            jobs.append(int(msg.data))
            await msg.ack()


def start(name):
    if name in running:  # started before: one loop per worker
        running[name].cancel()
    running[name] = asyncio.create_task(work(workers[name], handled[name], times[name]))


async def stop(name):
    task = running.pop(name, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# %% [markdown]
# The cells below wait for what they need, each with a deadline: `until` for something
# this notebook sees, `pulls_waiting` for pull requests the server holds (the consumer's
# `num_waiting`):

# %%
from edalab import wait_for


async def until(condition, what, timeout=10):
    async def holds():
        return condition()

    await wait_for(holds, timeout=timeout, what=what)


async def pulls_waiting(stream, consumer, count):
    async def holds():
        return (await js.consumer_info(stream, consumer)).num_waiting >= count

    await wait_for(holds, timeout=10, what=f"{count} pull(s) waiting on {consumer}")


# %% [markdown]
# `a` starts first. Its first pull waits until the raw client's pin has expired, then
# gets job 2 and the pin. Only then does `b` start; once both have a pull waiting on the
# server, 18 more jobs go out:

# %%
start("a")
await js.publish("work.job", b"2")
await until(lambda: workers["a"].pinned, "worker a to be pinned")
start("b")
await pulls_waiting("WORK", "work", 2)
for n in range(3, 21):
    await js.publish("work.job", str(n).encode())
await until(lambda: len(handled["a"]) + len(handled["b"]) >= 19, "19 jobs handled")
{name: len(jobs) for name, jobs in handled.items()}

# %% [markdown]
# `b` pulled all along and got nothing. The consumer's state names the pin, the same id
# `a` holds (`pinned_client` reads the group's `pinned_client_id` from the
# `priority_groups` list of the consumer's info, seen above):

# %%
from edalab import pinned_client

await pinned_client(js, "WORK", "work", "workers") == workers["a"].pin_id

# %% [markdown]
# ## The standby takes over
#
# The rule, in nats-server's `server/consumer.go`: the pin is given with the first
# message to a pull without an id and starts a timer of `priority_timeout`; each pull
# that carries the current pin id restarts it (`setPinnedTimer`); when it fires, the
# server clears the pin, sends an `UNPINNED` advisory with reason `timeout`, and the
# next message goes to a waiting pull without an id, which becomes pinned. So a standby
# takes over `priority_timeout` after the pinned worker's **last pull**, as soon as there
# is a message for it.
#
# The advisories tell an operator when that happens; collect them:

# %%
pins = {}  # advisory id: (PINNED or UNPINNED, reason)


async def note(msg):
    advisory = json.loads(msg.data)
    pins[advisory["id"]] = (msg.subject.split(".")[4], advisory.get("reason", ""))


for kind in ("PINNED", "UNPINNED"):
    await nc.subscribe(f"$JS.EVENT.ADVISORY.CONSUMER.{kind}.WORK.work", cb=note)
await nc.flush()

# %% [markdown]
# Now `a` stops pulling (its task is cancelled, as if it hung or died) and ten jobs go
# out. `b` waits for them:

# %%
await stop("a")
for n in range(21, 31):
    await js.publish("work.job", str(n).encode())
await until(lambda: len(handled["b"]) >= 10, "b to handle the 10 jobs")
took = times["b"]["first job"] - times["a"]["last pull"]
{
    "a handled": len(handled["a"]),
    "b handled": len(handled["b"]),
    "b's first job after a's last pull": "within priority_timeout + 0.5 s"
    if 0.9 <= took <= 1.5
    else f"{took:.2f} s",
}

# %%
await until(lambda: len(pins) >= 2, "the two advisories")
list(pins.values())

# %% [markdown]
# (`took` holds the measured figure; it is about one second, never less than
# `priority_timeout`.) A long `priority_timeout` means a long outage after a crash; a
# short one means the pinned worker must pull again quickly. Keep each pull's expiry
# well below it: the timer counts from when a pull *arrives*, not while it waits.
#
# If `a` comes back with its old pin id, the server refuses its pull with **423**; the
# puller forgets the id and, pulling on, is now the standby:

# %%
await workers["a"].fetch(batch=5, timeout=0.25), workers["a"].said, workers["a"].pinned

# %% [markdown]
# ## Unpinning by hand
#
# An operator can ask for a new pin: `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>` with
# `{"group": ...}`. To see each step, stop `b`'s loop and pull by hand. `b` (still
# pinned) takes one job and does not ack it yet:

# %%
await stop("b")
await js.publish("work.job", b"31")
held = await workers["b"].fetch(batch=1, timeout=0.5)
[int(msg.data) for msg in held], workers["b"].pinned

# %% [markdown]
# `a` pulls and waits; the operator unpins:

# %%
waiting = asyncio.create_task(workers["a"].fetch(batch=1, timeout=3))
await pulls_waiting("WORK", "work", 1)
unpin_request = json.dumps({"group": "workers"}).encode()
reply = await nc.request("$JS.API.CONSUMER.UNPIN.WORK.work", unpin_request)
json.loads(reply.data)

# %% [markdown]
# The next job goes to `a`'s waiting pull, with a new pin:

# %%
await js.publish("work.job", b"32")
taken = await waiting
for msg in taken:
    await msg.ack()
now = await pinned_client(js, "WORK", "work", "workers")
[int(msg.data) for msg in taken], workers["a"].pinned, now == workers["a"].pin_id

# %% [markdown]
# `b` learns it only when it pulls again: 423, and it is a standby.

# %%
await workers["b"].fetch(batch=1, timeout=0.25), workers["b"].said, workers["b"].pinned

# %% [markdown]
# Meanwhile job 31 is still `b`'s, unacknowledged, while `a` already took job 32 and
# finished it: the server did not wait for `b`. ADR-42 says so itself: "there will be
# times when one client thinks it is pinned while processing messages when it isn't
# anymore". **Pinning picks who gets new messages; it is not a lock.** A handler that
# must never overlap needs idempotency (notebook 10) or a check of its own.

# %%
info = await js.consumer_info("WORK", "work")
info.num_ack_pending, [int(msg.data) for msg in held]

# %%
for msg in held:
    await msg.ack()

# %% [markdown]
# edalab's `unpin(js, stream, consumer, group)` sends the same request, and the
# advisory's reason says who asked:

# %%
from edalab import unpin

await unpin(js, "WORK", "work", "workers")
await until(lambda: list(pins.values())[-1] == ("UNPINNED", "admin"), "the advisory")
list(pins.values())[-1]

# %% [markdown]
# ## Overflow: extra workers only when the backlog grows
#
# The `overflow` policy has no pin. A pull may say `min_pending` (or `min_ack_pending`):
# the server serves it only while the consumer has at least that many messages waiting
# (or unacknowledged). A primary worker pulls without a threshold; a helper pulls with
# `min_pending=50`:

# %%
await fresh_stream(js, "BACKLOG", ["backlog.>"])
await ensure_priority_consumer(js, "BACKLOG", "bulk", group="bulk", policy="overflow")
primary = PriorityPuller(js, "BACKLOG", "bulk", "bulk")
helper = PriorityPuller(js, "BACKLOG", "bulk", "bulk", min_pending=50)


async def take(puller):
    msgs = await puller.fetch(batch=200, timeout=0.3)
    for msg in msgs:
        await msg.ack()
    return len(msgs)


async def backlog(n):
    for _ in range(n):
        await js.publish("backlog.job", b"{}")
    return (await js.consumer_info("BACKLOG", "bulk")).num_pending


# %% [markdown]
# A backlog of 10: the helper's pull waits and expires empty; the primary takes all.

# %%
await backlog(10), await take(helper), await take(primary)

# %% [markdown]
# A backlog of 120: the helper is served while the backlog (counting the message about
# to go out) is at least 50, so from 120 down to 50: 71 messages. The last 49 are left
# for the primary:

# %%
await backlog(120), await take(helper), await take(primary)

# %% [markdown]
# A `min_pending` on a `pinned_client` consumer, or a pin id on an `overflow` one, is a
# 400. (nats-server 2.12 added a third policy, `prioritized`: pulls carry a `priority`
# from 0 to 9 and the lowest is served first.)
#
# ## Not the same as ...
#
# Two workers on each of three other consumers, 12 jobs each (each consumer filters
# its own subject): a plain one, one with `max_ack_pending=1`, and a pinned one. Each
# worker pulls up to 3 at a time and counts the jobs it holds unacknowledged; both
# workers' pulls are waiting before the jobs go out:

# %%
from edalab.course import Table

await fresh_stream(js, "DRILL", ["drill.>"])
for name, limit in (("plain", None), ("one-at-a-time", 1)):
    only = ConsumerConfig(durable_name=name, filter_subject=f"drill.{name}", max_ack_pending=limit)
    await js.add_consumer("DRILL", only, ack_policy="explicit")
await ensure_priority_consumer(
    js, "DRILL", "pinned", group="drill", priority_timeout=1.0, filter_subject="drill.pinned"
)


async def puller(consumer):
    """A fetch function for one worker of ``consumer``: edalab's for the pinned one."""
    if consumer == "pinned":
        pinned = PriorityPuller(js, "DRILL", consumer, "drill")
        return lambda: pinned.fetch(batch=3, timeout=0.2)
    sub = await js.pull_subscribe_bind(consumer, "DRILL")
    return lambda: sub.fetch(3, timeout=0.2)


# %%
async def drill(consumer):
    got, held, peak = {"a": 0, "b": 0}, [0], [0]

    async def worker(name):
        fetch = await puller(consumer)
        while sum(got.values()) < 12:
            with contextlib.suppress(TimeoutError):
                msgs = await fetch()
                held[0] += len(msgs)
                peak[0] = max(peak[0], held[0])
                for msg in msgs:
                    await asyncio.sleep(0.01)  # the job's work
                    got[name] += 1
                    held[0] -= 1
                    await msg.ack()

    tasks = [asyncio.create_task(worker(name)) for name in got]
    await pulls_waiting("DRILL", consumer, 2)
    for n in range(12):
        await js.publish(f"drill.{consumer}", str(n).encode())
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
    busy = sum(1 for count in got.values() if count)
    return [consumer, busy, 1 if peak[0] == 1 else "more than 1"]


# %%
headers = ["consumer", "workers that got jobs", "jobs in flight at once"]
Table(headers, [await drill(c) for c in ("plain", "one-at-a-time", "pinned")])

# %% [markdown]
# | | who gets messages | in flight | when a worker dies |
# |---|---|---|---|
# | queue group (core NATS, or a push consumer's `deliver_group`) | every member, spread among them | no limit in core NATS; a push consumer's `max_ack_pending` | the others carry on; nothing to take over |
# | `max_ack_pending=1` | every worker that pulls, one message at a time | 1 for the whole consumer | its message is redelivered after `ack_wait`; the others carry on |
# | `pinned_client` | one worker; the others stand by | what the pinned worker pulls (up to `max_ack_pending`) | the standby takes over `priority_timeout` after its last pull; its unacked messages come back after `ack_wait` |
# | one worker per partition (14) | one worker per partition, all active | per partition (1 with `max_ack_pending=1`) | its partition stops until you start another worker for it |
#
# `max_ack_pending=1` gives order, not one worker: the next message goes to whichever
# pull is waiting. Pinning gives one active worker, but neither a lock (see unpinning)
# nor order across a takeover: a dead worker's unacknowledged messages come back after
# `ack_wait`, when the standby has moved on to newer ones. The ideas combine: a
# `pinned_client` consumer per partition gives each partition one active worker and a
# standby.
#
# ## Changing the partition count moves keys
#
# A partition is the key's FNV-1a hash **modulo** the number of partitions (notebook
# 14), so changing that number moves most keys. The same six keys before and after a
# stream's transform goes from 3 to 4 partitions:

# %%
from nats.js.api import SubjectTransform

from edalab import ensure_stream


def partitions(n):
    return SubjectTransform(
        src="keyed.*", dest=f"keyed.{{{{partition({n},1)}}}}.{{{{wildcard(1)}}}}"
    )


keys = ["ana", "ben", "cai", "dan", "eva", "hana"]
await fresh_stream(js, "KEYED", ["keyed.*"], subject_transform=partitions(3))
for key in keys:
    await js.publish(f"keyed.{key}", b"before")
await ensure_stream(js, "KEYED", ["keyed.*"], subject_transform=partitions(4))
for key in keys:
    await js.publish(f"keyed.{key}", b"after")
stored = [(await js.get_msg("KEYED", seq)).subject.split(".")[1] for seq in range(1, 13)]
Table(["key", "partition of 3", "partition of 4"], zip(keys, stored[:6], stored[6:], strict=True))

# %% [markdown]
# Five of six keys moved. A key's older messages wait in its old partition while its
# new ones go to the new partition's worker: two workers handle the same key at once,
# and its order is gone. Drain every partition before changing the count (stop
# publishing, let each worker finish, then change the transform and the consumers).
#
# ## Recap
#
# - A pull consumer with `priority_policy="pinned_client"` and a group delivers to one
#   pinned client; the others' pulls wait. Every pull must name the group (else 400);
#   the pinned one also sends its `Nats-Pin-Id`.
# - Priority groups, both policies shown here, the pin header, UNPIN and the advisories
#   came with nats-server 2.11 (the `prioritized` policy with 2.12); this course runs
#   2.15.1.
# - The pin moves `priority_timeout` (default 2 minutes) after the pinned client's last
#   pull, or when an operator calls `$JS.API.CONSUMER.UNPIN`; the `PINNED`/`UNPINNED`
#   advisories say when, the old client gets 423 on its next pull.
# - It is not a lock: the old pinned client may still be working on its last messages.
# - `overflow` with `min_pending`/`min_ack_pending` adds helpers only above a backlog.
# - A queue group and `max_ack_pending=1` spread work over every worker; partitions keep
#   one worker per key range, and changing their number moves keys.
# - nats-py 2.16 has no API for this: edalab's `ensure_priority_consumer`,
#   `PriorityPuller`, `pinned_client` and `unpin` are thin layers over the JSON above.
#
# ## Exercise
#
# Write `config`, the consumer's settings as a dict: the checker passes it to
# `ensure_priority_consumer` (`group`, `priority_timeout`, optionally `policy`, and any
# `ConsumerConfig` field), or, without `group`, to `ensure_consumer`. And write a worker
# `async def worker(js, stream, consumer, handle)` that pulls forever, awaits
# `handle(msg)` for each message, then acks it. The checker creates the consumer on a
# stream of its own and runs two workers. It checks that only one handles jobs, acking
# each after `handle`, and keeps its pin while there is no work; then it cancels that
# one (it must stop) and checks that the other takes over within 3 seconds, and that no
# job is handled by both, or by two workers at once.

# %%
config = worker = None  # your answer, in the next cell, replaces this

# %% tags=["solution"]
config = {"group": "workers", "priority_timeout": 1.0}


async def worker(js, stream, consumer, handle):
    puller = PriorityPuller(js, stream, consumer, "workers")
    while True:
        for msg in await puller.fetch(batch=5, timeout=0.25):
            await handle(msg)
            await msg.ack()


# %%
from edalab.course import check, hint  # stuck? hint("19") in a new cell

await check("19", js, config, worker)
