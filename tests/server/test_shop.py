"""The capstone shop: services talking through events, read model, versions, dead letters."""

from __future__ import annotations

import pytest

from edalab import EventConsumer, EventFactory, connect, ensure_stream, publish_event, wait_for
from edalab.course.services import Services
from edalab.course.shop import Shop


async def test_shop_end_to_end(nats_url: str) -> None:
    """Orders get paid, e-mails go out once, a poison order is caught, replayed, and the
    read model rebuilt from the stream equals the live one."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    shop = Shop(js)
    async with shop.running():
        await shop.register_user("u1", "ann@example.com")
        await shop.register_user("u2", "bo@example.com")
        await shop.place_order("o1", "u1", 1250)
        await shop.place_order("o2", "u2", 0)  # the poison order
        await shop.settle()
        assert shop.paid_orders == {"o1"}
        [letter] = await shop.dead.wait_for(1)
        assert letter.category == "max deliveries" and letter.consumer == "shop-payments"

        shop.roll_out_order_v2()  # consumers first...
        await shop.place_order("o3", "u2", 990, currency="USD")  # ...then producers
        await shop.place_order("o4", "u1", 500)  # an old producer still sends v1
        await shop.settle()
        assert shop.paid_orders == {"o1", "o3", "o4"}

        shop.payments_bug = False
        await shop.dead.replay(letter)
        await shop.settle()
        assert shop.paid_orders == {"o1", "o2", "o3", "o4"}
        assert await shop.dead.letters() == []
    assert shop.analytics.revenue == {"u1": 1750, "u2": 990}
    assert sorted(shop.emails) == sorted(
        [
            "to ann@example.com: welcome",
            "to bo@example.com: welcome",
            "to ann@example.com: paid 1250 EUR",
            "to bo@example.com: paid 990 USD",
            "to ann@example.com: paid 500 EUR",
            "to bo@example.com: paid 0 EUR",
        ]
    )
    rebuilt = await shop.rebuild_analytics()
    assert rebuilt == shop.analytics
    counts = shop.trace.counts()
    assert counts["payments"]["retry"] == 3 and counts["users"]["publish"] == 2
    assert shop.trace.plot() is not None
    await nc.close()


async def test_unknown_order_version_is_quarantined_not_crashing(nats_url: str) -> None:
    """A v2 order before payments knows v2 is put aside with the reason; others flow."""
    nc = await connect(nats_url)
    shop = Shop(nc.jetstream())
    async with shop.running():
        await shop.register_user("u1", "ann@example.com")
        await shop.place_order("o1", "u1", 100, currency="USD")
        await shop.place_order("o2", "u1", 200)
        await shop.settle()
    assert shop.paid_orders == {"o2"}
    [letter] = await shop.dead.wait_for(1)
    assert letter.category == "unknown version"
    await nc.close()


async def test_redelivered_orders_publish_no_second_payment(nats_url: str) -> None:
    """Orders delivered again to payments (a reset consumer) re-publish each payment with
    the same derived id: the stream drops every copy and still holds one per order."""
    from collections import Counter

    from edalab import EventConsumer
    from edalab.course.shop import payment_id

    nc = await connect(nats_url)
    js = nc.jetstream()
    shop = Shop(js)
    shop.payments_bug = False
    async with shop.running():
        await shop.register_user("u1", "ann@example.com")
        await shop.place_order("o1", "u1", 1250)
        await shop.place_order("o2", "u1", 300)
        await shop.settle()
        again = await EventConsumer.create(
            js, "SHOP", "payments-again", filter_subject="shop.order.placed", recreate=True
        )
        report = await again.run(shop.payments_handler, timeout=0.5, double_ack=True)
        assert report.handled == 2
        await shop.settle()
    payments = await shop.stored("shop.payment.captured")
    orders = await shop.stored("shop.order.placed")
    assert Counter(p.data["order_id"] for p in payments) == {"o1": 1, "o2": 1}
    assert sorted(p.id for p in payments) == sorted(payment_id(o.id) for o in orders)
    assert shop.trace.counts()["payments"]["duplicate"] == 2
    assert shop.analytics.revenue == {"u1": 1550}
    await nc.close()


async def test_analytics_fold_is_idempotent() -> None:
    """Applying the same payment event twice counts it once."""
    from edalab import Event
    from edalab.course.shop import Analytics, PaymentCaptured

    pay = PaymentCaptured(
        order_id="o1", user_id="u1", amount_cents=700, currency="EUR", fee_cents=1
    )
    event = Event.create("shop.payment.captured", pay, id="payment-of-x")
    model = Analytics()
    model.apply(event)
    model.apply(event)
    assert model.revenue == {"u1": 700} and model.orders == {"u1": 1}


async def test_dead_letter_replay_reaches_only_payments(nats_url: str) -> None:
    """The poison order, replayed after the fix, is delivered again to payments and to no
    other service (analytics, which reads shop.>, saw it once)."""
    from collections import Counter

    from edalab import Event

    nc = await connect(nats_url)
    shop = Shop(nc.jetstream())
    async with shop.running():
        await shop.register_user("u1", "ann@example.com")
        await shop.place_order("o2", "u1", 0)
        await shop.settle()
        [letter] = await shop.dead.wait_for(1)
        order = Event.from_json((await shop.dead.original(letter)).data or b"")

        def deliveries() -> Counter[str]:
            return Counter(
                e.service
                for e in shop.trace.entries
                if e.kind == "deliver" and e.event_id == order.id
            )

        assert deliveries() == {"payments": 3, "analytics": 1}
        shop.payments_bug = False
        await shop.dead.replay(letter)
        await shop.settle()
        assert deliveries() == {"payments": 4, "analytics": 1}
        assert shop.paid_orders == {"o2"}
    await nc.close()


async def test_a_crashed_service_stops_the_others_and_surfaces_at_once(
    js, stream_name, token
) -> None:
    """Services run under one TaskGroup: a handler's unexpected error cancels the other
    services and is raised by the next check() (settle() calls it), not at shutdown."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    services = Services()
    await services.start()
    crashed = ZeroDivisionError("a free order")

    async def charge(event):
        raise crashed

    async def fine(event):
        pass

    for name, handler in (("quiet", fine), ("payments", charge)):
        consumer = await EventConsumer.create(js, stream_name, name, ack_wait=30)
        services.add(name, consumer, handler, idle=30)
    await publish_event(js, EventFactory()(f"{token}.placed"))

    async def crashed_now() -> bool:
        try:
            services.check()
        except ExceptionGroup:
            return True
        return False

    await wait_for(crashed_now, timeout=10, what="the crash to surface (idle=30: nothing else)")
    with pytest.raises(ExceptionGroup) as caught:
        await services.stop()
    assert caught.value.exceptions == (crashed,)
