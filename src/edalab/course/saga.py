"""An order saga, two ways, over the same services (notebook ``16_patterns``).

An order needs stock reserved and a payment charged; when the payment is declined,
the reservation must be released (a *compensation*: a new action that undoes an
earlier one, since nothing in an event log is ever rolled back). The services'
business logic is the same both ways:

- ``Stock.reserve`` / ``Stock.release`` keep reservations (idempotent per order);
- ``Billing.charge`` declines any order above a card limit (idempotent per order).

**Choreography**: nobody is in charge. Each service reacts to events and publishes
its own: ``order.placed`` -> stock -> ``stock.reserved`` -> billing ->
``billing.charged`` | ``billing.declined`` -> stock releases -> ``stock.released``
-> orders -> ``order.completed`` | ``order.cancelled``.

**Orchestration**: one saga coordinator reacts to ``order.placed`` and sends
*commands* (request-reply to ``cmd.stock.reserve``, ``cmd.billing.charge``,
``cmd.stock.release``), deciding each next step itself, then publishes the outcome.

Every derived event's id comes from its cause (:func:`edalab.derived_id`),
so a redelivered cause republishes the same id and ``Nats-Msg-Id`` dedup keeps one.

    saga = Choreography(js)
    await saga.start()
    await place_order(js, "o1", amount_cents=900)
    await saga.settle()
    await outcomes(js)                # {'o1': ['order.completed']}
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from edalab import (
    CORRELATION_ID,
    Delivery,
    Event,
    EventConsumer,
    JetStream,
    TraceContext,
    derived_id,
    flow_headers,
    publish_event,
    stream_messages,
    wait_for,
)
from edalab.course.services import Services

from ._lesson import fresh_stream

__all__ = [
    "CARD_LIMIT_CENTS",
    "STREAM",
    "SUBJECTS",
    "Billing",
    "Choreography",
    "Orchestration",
    "Stock",
    "outcomes",
    "place_order",
    "setup",
]

STREAM = "ORDERS"
SUBJECTS = ["order.>", "stock.>", "billing.>"]
CARD_LIMIT_CENTS = 5_000
OUTCOMES = ("order.completed", "order.cancelled")


async def setup(js: JetStream) -> None:
    """A fresh ORDERS stream for the saga's events."""
    await fresh_stream(js, STREAM, SUBJECTS)


@dataclass
class Stock:
    """Reservations per order: reserve twice, release twice, same result."""

    reserved: dict[str, int] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)

    def reserve(self, order_id: str, items: int) -> bool:
        """Reserve ``items`` for the order (always succeeds here; idempotent)."""
        self.reserved.setdefault(order_id, items)
        return True

    def release(self, order_id: str) -> bool:
        """Undo a reservation (the compensation); True the first time only."""
        if order_id in self.released or order_id not in self.reserved:
            return False
        self.released.add(order_id)
        return True


@dataclass
class Billing:
    """Charges per order; declines anything above the card limit."""

    limit_cents: int = CARD_LIMIT_CENTS
    charged: dict[str, int] = field(default_factory=dict)

    def charge(self, order_id: str, amount_cents: int) -> bool:
        """Charge once per order; ``False`` when declined."""
        if amount_cents > self.limit_cents:
            return False
        self.charged.setdefault(order_id, amount_cents)
        return True


async def place_order(js: JetStream, order_id: str, *, amount_cents: int, items: int = 1) -> Event:
    """Publish ``order.placed``: the first event of a flow, with a new trace."""
    event = Event.create(
        "order.placed",
        {"order_id": order_id, "amount_cents": amount_cents, "items": items},
        id=f"order-{order_id}",
        source="/shop/orders",
    )
    trace = TraceContext.new()
    await publish_event(js, event, headers=flow_headers(trace, correlation_id=event.id))
    return event


async def emit(js: JetStream, cause: Delivery, kind: str, data: dict[str, Any]) -> Event:
    """Publish the event of ``kind`` caused by ``cause``: derived id, same trace, causation."""
    parent = TraceContext.from_headers(cause.msg.headers) or TraceContext.new()
    event = Event.create(kind, data, id=derived_id(cause.event.id, kind), source="/shop")
    correlation = (cause.msg.headers or {}).get(CORRELATION_ID, cause.event.id)
    headers = flow_headers(
        parent.child(kind), correlation_id=correlation, causation_id=cause.event.id
    )
    await publish_event(js, event, headers=headers)
    return event


Handler = Callable[[Event, Delivery], Awaitable[None]]


class _Services:
    """Consumers running handlers; shared by both styles."""

    def __init__(self, js: JetStream) -> None:
        self.js = js
        self.stock = Stock()
        self.billing = Billing()
        #: The services, each a consumer serving its handler, under one TaskGroup.
        self.services = Services()

    @property
    def consumers(self) -> list[EventConsumer]:
        """The services' consumers."""
        return self.services.consumers

    async def _run(self, name: str, filters: list[str], handler: Handler) -> None:
        await self.services.start()
        consumer = await EventConsumer.create(
            self.js, STREAM, name, filter_subjects=filters, ack_wait=5
        )
        # A handler's error (a command that timed out) is retried: the saga starts over.
        self.services.add(
            name, consumer, handler, batch=20, idle=1.0, retry_delay=0.05, unexpected="retry"
        )

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every service has handled everything published so far."""

        async def quiet() -> bool:
            # Quiet means: no consumer holds or awaits anything, and nothing was published
            # while we asked (a handler publishes before it acks, so an event in flight
            # shows as ack-pending or as a new last sequence).
            self.services.check()  # a crashed service surfaces here, at once
            before = (await self.js.stream_info(STREAM)).state.last_seq
            for consumer in self.consumers:
                info = await consumer.info()
                if info.num_pending or info.num_ack_pending:
                    return False
            return (await self.js.stream_info(STREAM)).state.last_seq == before

        await wait_for(quiet, timeout=timeout, what="every saga service to catch up")

    async def stop(self) -> None:
        """Stop every service (the durable consumers stay on the server)."""
        await self.services.stop()


async def outcomes(js: JetStream) -> dict[str, list[str]]:
    """Each order's final events as stored in the stream (one each, when all went well)."""
    found: dict[str, list[str]] = {}
    async for _, raw in stream_messages(js, STREAM):
        if raw.subject in OUTCOMES:
            order_id = Event.from_json(raw.data or b"", subject=raw.subject).data["order_id"]
            found.setdefault(order_id, []).append(raw.subject)
    return dict(sorted(found.items()))


