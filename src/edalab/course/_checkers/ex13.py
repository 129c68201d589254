"""The checker of exercise 13 (notebook 13_clustering).

The task: an R3 stream surviving a follower restart, every replica caught up.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from ._core import _events, _require, _stream


async def checker(js: JetStreamContext) -> str:
    info = await _stream(js, "AUDIT")
    _require(
        info.config.num_replicas == 3,
        f"AUDIT has {info.config.num_replicas} replica(s); expected 3: create it in the "
        "cluster with num_replicas=3",
    )
    cluster = info.cluster
    leader = cluster.leader if cluster else None
    _require(
        bool(leader),
        "AUDIT has no leader right now; expected one: is a majority of its nodes running?",
    )
    replicas = (cluster.replicas if cluster else None) or []
    _require(
        len(replicas) == 2,
        f"AUDIT's leader {leader} reports {len(replicas)} follower(s); expected 2",
    )
    behind = [
        f"{r.name} ({'offline' if r.offline else f'lag {r.lag or 0}'})"
        for r in replicas
        if r.offline or not r.current or (r.lag or 0)
    ]
    _require(
        not behind,
        f"not every replica of AUDIT has caught up: {', '.join(behind)}; restart the "
        "stopped follower and wait_until_current(js, 'AUDIT')",
    )
    _require(
        info.state.messages == 200,
        f"AUDIT holds {info.state.messages} messages; expected 200: 100 before stopping a "
        "follower and 100 while it is down",
    )
    ids = [event.id for event in await _events(js, info)]
    _require(
        len(set(ids)) == 200,
        f"AUDIT's 200 messages hold only {len(set(ids))} distinct event ids; expected 200: "
        "some events were stored twice; publish with Nats-Msg-Id (publish_events does) and "
        "retry with it",
    )
    return "AUDIT is replicated three times, every follower current, with 200 distinct events"
