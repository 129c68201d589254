"""Why a message was given up on: one typed value for quarantines and dead letters.

:class:`~edalab.EventConsumer` terminates a message it cannot or must not
handle, and tells the server why (``+TERM <text>``); the server copies that text into
its ``MSG_TERMINATED`` advisory, where :class:`~edalab.DeadLetters` reads
it back (notebook ``11_dead_letters``). The text crosses the wire, so it is formatted
and parsed here, in one place, and everyone else compares :class:`Reason` values::

    >>> text = Reason.UNDECODABLE.text("not valid JSON")
    >>> text
    'undecodable: not valid JSON'
    >>> Reason.of_term(text)
    <Reason.UNDECODABLE: 'undecodable'>
    >>> Reason.of_term("some other client's words")
    <Reason.TERMINATED: 'terminated'>
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    """Why a message was given up on (its value is the category a table shows)."""

    #: Not an event at all (bad JSON, missing fields).
    UNDECODABLE = "undecodable"
    #: An event with a version no registered model knows.
    UNKNOWN_VERSION = "unknown version"
    #: Another event error (an upcaster failed, a payload does not validate).
    INVALID_EVENT = "invalid event"
    #: The handler raised :class:`~edalab.PermanentError`.
    REJECTED = "rejected"
    #: Terminated by a client that gave no reason edalab knows.
    TERMINATED = "terminated"
    #: Delivered ``max_deliver`` times and never acknowledged (a server advisory).
    MAX_DELIVERIES = "max deliveries"

    def text(self, detail: str) -> str:
        """The reason as sent after ``+TERM``: a fixed prefix, then ``detail``."""
        return f"{_PREFIX[self]}: {detail}" if self in _PREFIX else detail

    @classmethod
    def of_term(cls, text: str) -> Reason:
        """The reason a ``+TERM`` text (from :meth:`text`) stands for; unknown: TERMINATED."""
        head, sep, _ = text.partition(": ")
        if sep:
            for reason, prefix in _PREFIX.items():
                if head == prefix:
                    return reason
        return cls.TERMINATED


# The wire prefixes. UnknownVersionError and handler keep the texts earlier versions sent.
_PREFIX = {
    Reason.UNDECODABLE: "undecodable",
    Reason.UNKNOWN_VERSION: "UnknownVersionError",
    Reason.INVALID_EVENT: "invalid event",
    Reason.REJECTED: "handler",
}
