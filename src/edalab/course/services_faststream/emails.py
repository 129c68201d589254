"""The capstone's e-mail service as a FastStream app (notebook ``22_workbook_to_service``).

One e-mail per registration and per payment, each written once: the guard records
the e-mail under the event's id in the ``shop-emails-sent`` bucket with one atomic
``create``, where the capstone's version marked the id after sending (a crash in
between sent it twice). Run it on its own::

    NATS_URL=nats://127.0.0.1:4222 faststream run edalab.course.services_faststream.emails:app
"""

from __future__ import annotations

import logging
import os

from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from nats.js.api import ConsumerConfig

from edalab import DeadLetters, Event, ensure_stream, jetstream
from edalab.course.shop import PaymentCaptured, UserRegistered
from edalab.faststream import EventDecoder, EventPublishing, Failures, IdempotencyGuard

STREAM = "SHOP"
DURABLE = "shop-email"
ACK_WAIT = float(os.environ.get("SHOP_ACK_WAIT", "5"))

broker = NatsBroker(
    os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    log_level=logging.DEBUG,
    middlewares=[EventPublishing(), Failures(delay=0.1)],
)
sent = IdempotencyGuard("shop-emails-sent", broker)
broker.add_middleware(sent)
app = FastStream(broker)
# user id -> e-mail, from the registrations seen: the app's memory, outside the guard's
# record. A new process starts with it empty (registrations already acknowledged are not
# delivered again, recorded ones skip the handler), so a payment's e-mail may go to the
# user id; a real service keeps such state in a key-value bucket.
addresses: dict[str, str] = {}


@app.on_startup
async def streams() -> None:
    """The stream and the dead letters exist before the consumer."""
    await broker.connect()
    js = jetstream(broker.connection)
    await ensure_stream(js, STREAM, ["shop.>"])
    await DeadLetters(js).setup()


@broker.subscriber(
    stream=JStream(STREAM, declare=False),
    durable=DURABLE,
    # one consumer, two subjects (a JetStream consumer's filter_subjects)
    config=ConsumerConfig(
        filter_subjects=["shop.user.registered", "shop.payment.captured"],
        max_deliver=3,
        ack_wait=ACK_WAIT,
    ),
    pull_sub=PullSub(batch_size=20, timeout=1.0),
    decoder=EventDecoder(),
    ack_policy=AckPolicy.NACK_ON_ERROR,
)
async def write(event: Event) -> str:
    """The e-mail for one event; the guard records it, once, as sent."""
    if event.type == "shop.user.registered":
        user = event.payload(UserRegistered)
        addresses[user.user_id] = user.email
        return f"to {user.email}: welcome"
    pay = event.payload(PaymentCaptured)
    to = addresses.get(pay.user_id, pay.user_id)
    return f"to {to}: paid {pay.amount_cents} {pay.currency}"
