"""Versioned payloads on the live server: a consumer routes unknown versions away."""

from __future__ import annotations

from edalab import EventConsumer, EventFactory, SchemaRegistry, ensure_stream, publish_event
from tests.versions import V1, V2, V3


async def test_consumer_routes_unknown_versions_away(js, stream_name, token) -> None:
    """Mixed versions replay as v3; an unknown version is quarantined, not handed over."""
    reg = SchemaRegistry()
    for v, m in ((1, V1), (2, V2), (3, V3)):
        reg.register(f"{token}.created", v, m)
    reg.upcaster(f"{token}.created", 1)(
        lambda d: {"user_id": d["user_id"], "first_name": d["name"], "last_name": ""}
    )
    reg.upcaster(f"{token}.created", 2)(lambda d: d)
    await ensure_stream(js, stream_name, [f"{token}.>"])
    make = EventFactory()
    await publish_event(js, make(f"{token}.created", {"user_id": "a", "name": "A"}))
    await publish_event(
        js,
        make(f"{token}.created", {"user_id": "b", "first_name": "B", "last_name": "C"}, version=2),
    )
    await publish_event(js, make(f"{token}.created", {"user_id": "c"}, version=4))
    consumer = await EventConsumer.create(js, stream_name, "v", registry=reg)
    got = [(d.event.version, d.event.data["user_id"]) async for d in consumer.events(timeout=0.5)]
    assert got == [(3, "a"), (3, "b")]
    assert consumer.quarantined[0].reason.startswith("UnknownVersionError")
