"""Run by an IPython kernel at start (``PYTHONSTARTUP``, set by ``make lab``): short errors.

From the first cell on, even after a restart, an error shows the learner's line, its type
and message (:mod:`edalab._cells`); a ``NameError`` on ``js`` says to run the setup cells.
"""

__import__("edalab._cells")._cells.install()
