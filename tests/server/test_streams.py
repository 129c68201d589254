"""Idempotent stream setup: create, unchanged, update, conflict."""

from __future__ import annotations

import pytest
from nats.js.api import RetentionPolicy, StorageType

from edalab import StreamConfigConflict, ensure_stream
from edalab.course import Table, fresh_stream, stream_table


async def test_create_then_unchanged(js, stream_name, token) -> None:
    """Running the same setup twice creates once and then reports no change."""
    first = await ensure_stream(js, stream_name, [f"{token}.>"])
    again = await ensure_stream(js, stream_name, [f"{token}.>"])
    assert (first.action, again.action) == ("created", "unchanged")


async def test_changed_config_is_updated_and_reported(js, stream_name, token) -> None:
    """A field the server can change is updated, and the change is listed."""
    await ensure_stream(js, stream_name, [f"{token}.>"], max_msgs=10)
    setup = await ensure_stream(js, stream_name, [f"{token}.>"], max_msgs=20)
    assert setup.action == "updated"
    assert setup.changes == {"max_msgs": (10, 20)}
    assert (await js.stream_info(stream_name)).config.max_msgs == 20


async def test_unchangeable_field_raises_naming_it(js, stream_name, token) -> None:
    """Storage cannot change in place: the conflict names the field, old and new."""
    await ensure_stream(js, stream_name, [f"{token}.>"], storage=StorageType.FILE)
    with pytest.raises(StreamConfigConflict) as info:
        await ensure_stream(js, stream_name, [f"{token}.>"], storage=StorageType.MEMORY)
    assert "storage" in info.value.changes
    assert stream_name in str(info.value)


async def test_update_false_refuses_to_change(js, stream_name, token) -> None:
    """With update=False a difference is an error, and the stream stays as it was."""
    await ensure_stream(js, stream_name, [f"{token}.a"])
    with pytest.raises(StreamConfigConflict, match="subjects"):
        await ensure_stream(js, stream_name, [f"{token}.b"], update=False)
    assert (await js.stream_info(stream_name)).config.subjects == [f"{token}.a"]


async def test_unspecified_fields_keep_their_values(js, stream_name, token) -> None:
    """Only fields passed are compared; others are not reset to defaults."""
    await ensure_stream(
        js, stream_name, [f"{token}.>"], retention=RetentionPolicy.LIMITS, max_msgs=5
    )
    setup = await ensure_stream(js, stream_name, [f"{token}.>"])
    assert setup.action == "unchanged"


async def test_fresh_stream_empties_it(js, stream_name, token) -> None:
    """fresh_stream gives a stream with no messages whose sequences restart at 1."""
    await ensure_stream(js, stream_name, [f"{token}.>"])
    await js.publish(f"{token}.x", b"1")
    setup = await fresh_stream(js, stream_name, [f"{token}.>"])
    assert setup.action == "created"
    ack = await js.publish(f"{token}.x", b"2")
    assert ack.seq == 1
    table = await stream_table(js, stream_name)
    assert table.rows == [[stream_name, f"{token}.>", 1, 1, 1]]


def test_table_renders_aligned_text() -> None:
    """Columns are padded to the widest cell; trailing spaces are trimmed."""
    assert repr(Table(["a", "bb"], [["xyz", 1]])) == "a    bb\n---  --\nxyz  1"


async def test_fresh_stream_is_empty_even_right_after_a_delete(js, stream_name, token) -> None:
    """A recreated stream never holds the deleted one's messages (a server race it works around)."""
    for _ in range(50):
        await fresh_stream(js, stream_name, [f"{token}.>"])
        for _ in range(3):
            await js.publish(f"{token}.x", b"old")
        await fresh_stream(js, stream_name, [f"{token}.>"])
        state = (await js.stream_info(stream_name)).state
        assert (state.messages, state.last_seq) == (0, 0)


def test_state_change_shows_before_and_after() -> None:
    """state_change lays out one stream's state before and after as a two-row table."""
    from nats.js.api import StreamInfo

    from edalab.course import state_change

    def info(messages: int, last: int) -> StreamInfo:
        return StreamInfo.from_response(
            {
                "config": {"name": "S"},
                "state": {
                    "messages": messages,
                    "bytes": 43 * messages,
                    "first_seq": 1,
                    "last_seq": last,
                    "consumer_count": 0,
                },
            }
        )

    table = state_change(info(0, 0), info(3, 3))
    assert [r[0] for r in table.rows] == ["before", "after"]
    assert table.rows[1][1:] == [3, 129, 1, 3]


async def test_fresh_stream_starts_at_sequence_one_after_many_recreations(js, stream_name) -> None:
    """Recreated at once, many times over, the stream starts empty at sequence 1."""
    for _ in range(100):  # nats-server 2.15.1 recovered the old store in about 1 of 30
        await fresh_stream(js, stream_name, [f"{stream_name.lower()}.>"], duplicate_window=300)
        for _ in range(4):
            await js.publish(f"{stream_name.lower()}.x", b"old")
        await fresh_stream(js, stream_name, [f"{stream_name.lower()}.>"])
        ack = await js.publish(f"{stream_name.lower()}.x", b"new")
        assert ack.seq == 1
