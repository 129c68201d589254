"""The checker of exercise 05 (notebook 05_subscribing).

The task: billing delivers and acks every order.placed.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from edalab import stream_messages

from ._common import consumer_filters
from ._core import _all_of, _floor, _require, _settled, _stream


async def checker(js: JetStreamContext) -> str:
    await _stream(js, "ORDERS")
    info = await _settled(js, "ORDERS", "billing")
    filters = set(consumer_filters(info.config))
    with _all_of() as want:
        want(
            filters == {"order.placed"},
            f"billing filters {sorted(filters) or 'nothing (every subject)'}; use order.placed",
        )
        want(
            info.config.durable_name == "billing",
            "billing is not durable (the server deletes a consumer without a durable name "
            "once it has been inactive, 5 s by default): create it with durable name billing",
        )
    placed = [
        seq async for seq, raw in stream_messages(js, "ORDERS") if raw.subject == "order.placed"
    ]
    _require(bool(placed), "ORDERS holds no order.placed event: publish some first")
    delivered = info.delivered.stream_seq if info.delivered else 0
    deliveries = info.delivered.consumer_seq if info.delivered else 0
    acked_deliveries = info.ack_floor.consumer_seq if info.ack_floor else 0
    seen = f"billing has delivered up to sequence {delivered} and acknowledged up to {_floor(info)}"
    policy = getattr(info.config.deliver_policy, "value", info.config.deliver_policy)
    _require(
        deliveries > 0 or bool(info.num_pending),
        f"ORDERS holds {len(placed)} order.placed events, and billing has none to deliver: "
        f"its deliver policy {policy} starts after them; create billing with the default "
        "deliver policy all",
    )
    _require(
        deliveries > 0,
        f"ORDERS holds {len(placed)} order.placed events and billing has delivered none of "
        "them: run your handler with billing.run(...)",
    )
    with _all_of() as want:
        want(
            info.num_pending == 0 and delivered >= placed[-1],
            f"{seen}; {info.num_pending} order.placed events (up to sequence {placed[-1]}) "
            "were never delivered: process them all",
        )
        want(
            info.num_ack_pending == 0 and acked_deliveries == deliveries,
            f"{seen}; {info.num_ack_pending} delivered events are not acknowledged: ack each "
            "one (run acks when the handler returns)",
        )
    _require(
        _floor(info) >= placed[-1], f"{seen}, but the last order.placed is sequence {placed[-1]}"
    )
    return (
        f"billing delivered all {len(placed)} order.placed events (up to sequence "
        f"{placed[-1]}) in {deliveries} deliveries, and every one is acknowledged"
    )
