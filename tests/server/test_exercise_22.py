"""Exercise 22's checker: a payments service's FastStream middleware stack, run for real.

The checker builds a FastStream broker with the learner's list on the live server and
runs its own payments handler; each wrong answer learners write gets its own "not yet".
"""

from __future__ import annotations

from typing import Any

import pytest
from faststream import BaseMiddleware
from faststream.exceptions import NackMessage, RejectMessage

from edalab import EventError, PermanentError, ProcessedIds, TransientError
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
        except (PermanentError, EventError) as err:  # a handler's refusal, an undecodable body
            raise RejectMessage() from err


async def test_the_solution_passes(js) -> None:
    """The notebook's answer: charged once each, retried, poison dead-lettered."""
    result = await check("22", js, middlewares=solution, report=False)
    assert result.passed, result.message


async def test_an_own_middleware_with_the_guard_passes(js) -> None:
    """A BaseMiddleware of the learner's own (nak transient, reject permanent) passes too."""
    result = await check(
        "22",
        js,
        middlewares=lambda c: (EventPublishing(), OwnFailures, IdempotencyGuard(c)),
        report=False,
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


# -- wrong answers found in review --------------------------------------------------------


async def test_the_guard_outside_failures_is_not_yet(js) -> None:
    """The list reversed: what the guard raises (an undecodable order) escapes Failures."""
    result = await check(
        "22",
        js,
        middlewares=lambda c: [IdempotencyGuard(c), Failures(delay=0.1), EventPublishing()],
        report=False,
    )
    assert not result.passed
    assert "garbled order" in result.message and "after Failures" in result.message


async def test_a_guard_on_another_bucket_is_not_yet(js) -> None:
    """A guard recording in a bucket of the learner's own, not the charges passed in."""
    other = await ProcessedIds.open(js, "check22-elsewhere", fresh=True)
    result = await check(
        "22",
        js,
        middlewares=lambda c: [EventPublishing(), Failures(delay=0.1), IdempotencyGuard(other)],
        report=False,
    )
    await js.delete_key_value("check22-elsewhere")
    assert not result.passed
    assert "no charge recorded in the charges bucket" in result.message


async def test_a_function_that_raises_says_what_it_raised(js) -> None:
    """Failures(max_deliver=1) (no such argument): one line naming the error, no traceback."""
    result = await check(
        "22",
        js,
        middlewares=lambda c: [Failures(max_deliver=1), IdempotencyGuard(c)],  # type: ignore[call-arg]
        report=False,
    )
    assert not result.passed
    assert "middlewares(charges) raised TypeError" in result.message
    assert "max_deliver" in result.message


async def test_a_guard_on_the_key_value_says_use_the_processed_ids(js) -> None:
    """The notebook's `charges` KeyValue handed to the guard: refused, with the fix."""
    kv = await js.create_key_value(bucket="check22-kv")
    try:
        result = await check(
            "22", js, middlewares=lambda c: [Failures(), IdempotencyGuard(kv)], report=False
        )
    finally:
        await js.delete_key_value("check22-kv")
    assert not result.passed and "ProcessedIds(kv)" in result.message


async def test_classes_instead_of_instances_say_call_them(js) -> None:
    """`[EventPublishing, Failures, ...]` without parentheses: the check says to call them."""
    result = await check(
        "22",
        js,
        middlewares=lambda c: [EventPublishing, Failures, IdempotencyGuard(c)],
        report=False,
    )
    assert not result.passed and "Failures()" in result.message


async def test_without_event_publishing_the_resent_payments_are_stored_twice(js) -> None:
    """Guard and Failures but no EventPublishing: the guard's re-sent payments have no id."""
    result = await check(
        "22", js, middlewares=lambda c: [Failures(delay=0.1), IdempotencyGuard(c)], report=False
    )
    assert not result.passed
    assert "4 payment events" in result.message and "EventPublishing()" in result.message
