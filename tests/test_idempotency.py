"""Processed-id store in JetStream key-value."""

from __future__ import annotations

from edalab import ProcessedIds


async def test_once_runs_an_effect_once_per_id(js) -> None:  # type: ignore[no-untyped-def]
    """A second delivery of the same id does not repeat the side effect."""
    processed = await ProcessedIds.open(js, "test-processed")
    effects = []

    async def effect() -> None:
        effects.append(1)

    assert await processed.once("evt-1", effect) is True
    assert await processed.once("evt-1", effect) is False
    assert effects == [1]
    assert await processed.seen("evt-1") and not await processed.seen("evt-2")


async def test_mark_is_atomic_and_ids_need_not_be_valid_keys(js) -> None:  # type: ignore[no-untyped-def]
    """Only the first mark wins; ids with spaces or colons still work."""
    processed = await ProcessedIds.open(js, "test-processed-2")
    again = await ProcessedIds.open(js, "test-processed-2")
    assert await processed.mark("order 7: paid") is True
    assert await again.mark("order 7: paid") is False
    assert await again.seen("order 7: paid")
