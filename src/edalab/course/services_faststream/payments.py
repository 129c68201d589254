"""The capstone's payments service as a FastStream app (notebook ``22_workbook_to_service``).

Charges each placed order once and publishes ``shop.payment.captured``. Run it on its
own, outside Jupyter::

    NATS_URL=nats://127.0.0.1:4222 faststream run edalab.course.services_faststream.payments:app

Everything edalab adds is a FastStream piece on this broker: the decoder upcasts a
version-1 order, ``Failures`` naks a bug's error until ``max_deliver`` gives up (a dead
letter) and terminates what can never succeed, the guard records each charge once in the
``shop-charges`` bucket, and ``EventPublishing`` gives the payment its id as
``Nats-Msg-Id``. ``SHOP_PAYMENTS_FIXED=1`` deploys the fix of the capstone's bug (a free
order divides by zero); ``SHOP_ACK_WAIT`` sets the consumers' ``ack_wait`` (seconds).
"""

from __future__ import annotations

import logging
import os

from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from nats.js.api import ConsumerConfig

from edalab import DeadLetters, Event, SchemaRegistry, ensure_stream, jetstream
from edalab.course.shop import OrderPlacedV1, OrderPlacedV2, PaymentCaptured, payment_id
from edalab.faststream import (
    EventDecoder,
    EventPublishing,
    Failures,
    IdempotencyGuard,
    ReplayRoute,
)

STREAM = "SHOP"
DURABLE = "shop-payments"
FIXED = os.environ.get("SHOP_PAYMENTS_FIXED") == "1"
ACK_WAIT = float(os.environ.get("SHOP_ACK_WAIT", "5"))

registry = SchemaRegistry()
registry.register("shop.order.placed", 1, OrderPlacedV1)
registry.register("shop.order.placed", 2, OrderPlacedV2)
registry.upcaster("shop.order.placed", 1)(lambda data: {**data, "currency": "EUR"})

# Per-message logs at DEBUG: a production service logs what goes wrong, not every message.
broker = NatsBroker(
    os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    log_level=logging.DEBUG,
    middlewares=[EventPublishing(), Failures(delay=0.1)],
)
charges = IdempotencyGuard("shop-charges", broker)
broker.add_middleware(charges)  # the innermost: Failures sees what the guard raises
app = FastStream(broker)

replays = ReplayRoute(STREAM, DURABLE)
config = ConsumerConfig(max_deliver=3, ack_wait=ACK_WAIT)
decoder = EventDecoder(registry)
pull = PullSub(batch_size=20, timeout=1.0)


@app.on_startup
async def streams() -> None:
    """The stream and the dead letters exist before the consumers (edalab's idempotent setup)."""
    await broker.connect()
    js = jetstream(broker.connection)
    await ensure_stream(js, STREAM, ["shop.>"])
    await DeadLetters(js).setup()


@broker.subscriber(
    "shop.order.placed",
    stream=JStream(STREAM, declare=False),  # edalab's ensure_stream owns it, above
    durable=DURABLE,
    config=config,
    pull_sub=pull,
    decoder=decoder,
    ack_policy=AckPolicy.NACK_ON_ERROR,  # an error publishing the result: retried
)
@broker.subscriber(  # the dead letters replayed to payments, and to nobody else
    replays.subject,
    stream=replays.jstream,
    durable=replays.durable,
    config=config,
    pull_sub=pull,
    decoder=decoder,
    ack_policy=AckPolicy.NACK_ON_ERROR,
)
@broker.publisher("shop.payment.captured", stream=STREAM)
async def pay(event: Event) -> Event:
    """Charge the order (the guard records it once) and say so: ``shop.payment.captured``."""
    order = OrderPlacedV2.model_validate(event.data)  # version 1 arrives upcast
    if FIXED:
        fee = 1000 // order.total_cents if order.total_cents else 0
    else:
        fee = 1000 // order.total_cents  # the capstone's bug: a free order divides by zero
    paid = PaymentCaptured(
        order_id=order.order_id,
        user_id=order.user_id,
        amount_cents=order.total_cents,
        currency=order.currency,
        fee_cents=fee,
    )
    return Event.create("shop.payment.captured", paid, id=payment_id(event.id), source="payments")
