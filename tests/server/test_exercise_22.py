"""Exercise 22's checker: a payments service's FastStream middleware stack, run for real.

The checker builds a FastStream broker with the learner's list on the live server and
runs its own payments handler; each wrong answer learners write gets its own "not yet".
"""

from __future__ import annotations

from typing import Any

import pytest
from faststream import BaseMiddleware
from faststream.exceptions import NackMessage, RejectMessage

from edalab import PermanentError, ProcessedIds, TransientError
from edalab.course._checkers import _core as exercises
from edalab.course.exercises import check
from edalab.faststream import EventPublishing, Failures, IdempotencyGuard


@pytest.fixture(autouse=True)
def _unforeseen_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checker tripping on an error it did not foresee fails the test, not "not yet"."""

    def reraise(exercise: str, err: Exception) -> None:
        raise err

    monkeypatch.setattr(exercises, "_unexpected", reraise)


def solution(charges: ProcessedIds) -> list[Any]:
    return [EventPublishing(), Failures(delay=0.1), IdempotencyGuard(charges)]


class CatchAll(BaseMiddleware):
    """A learner's "robust" middleware: log and carry on (the message is acknowledged)."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            return await call_next(msg)
        except Exception:
            return None


class RejectAll(BaseMiddleware):
    """Every error is "bad data": terminated (FastStream's default, made explicit)."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            return await call_next(msg)
        except Exception as err:
            raise RejectMessage() from err


class OwnFailures(BaseMiddleware):
    """A right answer written differently: the learner's own mapping to FastStream's exceptions."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            return await call_next(msg)
        except TransientError as err:
            raise NackMessage(delay=err.delay or 0.1) from err
        except PermanentError as err:
            raise RejectMessage() from err


async def test_the_solution_passes(js) -> None:
    """The notebook's answer: charged once each, retried, poison dead-lettered."""
    result = await check("22", js, middlewares=solution, report=False)
    assert result.passed, result.message


async def test_an_own_middleware_with_the_guard_passes(js) -> None:
    """A BaseMiddleware of the learner's own (nak transient, reject permanent) passes too."""
    result = await check(
        "22", js, middlewares=lambda c: (OwnFailures, IdempotencyGuard(c)), report=False
    )
    assert result.passed, result.message


async def test_none_says_write_your_answer(js) -> None:
    """The placeholder answer: still None, with where to write it."""
    result = await check("22", js, middlewares=None, report=False)
    assert not result.passed and "still None" in result.message


async def test_no_guard_is_charged_twice(js) -> None:
    """Without IdempotencyGuard the reset consumer charges each order again."""
    result = await check(
        "22", js, middlewares=lambda c: [EventPublishing(), Failures(delay=0.1)], report=False
    )
    assert not result.passed
    assert "charged 2 times" in result.message and "IdempotencyGuard(charges)" in result.message


async def test_catching_every_exception_loses_the_poison(js) -> None:
    """A catch-all middleware acknowledges the poison order: no dead letter, it is lost."""
    result = await check(
        "22", js, middlewares=lambda c: [CatchAll, IdempotencyGuard(c)], report=False
    )
    assert not result.passed and "left no dead letter" in result.message


async def test_rejecting_a_transient_failure_terminates_it(js) -> None:
    """Raising RejectMessage for every error terminates the busy order instead of a nak."""
    result = await check(
        "22", js, middlewares=lambda c: [RejectAll, IdempotencyGuard(c)], report=False
    )
    assert not result.passed
    assert "busy order (TransientError) was terminated" in result.message
    assert "NackMessage(delay=...)" in result.message


async def test_a_stack_without_failures_retries_the_poison_to_max_deliver(js) -> None:
    """With only the guard, FastStream's nak retries PermanentError until max_deliver."""
    result = await check("22", js, middlewares=lambda c: [IdempotencyGuard(c)], report=False)
    assert not result.passed and "terminated at the first delivery" in result.message


async def test_not_a_list_says_what_to_return(js) -> None:
    """A function returning one middleware, not a list: the message shows the expected list."""
    result = await check("22", js, middlewares=lambda c: IdempotencyGuard(c), report=False)
    assert not result.passed and "expected a list" in result.message
