"""The course built on edalab: its lessons, exercise checkers, workshop tools, benchmark
scenarios and the capstone shop.

The library (``edalab`` and its modules) knows nothing of the course; this package
uses the library. ``manifest`` lists the lessons and what each leaves on the server;
everything else here reads it.

    >>> from edalab.course import LESSONS
    >>> LESSONS[0].notebook
    '00_start_here'

In a notebook: ``from edalab.course import check, hint`` then ``await check("03", js)``;
``hint("03")`` gives the next of three hints, ``hint("03", solution=True)`` the worked
solution once you have tried.

Teaching helpers the lessons use but a service would not need live here too:
``fresh_stream`` (a clean stream at the top of a lesson; ``StreamInUse`` when another
running notebook holds it), ``lesson_server`` (a server of the lesson's own), and
``Table`` with ``consumer_table``, ``stream_table``, ``state_change`` (what a consumer or
a stream holds), ``loss_report`` (which published events a stream lost) and
``dead_letter_table``.
"""

from edalab.course.exercises import CheckResult, check
from edalab.course.hints import Hint, hint
from edalab.course.manifest import LESSONS, Lesson, course_map, lesson

from .._cells import install as short_errors
from ._lesson import (
    StreamInUse,
    Table,
    consumer_table,
    dead_letter_table,
    fresh_stream,
    lesson_server,
    loss_report,
    state_change,
    stream_table,
)
from ._view import Advisory, ConsumerState, StreamSnapshot, View, view

__all__ = [
    "LESSONS",
    "Advisory",
    "CheckResult",
    "ConsumerState",
    "Hint",
    "Lesson",
    "StreamInUse",
    "StreamSnapshot",
    "Table",
    "View",
    "check",
    "consumer_table",
    "course_map",
    "dead_letter_table",
    "fresh_stream",
    "hint",
    "lesson",
    "lesson_server",
    "loss_report",
    "short_errors",
    "state_change",
    "stream_table",
    "view",
]
