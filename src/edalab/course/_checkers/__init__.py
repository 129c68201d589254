"""The exercise checkers, one module per lesson that has an exercise (private).

The public face is :mod:`edalab.course.exercises`; the shared machinery is ``_core``.
"""

from edalab.course.manifest import LESSONS

from . import (
    ex00,
    ex01,
    ex02,
    ex03,
    ex04,
    ex05,
    ex06,
    ex07,
    ex08,
    ex09,
    ex10,
    ex11,
    ex12,
    ex13,
    ex14,
    ex16,
    ex17,
    ex18,
    ex19,
    ex20,
    ex21,
    ex22,
)
from ._core import EXERCISES, Checker, CheckResult, Exercise, check
from ._core import recorded_passes as recorded_passes

_CHECKERS: dict[str, Checker] = {
    "00": ex00.checker,
    "01": ex01.checker,
    "02": ex02.checker,
    "03": ex03.checker,
    "04": ex04.checker,
    "05": ex05.checker,
    "06": ex06.checker,
    "07": ex07.checker,
    "08": ex08.checker,
    "09": ex09.checker,
    "10": ex10.checker,
    "11": ex11.checker,
    "12": ex12.checker,
    "13": ex13.checker,
    "14": ex14.checker,
    "16": ex16.checker,
    "17": ex17.checker,
    "18": ex18.checker,
    "19": ex19.checker,
    "20": ex20.checker,
    "21": ex21.checker,
    "22": ex22.checker,
}
EXERCISES.update(
    (x.number, Exercise(x.number, x.notebook, x.exercise, _CHECKERS[x.number]))
    for x in LESSONS
    if x.exercise
)

__all__ = ["EXERCISES", "CheckResult", "Exercise", "check", "recorded_passes"]
