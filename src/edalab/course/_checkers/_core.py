"""What every checker shares: the verdict, "not yet", the server look-ups, ``check()``.

A checker (one module per lesson, ``ex00`` ... ``ex18``) is a coroutine that raises
:class:`_NotYet` with a hint, or returns what it saw pass. ``check`` runs one and turns
the outcome into a :class:`CheckResult`. :data:`EXERCISES` is filled by this package's
``__init__`` once every checker module is imported.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo, StreamInfo
from nats.js.client import JetStreamContext

from edalab import EdalabError, Event, stream_messages, wait_for

from ._common import state_dir


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one exercise check."""

    exercise: str
    passed: bool
    message: str

    def __repr__(self) -> str:
        mark = "✔" if self.passed else "✘"
        state = "passed" if self.passed else "not yet"
        return f"{mark} exercise {self.exercise} {state}: {self.message}"

    def __bool__(self) -> bool:
        return self.passed


class _NotYet(Exception):
    """Raised inside a checker with the hint to show."""


Checker = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Exercise:
    """One exercise: its notebook, a one-line task, and its checker."""

    key: str
    notebook: str
    task: str
    checker: Checker

    @property
    def needs(self) -> list[str]:
        """What the checker needs from the notebook besides ``js`` (e.g. ``['registry']``).

        Such an exercise is checked by the last cell of its notebook; ``edalab progress``
        says so instead of running it.
        """
        params = list(inspect.signature(self.checker).parameters.values())
        first = [] if params and params[0].name == "js" else [params[0].name] if params else []
        return first + [p.name for p in params[1:]]


#: The exercises, keyed by their lesson's number, in course order (the manifest says which
#: lessons have one). Filled by ``edalab.course._checkers`` from its checker modules.
EXERCISES: dict[str, Exercise] = {}


async def _stream(js: JetStreamContext, name: str) -> StreamInfo:
    try:
        info: StreamInfo = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        raise _NotYet(f"there is no stream {name!r} yet") from None
    return info


async def _consumer(js: JetStreamContext, stream: str, name: str) -> ConsumerInfo:
    await _stream(js, stream)
    try:
        info: ConsumerInfo = await js.consumer_info(stream, name)
    except nats.js.errors.NotFoundError:
        raise _NotYet(f"stream {stream!r} has no consumer {name!r} yet") from None
    return info


async def _events(js: JetStreamContext, info: StreamInfo) -> list[Event]:
    out = []
    async for seq, raw in stream_messages(js, info.config.name or ""):
        try:
            out.append(Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq))
        except EdalabError as err:
            raise _NotYet(str(err)) from None
    return out


def _floor(info: ConsumerInfo) -> int:
    return info.ack_floor.stream_seq if info.ack_floor else 0


def _require(condition: bool, hint: str) -> None:
    if not condition:
        raise _NotYet(hint)


