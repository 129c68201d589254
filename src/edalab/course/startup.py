"""Run by an IPython kernel at start (``PYTHONSTARTUP``, set by ``make lab``): short errors.

From the first cell on, even after a restart, an error shows the learner's line, its type
and message (``edalab.course.short_errors``); a ``NameError`` on ``js`` says to run the setup cells.
"""

from edalab.course import short_errors

short_errors()
