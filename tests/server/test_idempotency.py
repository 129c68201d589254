"""Processed-id store in JetStream key-value: what it guarantees and what it does not."""

from __future__ import annotations

import asyncio

import pytest

from edalab import ProcessedIds


async def test_once_skips_an_id_marked_before(js) -> None:
    """A second delivery after the mark does not repeat the side effect."""
    processed = await ProcessedIds.open(js, "test-processed")
    effects = []

    async def effect() -> None:
        effects.append(1)

    assert await processed.once("evt-1", effect) is True
    assert await processed.once("evt-1", effect) is False
    assert effects == [1]
    assert await processed.seen("evt-1") and not await processed.seen("evt-2")


async def test_once_repeats_the_effect_when_the_process_dies_before_the_mark(js) -> None:
    """The crash window: effect done, mark never written, the redelivery does it again."""
    processed = await ProcessedIds.open(js, "test-processed-crash")
    effects = []

    async def effect_then_die() -> None:
        effects.append(1)
        raise SystemExit("the process dies here")

    with pytest.raises(SystemExit):
        await processed.once("evt-1", effect_then_die)

    async def effect() -> None:
        effects.append(1)

    assert await processed.once("evt-1", effect) is True
    assert effects == [1, 1]


async def test_once_lets_two_racing_workers_both_pass_the_check(js) -> None:
    """Two workers holding the same message both see 'not processed' and both run the effect."""
    processed = await ProcessedIds.open(js, "test-processed-race")
    both_checked = asyncio.Barrier(2)
    effects = []

    async def effect() -> None:
        await both_checked.wait()  # each worker is past its check before either marks
        effects.append(1)

    ran = await asyncio.gather(processed.once("evt-1", effect), processed.once("evt-1", effect))
    assert ran == [True, True] and effects == [1, 1]


async def test_record_lets_exactly_one_racing_worker_write(js) -> None:
    """Racing records of one id: one True, the rest False, one revision stored."""
    charges = await ProcessedIds.open(js, "test-charges", history=5)
    results = await asyncio.gather(*(charges.record("evt-9", b"500") for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await charges.value("evt-9") == b"500" and await charges.value("evt-0") is None
    # Revisions stored for the key, counted by the bucket's stream (kv.history's watcher can
    # miss a just-written key on the oldest server the floors test, 2.10.25).
    info = await js.stream_info("KV_test-charges", subjects_filter="$KV.test-charges.evt-9")
    assert info.state.subjects == {"$KV.test-charges.evt-9": 1}


async def test_mark_is_atomic_and_ids_need_not_be_valid_keys(js) -> None:
    """Only the first mark wins; ids with spaces or colons still work."""
    processed = await ProcessedIds.open(js, "test-processed-2")
    again = await ProcessedIds.open(js, "test-processed-2")
    assert await processed.mark("order 7: paid") is True
    assert await again.mark("order 7: paid") is False
    assert await again.seen("order 7: paid")
