"""Hints: three tiers per exercise, recorded like checks; the solution after a real attempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from edalab.course import check, hint
from edalab.course.exercises import EXERCISES
from edalab.course.hints import HINTS, hints_taken, solution_code


@pytest.fixture(autouse=True)
def own_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with no hint and no pass recorded, outside class mode."""
    monkeypatch.setenv("EDALAB_STATE_DIR", str(tmp_path))
    for key in ("NATS_USER", "EDALAB_CLASS"):
        monkeypatch.delenv(key, raising=False)


def test_every_exercise_has_three_distinct_tiers() -> None:
    """A nudge, the API, the shape: three different, non-empty texts for each exercise."""
    for key in EXERCISES:
        tiers = HINTS[key]
        assert len(tiers) == 3 and all(t.strip() for t in tiers), key
        assert len(set(tiers)) == 3, key


def test_each_call_reveals_the_next_tier_up_to_three() -> None:
    """hint() shows tier 1, then 1-2, then 1-3 (pointing at the solution), then stays at 3."""
    one, two, three, again = (hint("10") for _ in range(4))
    nudge, api, shape = (_flat(t) for t in HINTS["10"])
    assert one.tier == 1 and nudge in _flat(one) and api not in _flat(one)
    assert "hint('10') again" in _flat(one)
    assert two.tier == 2 and api in _flat(two) and shape not in _flat(two)
    assert three.tier == 3 and shape in _flat(three)
    assert "solution=True" in repr(three)
    assert again.tier == 3
    assert hints_taken()["10"]["tier"] == 3


def _flat(shown: object) -> str:
    """The text with its line breaks and indentation folded (hints wrap prose)."""
    return " ".join(str(shown if isinstance(shown, str) else repr(shown)).split())


def test_hints_are_recorded_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like passes, hints are recorded per NATS_USER on a shared machine."""
    monkeypatch.setenv("NATS_USER", "s01")
    hint("05")
    hint("05")
    assert hints_taken()["05"]["tier"] == 2
    monkeypatch.setenv("NATS_USER", "s02")
    assert "05" not in hints_taken()


def test_an_unknown_exercise_names_the_known_ones() -> None:
    """hint('99') is a ValueError listing the exercises."""
    with pytest.raises(ValueError, match="known: 00, 01, 02"):
        hint("99")


async def test_the_solution_opens_only_after_a_real_attempt(js) -> None:
    """Refused before any attempt and after a Run All (a check before any hint);
    given after a hint and a check that said not yet."""
    code = solution_code("04")
    assert "max_msgs_per_subject=1" in code  # the notebook's solution cell, read from it
    refused = hint("04", solution=True)
    assert "after a real attempt" in repr(refused) and code not in repr(refused)
    assert "hint('04')" in repr(refused)  # the way forward
    await _no_prices(js)
    assert not (await check("04", js)).passed  # Run All with an empty answer cell
    assert code not in repr(hint("04", solution=True))
    hint("04")
    assert not (await check("04", js)).passed  # tried after the hint, still not yet
    given = hint("04", solution=True)
    assert code in repr(given) and "solution" in hints_taken()["04"]


async def test_a_re_check_by_progress_is_not_an_attempt(js) -> None:
    """`edalab progress` re-checks with report=False: that opens no solution."""
    await _no_prices(js)
    hint("04")
    assert not (await check("04", js, report=False)).passed
    assert "after a real attempt" in repr(hint("04", solution=True))


async def test_hint_can_be_awaited_like_check() -> None:
    """`await hint('03')` works too (learners write `await` before check)."""
    shown = await hint("03")
    assert shown.tier == 1


async def _no_prices(js) -> None:
    import contextlib

    import nats.js.errors

    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("PRICES")
