"""The capstone shop: services talking through events, read model, versions, dead letters."""

from __future__ import annotations

from edalab import connect
from edalab.course.shop import Shop


async def test_shop_end_to_end(nats_url: str) -> None:
    """Orders get paid, e-mails go out once, a poison order is caught, replayed, and the
    read model rebuilt from the stream equals the live one."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    shop = Shop(js)
    await shop.setup()
    await shop.start()
    try:
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
    finally:
        await shop.stop()
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
    await shop.setup()
    await shop.start()
    try:
        await shop.register_user("u1", "ann@example.com")
        await shop.place_order("o1", "u1", 100, currency="USD")
        await shop.place_order("o2", "u1", 200)
        await shop.settle()
    finally:
        await shop.stop()
    assert shop.paid_orders == {"o2"}
    [letter] = await shop.dead.wait_for(1)
    assert letter.category == "unknown version"
    await nc.close()
