"""The live view's state model and picture (edalab.course.view), without a server: positions
and figures from nats-py's infos, redeliveries counted from the sequence numbers, deleted
consumers kept and marked, advisories parsed, and an SVG that is well formed and the same
for the same state (so stored outputs stay stable under nbval)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib import resources

from nats.js.api import (
    ConsumerConfig,
    ConsumerInfo,
    SequenceInfo,
    StreamConfig,
    StreamInfo,
    StreamState,
)

from edalab.course import Advisory, ConsumerState, StreamSnapshot

NS = "{http://www.w3.org/2000/svg}"


def _consumer(
    name: str, *, delivered: int, dseq: int, floor: int = 0, ack_pending: int = 0
) -> ConsumerInfo:
    return ConsumerInfo(
        name=name,
        created=None,
        stream_name="ORDERS",
        config=ConsumerConfig(durable_name=name),
        delivered=SequenceInfo(consumer_seq=dseq, stream_seq=delivered),
        ack_floor=SequenceInfo(consumer_seq=0, stream_seq=floor),
        num_ack_pending=ack_pending,
        num_redelivered=0,
        num_waiting=1,
        num_pending=5 - delivered,
    )


def _stream(first: int = 1, last: int = 5) -> StreamInfo:
    state = StreamState(messages=last - first + 1, bytes=0, first_seq=first, last_seq=last,
                        consumer_count=1)  # fmt: skip
    return StreamInfo(config=StreamConfig(name="ORDERS", subjects=["orders.>"]), state=state)


def test_positions_and_figures_come_from_the_infos() -> None:
    """Delivered and ack floor are stream sequences; the four figures are nats-py's."""
    snap = StreamSnapshot.of(_stream(), [_consumer("w", delivered=3, dseq=3, floor=1,
                                                   ack_pending=2)])  # fmt: skip
    (w,) = snap.consumers
    assert (w.delivered, w.ack_floor, w.num_ack_pending, w.num_pending, w.num_waiting) == (
        3, 1, 2, 2, 1,
    )  # fmt: skip
    assert (snap.first_seq, snap.last_seq, snap.messages) == (1, 5, 5)


def test_deliveries_count_every_delivery_and_a_recreated_consumer_starts_again() -> None:
    """Deliveries are delivered.consumer_seq (4 for 3 messages: one went out again)."""
    snap = StreamSnapshot.of(_stream(), [_consumer("w", delivered=3, dseq=4)])
    assert snap.consumers[0].deliveries == 4
    assert "num_waiting 1 · deliveries 4" in snap.svg()
    gone = StreamSnapshot.of(_stream(), [], before=snap)
    again = StreamSnapshot.of(_stream(), [_consumer("w", delivered=1, dseq=1)], before=gone)
    assert again.consumers[0].deliveries == 1 and not again.consumers[0].deleted


def test_a_consumer_that_disappears_stays_marked_deleted_at_its_last_positions() -> None:
    """The next look without it: same positions, deleted=True, drawn and written "deleted"."""
    before = StreamSnapshot.of(_stream(), [_consumer("w", delivered=4, dseq=4, floor=4)])
    after = StreamSnapshot.of(_stream(), [], before=before)
    (w,) = after.consumers
    assert w.deleted and (w.delivered, w.ack_floor) == (4, 4)
    assert 'data-key="w:deleted"' in after.svg()
    assert "w (deleted)" in after.text()


def test_gone_messages_are_those_before_first_seq_and_those_deleted_inside() -> None:
    """Removed from the front (limits, work-queue acks) or deleted from inside: grey cells."""
    snap = StreamSnapshot("ORDERS", first_seq=3, last_seq=6, messages=3, deleted=(5,))
    assert [n for n in range(1, 7) if snap.gone(n)] == [1, 2, 5]
    cells = {
        r.get("data-key"): r.get("data-value")
        for r in ET.fromstring(snap.svg()).iter(f"{NS}rect")
        if (r.get("data-key") or "").startswith("seq:")
    }
    assert cells == {"seq:1": "gone", "seq:2": "gone", "seq:3": "msg", "seq:4": "msg",
                     "seq:5": "gone", "seq:6": "msg"}  # fmt: skip


def test_a_long_stream_shows_its_last_forty_messages_and_a_consumer_far_behind() -> None:
    """1000 messages: cells 961..1000; a consumer at 10 is named, not drawn off the strip."""
    snap = StreamSnapshot("BIG", first_seq=1, last_seq=1000, messages=1000,
                          consumers=(ConsumerState("slow", delivered=10),))  # fmt: skip
    assert snap.window() == (961, 1000)
    svg = snap.svg()
    assert 'data-key="seq:961"' in svg and 'data-key="seq:960"' not in svg
    assert "◂ delivered 10" in svg


