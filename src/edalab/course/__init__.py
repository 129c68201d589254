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

Teaching helpers the lessons show but a service would not need live here too:
``consumer_table``, ``stream_table`` and ``state_change`` (what a consumer or a stream
holds, as a table) and ``loss_report`` (which published events a stream lost).
"""

from edalab._consuming import loss_report
from edalab._streams import consumer_table, state_change, stream_table
from edalab.course.exercises import CheckResult, check
from edalab.course.hints import Hint, hint
from edalab.course.manifest import LESSONS, Lesson, course_map, lesson

__all__ = [
    "LESSONS",
    "CheckResult",
    "Hint",
    "Lesson",
    "check",
    "consumer_table",
    "course_map",
    "hint",
    "lesson",
    "loss_report",
    "state_change",
    "stream_table",
]
