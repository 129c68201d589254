"""kill -9 of a FastStream service mid-stream: the payments app of notebook 22.

The app runs as ``faststream run edalab.course.services_faststream.payments:app`` on a
server of the test's own; orders stream in, the process is killed with SIGKILL while
it holds unacknowledged orders, a new process takes over. Figures printed
(``pytest tests/faults/test_faults_faststream.py -s``): events in, effects applied
(charges recorded), applied twice and lost (both must be 0).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from edalab import Event, NatsServer, connect, publish_events, wait_for
from edalab.course.services_faststream import settled, start_service
from edalab.course.shop import OrderPlacedV1, OrderPlacedV2, Shop

pytestmark = pytest.mark.slow

ORDERS = 400
ENV = {"SHOP_ACK_WAIT": "1", "SHOP_PAYMENTS_FIXED": "1"}  # redelivery after 1 s


def _orders() -> list[Event]:
    out = []
    for i in range(ORDERS):
        if i % 2:
            data: OrderPlacedV1 | OrderPlacedV2 = OrderPlacedV1(
                order_id=f"o{i}", user_id="u1", total_cents=100 + i
            )
        else:
            data = OrderPlacedV2(
                order_id=f"o{i}", user_id="u1", total_cents=100 + i, currency="USD"
            )
        out.append(Event.create("shop.order.placed", data, id=f"order-{i}", version=2 - i % 2))
    return out


async def test_payments_app_killed_mid_stream_charges_each_order_once(tmp_path: Path) -> None:
    """SIGKILL while orders are in flight; a new process: every order charged, none twice."""
    with NatsServer(store_dir=tmp_path / "store", name="faststream-fault") as server:
        nc = await connect(server.url)
        js = nc.jetstream()
        shop = Shop(js)
        await shop.setup()
        charges_kv = None
        first = await start_service("payments", server.url, js, env=ENV)
        try:
            await publish_events(js, _orders())

            async def a_third_charged() -> bool:
                nonlocal charges_kv
                try:
                    charges_kv = charges_kv or await js.key_value("shop-charges")
                    status = await js.stream_info("KV_shop-charges")
                except Exception:
                    return False
                return status.state.messages >= ORDERS // 3

            await wait_for(a_third_charged, timeout=20, what="a third of the orders charged")
            first.kill()  # kill -9, mid-stream
            at_kill = (await js.stream_info("KV_shop-charges")).state.messages
            second = await start_service("payments", server.url, js, env=ENV)
            await settled(js, "payments", timeout=30)
            second.stop()
        finally:
            first.kill()
        kv = await js.key_value("shop-charges")
        charged = set(await kv.keys())
        writes = (await js.stream_info("KV_shop-charges")).state.last_seq
        payments = Counter(e.data["order_id"] for e in await shop.stored("shop.payment.captured"))
        deliveries = (await js.consumer_info("SHOP", "shop-payments")).delivered.consumer_seq
        await nc.close()
    lost = ORDERS - len(charged)
    twice = writes - len(charged)  # a key written twice would be a second write
    paid_twice = sum(n > 1 for n in payments.values())
    print(
        f"\nevents in {ORDERS}, charged before the kill {at_kill}, deliveries {deliveries} "
        f"(redelivered {deliveries - ORDERS}), effects applied {len(charged)}, "
        f"applied twice {twice}, payments published twice {paid_twice}, lost {lost}"
    )
    assert 0 < at_kill < ORDERS, "the kill came before or after the stream, not in it"
    assert (twice, paid_twice, lost) == (0, 0, 0)
    assert len(payments) == ORDERS