def test_the_picture_is_well_formed_and_the_same_for_the_same_state() -> None:
    """Parses as SVG; drawn twice, identical; a change of one figure changes the drawing."""
    c = ConsumerState("w", delivered=3, ack_floor=1, num_ack_pending=2)
    bad = Advisory("terminated", "w", 2, 1, "bad <input>")
    snap = StreamSnapshot("ORDERS", first_seq=1, last_seq=5, messages=5, consumers=(c,),
                          advisories=(bad,))  # fmt: skip
    root = ET.fromstring(snap.svg())
    assert root.tag == f"{NS}svg"
    assert snap.svg() == StreamSnapshot(**{f: getattr(snap, f) for f in snap.__slots__}).svg()
    flight = [r for r in root.iter(f"{NS}rect") if r.get("data-key") == "w:in_flight"]
    assert [f.get("data-value") for f in flight] == ["1-3"]
    assert "bad &lt;input&gt;" in snap.svg()  # text is escaped
    moved = StreamSnapshot("ORDERS", first_seq=1, last_seq=5, messages=5,
                           consumers=(ConsumerState("w", delivered=4, ack_floor=1),))  # fmt: skip
    assert moved.svg() != snap.svg()


def test_advisories_are_parsed_from_the_three_subjects_and_others_ignored() -> None:
    """MAX_DELIVERIES, MSG_TERMINATED, DELETED (nats-server's subjects); not MSG_NAKED."""
    body = json.dumps({"stream_seq": 7, "deliveries": 3, "reason": "bad"}).encode()
    pre = "$JS.EVENT.ADVISORY.CONSUMER"
    assert str(Advisory.parse(f"{pre}.MAX_DELIVERIES.ORDERS.w", body)) == (
        "max deliveries w seq 7 after 3 deliveries reason 'bad'"
    )
    assert Advisory.parse(f"{pre}.MSG_TERMINATED.ORDERS.w", body).kind == "terminated"  # type: ignore[union-attr]
    assert str(Advisory.parse(f"{pre}.DELETED.ORDERS.w", b"{}")) == "consumer deleted w"
    assert Advisory.parse(f"{pre}.MSG_NAKED.ORDERS.w", body) is None
    assert str(Advisory.parse(f"{pre}.DELETED.ORDERS.w", b"not json")) == "consumer deleted w"


def test_the_widget_script_ships_in_the_package_and_asks_no_network() -> None:
    """view.js and view.css are package data; the script imports nothing (no CDN)."""
    files = resources.files("edalab.course")
    script = (files / "view.js").read_text()
    assert "export default" in script and "render" in script
    assert "import " not in script and "http" not in script
    assert "http" not in (files / "view.css").read_text()


def test_a_stream_created_again_starts_a_new_picture() -> None:
    """fresh_stream ran again: the old stream's consumers and advisories do not carry over."""
    from datetime import UTC, datetime

    old, new = _stream(), _stream()
    old.created = datetime(2026, 1, 1, tzinfo=UTC)
    new.created = datetime(2026, 1, 2, tzinfo=UTC)
    before = StreamSnapshot.of(old, [_consumer("w", delivered=4, dseq=4)])
    stale = Advisory.parse(
        "$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS.w",
        b'{"timestamp": "2026-01-01T12:00:00.123456789Z"}',
    )
    fresh = Advisory.parse(
        "$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS.v",
        b'{"timestamp": "2026-01-02T00:00:01.5Z"}',
    )
    assert stale is not None and fresh is not None
    after = StreamSnapshot.of(new, [], before=before, advisories=[stale, fresh])
    assert after.consumers == () and after.advisories == (fresh,)


def test_the_widget_toolkit_brings_its_jupyterlab_extension_prebuilt() -> None:
    """anywidget's wheel installs its JupyterLab extension: nothing to build, no network."""
    import sys
    from pathlib import Path

    import anywidget

    assert anywidget.__version__ == "0.11.0"
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "anywidget"
    assert (extension / "package.json").is_file(), extension
    widgets = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter-widgets"
    assert (widgets / "jupyterlab-manager" / "package.json").is_file(), widgets


async def test_a_plain_nats_py_context_is_told_to_pass_the_server() -> None:
    """view() needs the server's address; a plain nats-py context gets a one-line way out."""
    import nats.aio.client
    import pytest

    from edalab import NotAnEdalabJetStream
    from edalab.course import view

    with pytest.raises(NotAnEdalabJetStream, match="server='nats://host:port'"):
        await view(nats.aio.client.Client().jetstream(), "ORDERS")


def test_the_pictures_style_cannot_restyle_the_page_it_is_inlined_in() -> None:
    """Inlined by the live widget, the SVG's classes are ev-* and its rules scoped to it."""
    import re

    svg = StreamSnapshot("ORDERS", first_seq=1, last_seq=2, messages=2,
                         consumers=(ConsumerState("w", delivered=2),)).svg()  # fmt: skip
    classes = re.findall(r'class="([^"]+)"', svg)
    assert classes[0] == "edalab-view-picture"
    assert all(c.startswith("ev-") for c in classes[1:]), classes
    style = re.search(r"<style>(.*)</style>", svg).group(1)  # type: ignore[union-attr]
    rules = [r for r in re.split(r"(?<=\})\s*", style) if r]
    assert all(r.startswith(".edalab-view-picture .ev-") for r in rules), rules
