"""Errors in a notebook cell, shown as a learner needs them: the line, the type, the message.

An error raised deep inside nats-py (a fetch that timed out, a refused publish) comes
with pages of the library's frames, and a timeout with a chain of ``CancelledError``
and ``TimeoutError``. In a notebook, :func:`install` (which ``ensure_server`` and
``edalab.course.lesson_server`` call, so every notebook's setup cell does it) makes
IPython show such an error in three lines instead: the line of the learner's own cell
that raised it, the exception's type and message, and what to do next when there is a usual cause::

    cell line 2: [msg] = await sub.fetch(1, timeout=5)
    TimeoutError: nats: timeout
    hint: nothing answered in time. If you ran this cell on its own, run the cells above...

Errors that come from the learner's own code alone keep IPython's full traceback. After
a kernel restart nothing is defined and no edalab import has run: a cell using ``js``
fails with ``NameError`` before edalab can help, unless the kernel ran this module at
start (``make lab`` sets ``PYTHONSTARTUP`` to it); then the error says to run the setup
cells first (``PYTHONSTARTUP`` runs ``edalab/course/startup.py``).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

import nats
import nats.errors
import nats.js.errors

__all__ = ["explain", "install"]

#: Names the notebooks' setup cells define; a NameError on one means setup did not run.
SETUP_NAMES = frozenset({"nc", "js", "server", "srv", "make", "cluster", "shop", "saga"})

#: Where library frames live (nats-py's package and edalab's own).
_LIBRARIES = (str(Path(nats.__file__ or "").parent), str(Path(__file__).parent))


def _in_cell(filename: str) -> bool:
    """Whether a frame is the learner's code (a notebook cell), not a library's."""
    return filename.startswith("<ipython-input") or "ipykernel_" in filename


def _hint(error: BaseException) -> str:
    """What to do next, for the errors whose usual cause is a cell run out of order."""
    if isinstance(error, NameError) and getattr(error, "name", None) in SETUP_NAMES:
        return (
            "run the setup cells first (the first code cells of this notebook), or "
            "Kernel > Restart Kernel and Run All"
        )
    if isinstance(error, nats.errors.MsgAlreadyAckdError):
        return (
            "this cell already acknowledged that message when it ran before: run the cell "
            "that fetches it first"
        )
    if isinstance(error, nats.errors.BadSubscriptionError):
        return (
            "that subscription was unsubscribed when a cell ran before: run the cell that "
            "subscribes first"
        )
    if isinstance(error, nats.js.errors.NotFoundError) or (
        isinstance(error, nats.js.errors.ServerError) and error.err_code == 10057
    ):  # 10057: no message found (nats-py reports it as a 500)
        return (
            "the server has no such stream, consumer or message: not created yet, or "
            "deleted by an earlier run of this cell. Run the cells above it first"
        )
    if type(error) is nats.js.errors.Error and "already bound" in str(error):
        return (
            "a subscription from an earlier run of this cell still holds that durable "
            "consumer: unsubscribe it first, or Restart Kernel and Run All"
        )
    if "maximum account active connections exceeded" in str(error):
        return (
            "the account's connection limit is reached, and connections made by earlier "
            "runs of these cells still count: close them, or Restart Kernel and Run All"
        )
    if isinstance(error, nats.errors.ConnectionClosedError):
        return "the connection is closed: run the notebook's setup cells again"
    if isinstance(error, TimeoutError | nats.errors.TimeoutError):
        return (
            "nothing answered in time. If you ran this cell on its own, run the cells "
            "above it first: they set up or publish what it waits for"
        )
    return ""


def explain(error: BaseException, tb: TracebackType | None = None) -> list[str] | None:
    """The short form of ``error``: its cell line, type and message, and a hint.

    ``None`` when the error comes from the learner's code alone and has no hint (then
    the full traceback is the useful one).

        >>> explain(ValueError("mine")) is None
        True
        >>> explain(NameError("name 'js' is not defined", name="js"))[-1][:31]
        'hint: run the setup cells first'
    """
    frames = traceback.extract_tb(tb or error.__traceback__)
    hidden = [f for f in frames if f.filename.startswith(_LIBRARIES)]
    hint = _hint(error)
    if not hidden and not hint:
        return None
    own = [f for f in frames if _in_cell(f.filename)]
    lines = [f"cell line {f.lineno}: {(f.line or '').strip()}" for f in own[-1:]]
    said = str(error).split(": Msg(")[0]  # nats-py appends the whole message's repr
    lines.append(f"{type(error).__name__}: {said}")
    if hint:
        lines.append(f"hint: {hint}")
    return lines


def install() -> bool:
    """In an IPython kernel, show errors in the short form; elsewhere do nothing.

    Returns whether it installed (calling it again is harmless).
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shown = shell.InteractiveTB  # what IPython's showtraceback asks for the lines it sends
    if getattr(shown.structured_traceback, "edalab_short", False):
        return True
    full = shown.structured_traceback

    def structured_traceback(
        etype: type[BaseException],
        evalue: BaseException | None,
        etb: TracebackType | None = None,
        tb_offset: int | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[str]:
        short = explain(evalue, etb) if isinstance(evalue, Exception) else None
        if short is not None:
            return short
        lines: list[str] = full(etype, evalue, etb, tb_offset, *args, **kwargs)
        return lines

    structured_traceback.edalab_short = True  # type: ignore[attr-defined]
    shown.structured_traceback = structured_traceback
    return True
