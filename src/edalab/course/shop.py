"""A small shop built only from events (notebook ``17_capstone``).

Five services talk exclusively through the ``SHOP`` stream (``shop.>``):

- **users** publishes ``shop.user.registered``;
- **orders** publishes ``shop.order.placed`` and marks orders paid on ``shop.payment.captured``;
- **payments** charges each placed order and publishes ``shop.payment.captured``;
- **email** writes one e-mail per registration and per payment (idempotently);
- **analytics** keeps a read model (revenue and orders per user), rebuildable by replay.

A derived event gets a **deterministic id** computed from the event that caused it
(:func:`payment_id`): a redelivered order makes payments publish the same
``payment.captured`` again, with the same ``Nats-Msg-Id``, and the stream drops the
copy. The analytics fold is idempotent (an event applied twice counts once). A dead
letter is replayed to the service that gave up on it, and no other
(:meth:`~edalab.DeadLetters.replays`).

``order.placed`` has two versions; payments reads both through a
:class:`~edalab.SchemaRegistry`. Payments has a bug (``payments_bug``):
an order of zero cents makes it divide by zero, so that event goes to dead letters
until the bug is fixed and the letter replayed. Every publish, delivery, ack, retry
and termination is recorded in a :class:`Trace` that can be drawn as a timeline::

    shop = Shop(js)
    await shop.setup()
    await shop.start()
    await shop.register_user("u1", "ann@example.com")
    await shop.place_order("o1", "u1", 1250)
    await shop.settle()
    shop.analytics.revenue       # {'u1': 1250}
    await shop.stop()
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from edalab import (
    DeadLetters,
    Delivery,
    Event,
    EventConsumer,
    JetStream,
    ProcessedIds,
    SchemaRegistry,
    publish_event,
    stream_messages,
    wait_for,
)
from edalab.course.services import Services

from ._lesson import fresh_stream

__all__ = [
    "Analytics",
    "OrderPlacedV1",
    "OrderPlacedV2",
    "PaymentCaptured",
    "PointsAwarded",
    "Shop",
    "Trace",
    "TraceEntry",
    "payment_id",
]

STREAM = "SHOP"
SERVICES = ["users", "orders", "payments", "email", "analytics"]


class UserRegistered(BaseModel):
    user_id: str
    email: str


class OrderPlacedV1(BaseModel):
    order_id: str
    user_id: str
    total_cents: int


class OrderPlacedV2(BaseModel):
    order_id: str
    user_id: str
    total_cents: int
    currency: str


class PaymentCaptured(BaseModel):
    order_id: str
    user_id: str
    amount_cents: int
    currency: str
    fee_cents: int


class PointsAwarded(BaseModel):
    """Loyalty points for one payment (the capstone's exercise)."""

    user_id: str
    payment_id: str
    points: int


@dataclass(frozen=True)
class TraceEntry:
    """One thing that happened: when, in which service, what, to which event."""

    t: float
    service: str
    kind: str  # publish, duplicate, deliver, ack, retry, term
    subject: str
    event_id: str
    delivery: int = 1


@dataclass
class Trace:
    """What actually happened during a run, for tables and a timeline plot."""

    entries: list[TraceEntry] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)

    def record(self, service: str, kind: str, subject: str, event_id: str, n: int = 1) -> None:
        """Add an entry stamped with the time since the trace started."""
        self.entries.append(
            TraceEntry(time.monotonic() - self.start, service, kind, subject, event_id, n)
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Per service, how many of each kind."""
        out: dict[str, dict[str, int]] = {s: {} for s in SERVICES}
        for e in self.entries:
            out.setdefault(e.service, {})
            out[e.service][e.kind] = out[e.service].get(e.kind, 0) + 1
        return out

    def plot(self) -> Any:
        """A timeline: one lane per service, a marker per kind (publish, duplicate, ack...)."""
        import matplotlib.pyplot as plt

        style = {
            "publish": ("o", "tab:blue"),
            "duplicate": ("D", "tab:purple"),
            "deliver": ("|", "tab:gray"),
            "ack": ("s", "tab:green"),
            "retry": ("x", "tab:orange"),
            "term": ("X", "tab:red"),
        }
        fig, ax = plt.subplots(figsize=(10, 3.8))
        lanes = {s: i for i, s in enumerate(SERVICES)}
        for kind, (marker, color) in style.items():
            points = [e for e in self.entries if e.kind == kind]
            ax.scatter(
                [e.t for e in points],
                [lanes.get(e.service, len(lanes)) + (0.15 if kind == "ack" else 0) for e in points],
                marker=marker,
                color=color,
                label=kind,
                s=36,
            )
        ax.set_yticks(list(lanes.values()), list(lanes))
        ax.set_xlabel("seconds since start")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title("event flow per service")
        fig.tight_layout()
        return fig


def payment_id(order_event_id: str) -> str:
    """The id of the payment caused by an order event: the same order, the same payment.

    >>> payment_id("evt-7")
    'payment-of-evt-7'
    """
    return f"payment-of-{order_event_id}"


@dataclass
class Analytics:
    """The read model: revenue (cents) and number of paid orders per user.

    Idempotent: it remembers the ids of the payments it counted, so an event
    delivered twice changes it once.
    """

    revenue: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set, repr=False)

    def apply(self, event: Event) -> None:
        """Fold one event into the model (only payments change it; each one once)."""
        if event.type != "shop.payment.captured" or event.id in self.counted:
            return
        pay = event.payload(PaymentCaptured)
        self.revenue[pay.user_id] = self.revenue.get(pay.user_id, 0) + pay.amount_cents
        self.orders[pay.user_id] = self.orders.get(pay.user_id, 0) + 1
        self.counted.add(event.id)


Handler = Callable[[Event, Delivery], Awaitable[None]]


class Shop:
    """The five services, their consumers and their state."""

    def __init__(self, js: JetStream, *, trace: Trace | None = None) -> None:
        self.js = js
        self.trace = trace or Trace()
        self.payments_bug = True
        self.registry = SchemaRegistry()
        self.registry.register("shop.order.placed", 1, OrderPlacedV1)
        self.users: dict[str, str] = {}
        self.paid_orders: set[str] = set()
        self.emails: list[str] = []
        self.analytics = Analytics()
        self.dead = DeadLetters(js)
        self._consumers: dict[str, EventConsumer] = {}
        self._services = Services(self._hiccup)

    # -- setup -------------------------------------------------------------------
    async def setup(self) -> None:
        """A fresh SHOP stream, the dead-letter stream, the e-mail dedup bucket."""
        await fresh_stream(self.js, STREAM, ["shop.>"])
        await self.dead.setup()
        await self.js.purge_stream(self.dead.stream)
        with contextlib.suppress(Exception):
            await self.js.delete_key_value("shop-emails")
        self.sent = await ProcessedIds.open(self.js, "shop-emails")

    def roll_out_order_v2(self) -> None:
        """Teach payments version 2 of order.placed (before any producer sends it)."""
        self.registry.register("shop.order.placed", 2, OrderPlacedV2)
        self.registry.upcaster("shop.order.placed", 1)(lambda d: {**d, "currency": "EUR"})

    # -- publishing (what the users and orders services expose) -------------------
    async def _publish(self, service: str, event: Event) -> None:
        self.trace.record(service, "publish", event.type, event.id)
        ack = await publish_event(self.js, event, retry_for=10)
        if ack.duplicate:  # the stream already held this id: the copy was dropped
            self.trace.record(service, "duplicate", event.type, event.id)

    async def register_user(self, user_id: str, email: str) -> None:
        """The users service: someone signed up."""
        data = UserRegistered(user_id=user_id, email=email)
        await self._publish("users", Event.create("shop.user.registered", data, source="users"))

    async def place_order(
        self, order_id: str, user_id: str, total_cents: int, *, currency: str | None = None
    ) -> None:
        """The orders service: an order was placed (version 2 when a currency is given)."""
        if currency is None:
            data: BaseModel = OrderPlacedV1(
                order_id=order_id, user_id=user_id, total_cents=total_cents
            )
            version = 1
        else:
            data = OrderPlacedV2(
                order_id=order_id, user_id=user_id, total_cents=total_cents, currency=currency
            )
            version = 2
        event = Event.create("shop.order.placed", data, version=version, source="orders")
        await self._publish("orders", event)

    # -- the services' handlers (notebook 17 shows their source) ------------------------
    async def payments_handler(self, event: Event, delivery: Delivery) -> None:
        """payments: charge a placed order, publish ``payment.captured``."""
        order = self.registry.parse(event)  # version 1 upcast, version 2 as is
        assert isinstance(order, OrderPlacedV1 | OrderPlacedV2)
        currency = getattr(order, "currency", "EUR")
        if self.payments_bug:
            fee = 1000 // order.total_cents  # the bug: a free order divides by zero
        else:
            fee = 1000 // order.total_cents if order.total_cents else 0
        paid = PaymentCaptured(
            order_id=order.order_id,
            user_id=order.user_id,
            amount_cents=order.total_cents,
            currency=currency,
            fee_cents=fee,
        )
        # The id comes from the order event's id: if this order is delivered again,
        # the same payment is published again, and the stream drops the duplicate.
        captured = Event.create("shop.payment.captured", paid, id=payment_id(event.id))
        await self._publish("payments", captured)

    async def orders_handler(self, event: Event, delivery: Delivery) -> None:
        """orders: mark the order paid (a set: doing it twice changes nothing)."""
        self.paid_orders.add(event.payload(PaymentCaptured).order_id)

    async def email_handler(self, event: Event, delivery: Delivery) -> None:
        """email: one e-mail per registration and per payment; a redelivery is skipped by id."""

        async def send() -> None:
            if event.type == "shop.user.registered":
                user = event.payload(UserRegistered)
                self.users[user.user_id] = user.email
                self.emails.append(f"to {user.email}: welcome")
            else:
                pay = event.payload(PaymentCaptured)
                to = self.users.get(pay.user_id, pay.user_id)
                self.emails.append(f"to {to}: paid {pay.amount_cents} {pay.currency}")

        await self.sent.once(event.id, send)

    async def analytics_handler(self, event: Event, delivery: Delivery) -> None:
        """analytics: fold every event into the read model (idempotently)."""
        self.analytics.apply(event)

    def _handlers(self) -> dict[str, tuple[list[str], Handler]]:
        return {
            "payments": (["shop.order.placed"], self.payments_handler),
            "orders": (["shop.payment.captured"], self.orders_handler),
            "email": (["shop.user.registered", "shop.payment.captured"], self.email_handler),
            "analytics": (["shop.>"], self.analytics_handler),
        }

    # -- running -------------------------------------------------------------------
    async def start(self, services: Iterable[str] | None = None) -> None:
        """Create each service's durable consumer and serve it, all under one TaskGroup.

        ``services`` (names) starts only those: the others run elsewhere (notebook 22
        runs payments and email as FastStream apps, on the same stream).
        """
        await self._services.start()
        chosen = set(self._handlers() if services is None else services)
        for name, (filters, handler) in self._handlers().items():
            if name not in chosen:
                continue
            consumer = await EventConsumer.create(
                self.js,
                STREAM,
                f"shop-{name}",
                filter_subjects=filters,
                max_deliver=3,
                ack_wait=5,
                # payments reads order.placed through the registry: old versions are
                # upcast, unknown ones quarantined with the reason.
                registry=self.registry if name == "payments" else None,
            )
            self._consumers[name] = consumer
            self._serve(name, consumer, handler)
            # Dead letters replayed to this service (and no other) come back here.
            replays = await self.dead.replays(
                STREAM,
                f"shop-{name}",
                max_deliver=3,
                ack_wait=5,
                registry=self.registry if name == "payments" else None,
            )
            self._consumers[f"{name}-replays"] = replays
            self._serve(name, replays, handler)

    def _serve(self, name: str, consumer: EventConsumer, handler: Handler) -> None:
        def observe(kind: str, delivery: Delivery) -> None:
            self.trace.record(
                name, kind, delivery.subject, delivery.event.id, delivery.num_delivered
            )

        # A handler's error is retried (the payments bug runs into max_deliver and the
        # dead letters, as the lesson shows); a crash of the service itself stops the shop.
        self._services.add(
            name,
            consumer,
            handler,
            batch=20,
            idle=1.0,
            retry_delay=0.05,
            unexpected="retry",
            double_ack=True,
            observer=observe,
        )

    def _hiccup(self, name: str, err: BaseException) -> None:
        # A service must outlive a connection hiccup: note it and pull again.
        self.trace.record(name, "error", type(err).__name__, "")

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every service has handled (or given up on) everything published."""

        async def quiet() -> bool:
            self._services.check()  # a crashed service surfaces here, at once
            for consumer in self._consumers.values():
                info = await consumer.info()
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await wait_for(quiet, timeout=timeout, what="every shop service to catch up")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Shop]:
        """Set up and start the services; stop them on the way out (tests, scripts).

        async with Shop(js).running() as shop:
            await shop.place_order("o1", "u1", 1250)
        """
        await self.setup()
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop the services (their durable consumers stay on the server)."""
        await self._services.stop()

    async def stored(self, event_type: str) -> list[Event]:
        """The events of one type the SHOP stream holds, in stream order."""
        out = []
        async for seq, raw in stream_messages(self.js, STREAM):
            if raw.subject == event_type:
                out.append(Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq))
        return out

    async def rebuild_analytics(self) -> Analytics:
        """A new read model, rebuilt by replaying the whole stream from the start."""
        model = Analytics()
        replay = await EventConsumer.create(
            self.js, STREAM, "shop-analytics-rebuild", recreate=True, filter_subject="shop.>"
        )
        async for delivery in replay.events(batch=100, timeout=0.5):
            model.apply(delivery.event)
            await delivery.ack()
        await replay.close()
        await self.js.delete_consumer(STREAM, "shop-analytics-rebuild")
        return model
