"""Checkers for the notebooks' exercises: they look at the live server and say what is missing.

In a notebook::

    from edalab.course.exercises import check
    await check("05", js)       # ✔ 05 passed ... or ✘ 05 not yet: <what to fix>

Each checker is a coroutine taking the JetStream context (02, which comes before
JetStream, takes the connection ``nc``), plus what the exercise produced (02 your
subscription patterns, 03 your PubAcks, 08 your
:class:`~edalab.SchemaRegistry`); ``check`` returns a :class:`CheckResult`.
A checker observes behaviour on the live server: what it delivered, stored, dropped.
The checkers themselves live in a private package, one module per lesson.
"""

from ._checkers import EXERCISES, CheckResult, Exercise, check, recorded_passes

__all__ = ["EXERCISES", "CheckResult", "Exercise", "check", "recorded_passes"]