class Choreography(_Services):
    """Each service reacts to events; nobody coordinates."""

    async def start(self, *, billing: bool = True) -> None:
        """Start the stock, billing and orders services as consumers of ORDERS.

        ``billing=False`` leaves billing to another process (the fault test kills it).
        """
        await self._run("chor-stock", ["order.placed", "billing.declined"], self.on_stock)
        if billing:
            await self.start_billing()
        await self._run("chor-orders", ["billing.charged", "stock.released"], self.on_orders)

    async def start_billing(self) -> None:
        """Start the billing service alone."""
        await self._run("chor-billing", ["stock.reserved"], self.on_billing)

    async def on_stock(self, event: Event, delivery: Delivery) -> None:
        """Stock: reserve for a placed order; release when its payment is declined."""
        order_id = event.data["order_id"]
        if event.type == "order.placed":
            self.stock.reserve(order_id, event.data["items"])
            await emit(self.js, delivery, "stock.reserved", event.data)
        elif event.type == "billing.declined":
            self.stock.release(order_id)
            await emit(self.js, delivery, "stock.released", {"order_id": order_id})

    async def on_billing(self, event: Event, delivery: Delivery) -> None:
        """Billing: charge the reserved order; say charged or declined."""
        ok = self.billing.charge(event.data["order_id"], event.data["amount_cents"])
        kind = "billing.charged" if ok else "billing.declined"
        await emit(self.js, delivery, kind, {"order_id": event.data["order_id"]})

    async def on_orders(self, event: Event, delivery: Delivery) -> None:
        """Orders: completed when charged, cancelled when the stock was released."""
        kind = "order.completed" if event.type == "billing.charged" else "order.cancelled"
        await emit(self.js, delivery, kind, {"order_id": event.data["order_id"]})


class Orchestration(_Services):
    """One coordinator sends commands and decides; the services only answer."""

    def __init__(self, js: JetStream, nc: NATS) -> None:
        super().__init__(js)
        self.nc = nc
        self.subs: list[Any] = []

    async def start(self) -> None:
        """Start the command handlers (request-reply) and the saga coordinator."""
        self.subs = [
            # A queue group: with two instances of a service, one of them does the command
            # (every plain subscriber would receive, and do, it).
            await self.nc.subscribe("cmd.stock.reserve", queue="stock", cb=self._reserve),
            await self.nc.subscribe("cmd.stock.release", queue="stock", cb=self._release),
            await self.nc.subscribe("cmd.billing.charge", queue="billing", cb=self._charge),
        ]
        await self.nc.flush()
        await self._run("orch-saga", ["order.placed"], self.coordinate)

    async def stop(self) -> None:
        """Stop the coordinator and the command handlers."""
        await super().stop()
        for sub in self.subs:
            await sub.unsubscribe()

    async def _reply(self, msg: Msg, ok: bool) -> None:
        await msg.respond(json.dumps({"ok": ok}).encode())

    async def _reserve(self, msg: Msg) -> None:
        body = json.loads(msg.data)
        await self._reply(msg, self.stock.reserve(body["order_id"], body["items"]))

    async def _release(self, msg: Msg) -> None:
        await self._reply(msg, self.stock.release(json.loads(msg.data)["order_id"]))

    async def _charge(self, msg: Msg) -> None:
        body = json.loads(msg.data)
        await self._reply(msg, self.billing.charge(body["order_id"], body["amount_cents"]))

    async def command(self, subject: str, body: dict[str, Any]) -> bool:
        """Send one command and await its answer.

        A timeout raises, and the saga is retried from the top: the command may or may
        not have been done, which is why every command is idempotent per order.
        """
        reply = await self.nc.request(subject, json.dumps(body).encode(), timeout=2)
        return bool(json.loads(reply.data)["ok"])

    async def coordinate(self, event: Event, delivery: Delivery) -> None:
        """The saga: reserve, charge, and on a decline release; then publish the outcome."""
        order = event.data
        await self.command("cmd.stock.reserve", order)
        if await self.command("cmd.billing.charge", order):
            await emit(self.js, delivery, "order.completed", {"order_id": order["order_id"]})
            return
        await self.command("cmd.stock.release", order)  # the compensation
        await emit(self.js, delivery, "order.cancelled", {"order_id": order["order_id"]})


async def _billing_service(url: str) -> None:
    """The choreography's billing service alone, in a process of its own (fault test)."""
    from edalab import connect

    nc = await connect(url)
    saga = Choreography(nc.jetstream())
    await saga.start_billing()
    print("billing running", flush=True)
    await saga.services.wait()


if __name__ == "__main__":  # python -m edalab.course.saga billing NATS_URL
    if sys.argv[1:2] == ["billing"]:
        asyncio.run(_billing_service(sys.argv[2]))
