# %% [markdown]
# # 15 · Performance
#
# **Learning goals**
#
# - see why awaiting one acknowledgement per event is slow, and what a publish window buys;
# - choose fetch batch sizes for pull consumers;
# - know what each ack policy guarantees, and what it costs;
# - read the benchmark suite's results (edalab against raw nats-py, as ratios).
#
# > **From NATS Streaming.** STAN had the same trade-off: `Publish` waited for each ack,
# > `PublishAsync` with `MaxPubAcksInflight` kept a window of unacknowledged messages,
# > and `MaxInflight` bounded unacknowledged deliveries per subscription. JetStream's
# > equivalents: `publish_async` with a window, and `max_ack_pending` per consumer.
#
# Timings depend on the machine, so cells that print them are not checked by the test
# suite; the shapes of the results are what to look at.

# %%
import time

from edalab import connect, ensure_server, fresh_stream, publish_event, publish_events
from edalab.factories import EventFactory

server = ensure_server()
nc = await connect(server)
js = nc.jetstream()
make = EventFactory(prefix="perf-")
await fresh_stream(js, "PERF", ["perf.>"])


def rate(count, started):
    return f"{count / (time.perf_counter() - started):,.0f} events/s"


# %% [markdown]
# ## One round trip per event
#
# `await js.publish(...)` sends the event and waits for the `PubAck`: every event costs a
# full round trip to the server and a write to its store.

# %%
# NBVAL_IGNORE_OUTPUT
events = [make("perf.event", {"n": i}) for i in range(1000)]
started = time.perf_counter()
for event in events:
    await publish_event(js, event)
rate(len(events), started)

# %% [markdown]
# ## A window of publishes in flight
#
# `publish_events` sends without waiting, keeping up to `window` events unacknowledged,
# and still returns only when every `PubAck` has arrived. Same guarantee, many round
# trips overlapped:

# %%
# NBVAL_IGNORE_OUTPUT
events = [make("perf.event", {"n": i}) for i in range(10_000)]
results = {}
for window in (1, 16, 256, 4096):
    await fresh_stream(js, "PERF", ["perf.>"])
    started = time.perf_counter()
    await publish_events(js, events, window=window)
    results[window] = rate(len(events), started)
results

# %% [markdown]
# Gains flatten once the window covers the round trip; a larger window then only costs
# memory (and more to resend after a failure).
#
# ## Fetch batch sizes
#
# A pull consumer's `fetch(n)` is one request for up to `n` messages. `fetch(1)` pays a
# round trip per message; larger batches amortise it:

# %%
# NBVAL_IGNORE_OUTPUT
from edalab import EventConsumer

consumer_rates = {}
for batch in (1, 16, 256):
    consumer = await EventConsumer.create(js, "PERF", f"batch-{batch}")
    started = time.perf_counter()
    count = 0
    async for delivery in consumer.events(batch=batch, timeout=1, max_events=3000):
        await delivery.ack()
        count += 1
    consumer_rates[batch] = rate(count, started)
consumer_rates

# %% [markdown]
# ## Ack policies and what they guarantee
#
# | `ack_policy` | each message | guarantee |
# |---|---|---|
# | `explicit` (default) | acked one by one | at least once, per message (the course's) |
# | `all` | acking *n* acks all before it | at least once, if you ack after the batch |
# | `none` | nothing to ack | at most once: a crash loses what was delivered |
#
# `ack_policy=all` saves an ack per message. The catch: acking the last message of a
# batch also acknowledges any earlier message you have not actually finished.

# %%
from nats.js.api import AckPolicy

await fresh_stream(js, "PERF", ["perf.>"])
await publish_events(js, [make("perf.event", {"n": i}) for i in range(10)])
cumulative = await EventConsumer.create(js, "PERF", "cumulative", ack_policy=AckPolicy.ALL)
batch = await cumulative.fetch(10)
before = (await cumulative.info()).num_ack_pending
await batch[-1].ack(sync=True)
after = (await cumulative.info()).num_ack_pending
before, after

# %% [markdown]
# ## The benchmark suite
#
# `benchmarks/run.py` measures each edalab path against the raw nats-py code a learner
# would write, in the same run against the same server, and reports ratios
# (`--quick` takes about a minute; `benchmarks/README.md` explains the output). A
# scaled-down run here:

# %%
# NBVAL_IGNORE_OUTPUT
from edalab.course.bench import run_all, summary

bench = await run_all(server.url, quick=True, rounds=1, scale=0.1)
print(summary(bench))

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(9, 3.5))
names = [r.name for r in bench]
ax.barh(names, [r.ratio for r in bench])
ax.axvline(1.0, color="grey", linestyle="--")
ax.set_xlabel("edalab / raw nats-py (higher is faster)")
ax.set_xscale("log")
fig.tight_layout()

# %% [markdown]
# ## Recap
#
# - One awaited `PubAck` per event is bounded by the round trip; a window of async
#   publishes keeps the same guarantee at many times the rate.
# - Fetch in batches; `fetch(1)` in a loop is the consumer's version of the same mistake.
# - `explicit` acks are the safe default; `all` trades per-message certainty for fewer
#   acks; `none` is at most once.
# - Compare against raw nats-py in one run: absolute rates depend on the machine.
#
# ## Exercise
#
# Find the smallest publish window that reaches 90 % of the rate of `window=4096` on your
# machine. Does it change when the stream uses memory storage
# (`storage=StorageType.MEMORY`)?

# %% tags=["solution"]
# NBVAL_IGNORE_OUTPUT
from nats.js.api import StorageType

for storage in (StorageType.FILE, StorageType.MEMORY):
    rates = {}
    for window in (8, 32, 128, 512, 4096):
        await fresh_stream(js, "PERF", ["perf.>"], storage=storage)
        started = time.perf_counter()
        await publish_events(js, events, window=window)
        rates[window] = len(events) / (time.perf_counter() - started)
    best = rates[4096]
    print(storage.value, min(w for w, r in rates.items() if r >= 0.9 * best))

# %%
await nc.close()
