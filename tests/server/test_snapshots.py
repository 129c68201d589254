"""Stream snapshots: taken from one server, restored into a fresh one, every message and
consumer position intact; a damaged file is refused with the stream and file named."""

from __future__ import annotations

import json

import pytest

from edalab import (
    NatsServer,
    SnapshotError,
    connect,
    restore_stream,
    snapshot_stream,
    stream_messages,
)

STREAM = "SNAPTEST"


@pytest.fixture(scope="module")
def fresh_server():
    """A second server with nothing on it: where snapshots are restored."""
    with NatsServer(name="edalab-restore-test") as srv:
        yield srv


async def _messages(js, stream):
    return [
        (seq, m.subject, m.data, dict(m.headers or {}))
        async for seq, m in stream_messages(js, stream)
    ]


async def _positions(js, stream, *names):
    out = {}
    for name in names:
        info = await js.consumer_info(stream, name)
        out[name] = (
            info.delivered.stream_seq,
            info.ack_floor.stream_seq,
            info.num_ack_pending,
            info.num_pending,
        )
    return out


@pytest.fixture
async def source(js):
    """SNAPTEST: 200 messages (one deleted), a consumer part way through with 3 unacked,
    and one that has read nothing."""
    await js.add_stream(name=STREAM, subjects=["snaptest.>"])
    try:
        for i in range(200):
            kind = "placed" if i % 3 else "paid"
            body = json.dumps({"n": i}).encode()
            await js.publish(f"snaptest.{kind}", body, headers={"Nats-Msg-Id": f"m-{i}"})
        await js.delete_msg(STREAM, 50)
        await js.add_consumer(STREAM, durable_name="billing", ack_policy="explicit")
        await js.add_consumer(STREAM, durable_name="audit", ack_policy="explicit")
        sub = await js.pull_subscribe_bind("billing", STREAM)
        fetched = await sub.fetch(80, timeout=5)
        for msg in fetched[:77]:
            await msg.ack_sync()
        yield js
    finally:
        await js.delete_stream(STREAM)


async def test_restore_holds_every_message_and_consumer_position(source, fresh_server, tmp_path):
    """The restored stream has the same messages (subjects, data, headers, sequences, the
    deleted one still missing) and each consumer at its delivered and ack floor position."""
    js = source
    before = await _messages(js, STREAM)
    positions = await _positions(js, STREAM, "billing", "audit")
    taken = await snapshot_stream(js, STREAM, tmp_path / "snap")
    assert (taken.stream, taken.messages, taken.consumers) == (STREAM, 199, 2)
    assert (taken.first_seq, taken.last_seq) == (1, 200)
    nc = await connect(fresh_server.url)
    try:
        other = nc.jetstream()
        info = await restore_stream(other, tmp_path / "snap")
        assert (info.config.name, info.state.messages, info.state.last_seq) == (STREAM, 199, 200)
        assert await _messages(other, STREAM) == before
        restored = await _positions(other, STREAM, "billing", "audit")
        assert restored == positions
        # 80 delivered (sequence 50 was deleted), the first 77 acked: up to sequence 78
        assert positions["billing"] == (81, 78, 3, 119)
        # and the consumer carries on where it was: the next new message is the 81st it delivers
        sub = await other.pull_subscribe_bind("billing", STREAM)
        await other.publish("snaptest.placed", b'{"n": 200}')
        [msg] = await sub.fetch(1, timeout=5)
        assert msg.metadata.sequence.stream == 82
    finally:
        await other.delete_stream(STREAM)
        await nc.close()


async def test_restore_refuses_a_stream_name_in_use(source, tmp_path):
    """Restoring over an existing stream is refused by the server, named in the error."""
    await snapshot_stream(source, STREAM, tmp_path / "snap")
    with pytest.raises(SnapshotError, match="a stream of that name exists") as caught:
        await restore_stream(source, tmp_path / "snap")
    assert caught.value.stream == STREAM and caught.value.path == tmp_path / "snap"


async def test_a_truncated_file_is_refused_naming_stream_and_file(source, fresh_server, tmp_path):
    """A file cut short is refused before anything reaches the server."""
    path = tmp_path / "snap"
    await snapshot_stream(source, STREAM, path)
    path.write_bytes(path.read_bytes()[:-200])
    nc = await connect(fresh_server.url)
    try:
        with pytest.raises(SnapshotError, match="cut short") as caught:
            await restore_stream(nc.jetstream(), path)
        assert caught.value.stream == STREAM and caught.value.path == path
        assert STREAM in str(caught.value) and str(path) in str(caught.value)
        with pytest.raises(Exception, match="stream not found"):
            await nc.jetstream().stream_info(STREAM)  # nothing half-restored
    finally:
        await nc.close()


async def test_a_damaged_file_is_refused(source, fresh_server, tmp_path):
    """One changed byte in the archive: refused, the file named."""
    path = tmp_path / "snap"
    await snapshot_stream(source, STREAM, path)
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    nc = await connect(fresh_server.url)
    try:
        with pytest.raises(SnapshotError, match="damaged") as caught:
            await restore_stream(nc.jetstream(), path)
        assert caught.value.stream == STREAM
    finally:
        await nc.close()


async def test_not_a_snapshot_and_no_stream(js, tmp_path):
    """A file that is no snapshot, and a snapshot of a stream that does not exist."""
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(SnapshotError, match="not a stream snapshot"):
        await restore_stream(js, path)
    with pytest.raises(SnapshotError, match="no such stream") as caught:
        await snapshot_stream(js, "SNAPTEST_NONE", tmp_path / "none")
    assert caught.value.stream == "SNAPTEST_NONE"
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.part").exists()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda head: head.pop("config"), STREAM),
        (lambda head: head.update(bytes="many"), STREAM),
        (lambda head: head.pop("stream"), "?"),
    ],
)
async def test_a_damaged_header_is_refused_with_a_typed_error(
    source, fresh_server, tmp_path, edit, named
):
    """A header line edited by hand (a field gone, a size that is not a number) gives
    SnapshotError naming the file, never a KeyError or ValueError."""
    path = tmp_path / "snap"
    await snapshot_stream(source, STREAM, path)
    line, _, archive = path.read_bytes().partition(b"\n")
    head = json.loads(line)
    edit(head)
    path.write_bytes(json.dumps(head).encode() + b"\n" + archive)
    nc = await connect(fresh_server.url)
    try:
        with pytest.raises(SnapshotError, match="header line is damaged") as caught:
            await restore_stream(nc.jetstream(), path)
        assert caught.value.stream == named and caught.value.path == path
    finally:
        await nc.close()