class _Wants:
    """Conditions checked together; each failing one's hint is kept (see :func:`_all_of`)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, condition: bool, hint: str) -> bool:
        if not condition:
            self.failed.append(hint)
        return condition


@contextlib.contextmanager
def _all_of() -> Iterator[_Wants]:
    """Check independent conditions and report every one that fails, not only the first::

        with _all_of() as want:
            want(cfg.max_deliver == 4, f"max_deliver is {cfg.max_deliver}; set 4")
            want(len(backoff) == 3, f"backoff is {backoff}; give three delays")

    When the block ends, one :class:`_NotYet` names all the failing conditions, numbered.
    A ``_NotYet`` raised inside the block (a condition the rest of it depends on, say
    through :func:`_require`) ends the block and joins the hints collected so far.
    """
    wants = _Wants()
    try:
        yield wants
    except _NotYet as stop:
        wants.failed.append(str(stop))
    _require(not wants.failed, _joined(wants.failed))


def _joined(hints: list[str]) -> str:
    """One line for several failing conditions: ``2 things to fix: (1) ...; (2) ...``."""
    if len(hints) == 1:
        return hints[0]
    numbered = "; ".join(f"({i}) {hint}" for i, hint in enumerate(hints, 1))
    return f"{len(hints)} things to fix: {numbered}"


async def _settled(js: JetStreamContext, stream: str, name: str) -> ConsumerInfo:
    """The consumer's info once its acks have landed (plain acks are asynchronous).

    A timed wait: acks land within milliseconds, so 2 s is ample even on a busy machine;
    only a consumer that is really behind costs the learner the full 2 s.
    """
    latest = [await _consumer(js, stream, name)]

    async def settled() -> bool:
        latest.append(await _consumer(js, stream, name))
        return not (latest[-1].num_pending or latest[-1].num_ack_pending)

    with contextlib.suppress(TimeoutError):  # not settled: _drained() says what is left
        await wait_for(settled, timeout=2.0, what=f"consumer {name} to settle")
    return latest[-1]


def _drained(info: ConsumerInfo) -> None:
    with _all_of() as want:
        want(
            info.num_pending == 0,
            f"consumer {info.name!r} still has {info.num_pending} events to deliver: process "
            "them all",
        )
        want(
            info.num_ack_pending == 0,
            f"consumer {info.name!r} has {info.num_ack_pending} unacknowledged events: ack them",
        )


def _delivered_once(info: ConsumerInfo, first: int, last: int) -> str:
    """Check that the consumer delivered sequences first..last once each, all acknowledged.

    Returns a description; a consumer that delivered more (redeliveries) or less fails
    with what the server counted.
    """
    name = info.name
    served = info.delivered.consumer_seq if info.delivered else 0
    reached = info.delivered.stream_seq if info.delivered else 0
    want = max(0, last - first + 1)
    _require(served > 0, f"{name} has delivered nothing yet: consume its events and ack them")
    _require(
        reached == last,
        f"{name} has delivered up to sequence {reached} of {last}: consume the rest",
    )
    _require(
        served == want,
        f"{name} made {served} deliveries for the {want} events {first}..{last}, so "
        f"{served - want} were redeliveries (an ack came late or not at all): ack each "
        "event as you handle it, then start over with recreate=True and check again",
    )
    _require(_floor(info) == last, f"{name} has not acknowledged up to sequence {last}")
    return f"sequences {first}..{last}, each delivered once and acknowledged"


async def check(
    exercise: str, js: JetStreamContext | NATS, *args: Any, report: bool = True, **kwargs: Any
) -> CheckResult:
    """Run one exercise's checker against the live server.

    result = await check("03", js, acks)
    result.passed

    Most checkers take the JetStream context; 02 (core NATS only) takes the connection.
    In class mode the verdict also goes to the instructor, unless ``report=False``
    (``edalab progress`` re-checks without reporting).
    """
    try:
        spec = EXERCISES[exercise]
    except KeyError:
        raise ValueError(f"no exercise {exercise!r}; known: {', '.join(EXERCISES)}") from None
    try:
        _answered(spec, js, args, kwargs)
        message = await spec.checker(js, *args, **kwargs)
    except _NotYet as hint:
        result = CheckResult(exercise, False, str(hint))
    except nats.errors.ConnectionClosedError:
        # Nothing to report either: say it in one line, with the way back.
        return CheckResult(exercise, False, CLOSED)
    except (nats.errors.Error, EdalabError, TimeoutError) as err:
        result = _unexpected(exercise, err)
    else:
        _record_pass(exercise)
        result = CheckResult(exercise, True, message)
    if not report:  # a re-check (`edalab progress`): not an attempt, nothing to report
        return result
    from edalab.course.hints import note_check

    note_check(exercise, result.passed)  # an attempt after a hint opens the solution
    return await _report(result)


def _unexpected(exercise: str, err: Exception) -> CheckResult:
    """The one-line answer to an error no checker foresaw (a nats-py error, a timeout).

    A learner sees what went wrong and what to try, never a traceback. The test suite
    replaces this function with one that raises, so that a checker tripping on a case
    the tests know is a failing test, not a quiet "not yet".
    """
    said = " ".join(str(err).split()) or "no details"
    return CheckResult(
        exercise,
        False,
        f"the check stopped at an error it did not expect ({type(err).__name__}: {said}): "
        "run the exercise's cells again from the top and check again; if it repeats, "
        "show this line to your instructor",
    )


#: What a check says when the notebook's connection was closed (e.g. by a Run All).
CLOSED = (
    "the connection is closed (did a cell run `await nc.close()`?): run the notebook's "
    "connect cell again (`nc = await connect(server)`, `js = nc.jetstream()`), then check again"
)


async def _report(result: CheckResult) -> CheckResult:
    """In class mode, send the verdict to the instructor; say so if that failed.

    It goes over a connection of its own to the class server (the environment's), so a
    lesson that checks on a server of its own still reports to the class.
    """
    from edalab.course.classroom import in_class_mode, report_check

    if not in_class_mode():
        return result
    why = await report_check(None, result.exercise, result.passed, result.message)
    if why is None:
        return result
    note = f" (not reported to the instructor: {why})"
    return CheckResult(result.exercise, result.passed, result.message + note)


def _progress_file() -> Path:
    """This machine's record of passes: one per user when several share it (a class)."""
    import os

    user = "".join(c for c in os.environ.get("NATS_USER", "") if c.isalnum() or c in "-_")
    return state_dir() / (f"progress-{user}.json" if user else "progress.json")


def recorded_passes() -> dict[str, str]:
    """Exercises that passed a check on this machine, with when (ISO time, UTC).

    Later notebooks recreate streams earlier exercises used, so a check that passed
    can fail later for reasons that are not the learner's: ``edalab progress`` shows both.
    """
    try:
        data = json.loads(_progress_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _record_pass(exercise: str) -> None:
    passes = recorded_passes()
    passes.setdefault(exercise, datetime.now(UTC).isoformat(timespec="seconds"))
    with contextlib.suppress(OSError):  # a read-only home must not fail the check itself
        _progress_file().parent.mkdir(parents=True, exist_ok=True)
        _progress_file().write_text(json.dumps(passes, indent=2, sort_keys=True) + "\n")


def _answered(spec: Exercise, first: Any, rest: tuple[Any, ...], named: dict[str, Any]) -> None:
    """Say what to write when the check cell passes an answer that is still ``None``.

    A student copy's answer cell starts with placeholders (``award = None``) so that the
    check cell's own arguments exist before the learner has written anything.
    """
    signature = inspect.signature(spec.checker)
    params = list(signature.parameters)
    try:
        signature.bind(first, *rest, **named)
    except TypeError as err:  # check("20", reports): the js left out, an answer too many
        call = ", ".join([repr(spec.key), *params])
        raise _NotYet(
            f"the check cell's call does not fit ({err}): write it as "
            f"`await check({call})`, as the exercise's check cell has it"
        ) from None
    given = dict(zip(params, (first, *rest), strict=False)) | dict(named)
    answers = [*params[:1], *spec.needs]  # 12's js is the learner's admin context
    empty = [name for name in dict.fromkeys(answers) if name in given and given[name] is None]
    _require(
        not empty,
        f"{' and '.join(empty)} is still None: write your answer in the cell that says "
        f"# YOUR CODE HERE above it ({spec.task}), run that cell, then check again",
    )
