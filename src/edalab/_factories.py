"""Events with predictable ids and times, for lessons, tests and examples (no pytest needed).

:class:`EventFactory` numbers its events ``evt-0001``, ``evt-0002`` ... and stamps them
with a :class:`FixedClock`, so a notebook's outputs and a test's expectations do not
change from run to run (notebook ``01_event_structure`` introduces it)::

    make = EventFactory()
    await publish_event(js, make("user.created", {"user_id": "u1"}))

The pytest fixtures (a real server, ``nc``, ``js``) are in :mod:`edalab.testing`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ._events import Event

__all__ = ["EventFactory", "FixedClock"]


class FixedClock:
    """A clock that starts at ``start`` and moves ``step`` forward on every call.

    >>> clock = FixedClock()
    >>> clock().isoformat(), clock().isoformat()
    ('2024-01-01T00:00:00+00:00', '2024-01-01T00:00:01+00:00')
    """

    def __init__(
        self,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now


class EventFactory:
    """Make events with ids ``evt-0001``, ``evt-0002`` ... and a :class:`FixedClock`.

    >>> make = EventFactory()
    >>> event = make("user.created", {"user_id": "u1"})
    >>> event.id, event.timestamp.isoformat()
    ('evt-0001', '2024-01-01T00:00:00+00:00')
    """

    def __init__(self, prefix: str = "evt-", clock: FixedClock | None = None) -> None:
        self.prefix = prefix
        self.clock = clock or FixedClock()
        self.count = 0

    def __call__(self, type: str, data: Any = None, **fields: Any) -> Event:
        self.count += 1
        fields.setdefault("id", f"{self.prefix}{self.count:04d}")
        return Event.create(type, data, clock=self.clock, **fields)
