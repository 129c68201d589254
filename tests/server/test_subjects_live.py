"""Subject matching checked against the server: matches() and overlaps() agree with it."""

from __future__ import annotations

import asyncio

import pytest

from edalab import StreamConfigConflict, ensure_stream, matches, overlaps

PATTERNS = ["user.*", "user.>", "*.created", "user.*.updated", ">", "user.created", "*.*.*"]
SUBJECTS = ["user", "user.created", "user.profile.updated", "order.created", "user.a.b.c"]


async def test_matches_agrees_with_the_server(nc) -> None:
    """For every pattern, matches() selects exactly the subjects the server delivers."""
    for i, pattern in enumerate(PATTERNS):
        prefix = f"m{i}"
        got: asyncio.Queue[str] = asyncio.Queue()

        async def cb(msg, prefix=prefix, got=got):
            await got.put(msg.subject[len(prefix) + 1 :])

        sub = await nc.subscribe(f"{prefix}.{pattern}", cb=cb)
        for s in SUBJECTS:
            await nc.publish(f"{prefix}.{s}", b"")
        await nc.publish(f"{prefix}.user.created", b"", reply="end")  # marker, also a match
        await nc.flush()
        seen = []
        marker_expected = matches(pattern, "user.created")
        want = [s for s in SUBJECTS if matches(pattern, s)]
        expected = len(want) + (1 if marker_expected else 0)
        for _ in range(expected):
            seen.append(await asyncio.wait_for(got.get(), 2))
        await nc.flush()
        assert got.empty(), f"{pattern}: the server delivered more than matches() predicts"
        await sub.unsubscribe()
        assert sorted(set(seen)) == sorted(set(want)), pattern


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("user.*", "user.created", True),
        ("user.>", "*.created", True),
        ("user.created.>", "user.created", False),
        ("user.*", "order.*", False),
        ("a.*.c", "a.b.*", True),
        ("a.*", "a.*.c", False),
    ],
)
async def test_overlaps_agrees_with_the_server(js, token, a, b, expected) -> None:
    """Two streams can coexist exactly when overlaps() says their subjects are disjoint."""
    assert overlaps(a, b) is expected
    first = f"{token}_a"
    await ensure_stream(js, first, [f"{token}.{a}"])
    try:
        if expected:
            with pytest.raises(StreamConfigConflict, match="overlap") as info:
                await ensure_stream(js, f"{token}_b", [f"{token}.{b}"])
            assert first in str(info.value)
        else:
            await ensure_stream(js, f"{token}_b", [f"{token}.{b}"])
            await js.delete_stream(f"{token}_b")
    finally:
        await js.delete_stream(first)
