"""The transactional outbox: a database change and its event, never one without the other.

The *dual-write problem*: a service that commits a row and then publishes an event
can crash between the two (the row exists, the event is lost), or publish first and
then fail to commit (an event for a change that never happened). The outbox makes it
one write: the business row and the event go into the service's own database in
**one transaction**; a relay then publishes the outbox's rows in order and marks them
sent. The relay can crash too, between the publish and the mark: it then publishes
the same rows again, with the same ``Nats-Msg-Id`` (the event id), and the stream's
duplicate window drops the repeat. So: nothing lost, nothing stored twice, as long as
a restarted relay resends within the stream's ``duplicate_window`` (2 minutes by
default). Notebook 16 shows each step with a real SQLite database.

    db = sqlite3.connect("orders.db")
    outbox = Outbox(db)
    with db:                                       # one transaction
        db.execute("INSERT INTO orders ...")
        outbox.add(Event.create("order.placed", {...}))
    await OutboxRelay(outbox, js).relay_once()     # publish, then mark sent
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from ._events import Event
from ._publishing import publish_event
from ._subjects import validate_subject

__all__ = ["Outbox", "OutboxRelay", "OutboxRow"]


@dataclass(frozen=True)
class OutboxRow:
    """One event waiting in the outbox (``seq`` orders them)."""

    seq: int
    event: Event
    subject: str
    headers: dict[str, str]


class Outbox:
    """An outbox table in the service's own SQLite database (same connection, same transaction).

    >>> db = sqlite3.connect(":memory:")
    >>> outbox = Outbox(db)
    >>> with db:
    ...     outbox.add(Event.create("order.placed", {"order_id": "o1"}, id="e1"))
    >>> [row.event.id for row in outbox.pending()]
    ['e1']
    """

    def __init__(self, db: sqlite3.Connection, table: str = "outbox") -> None:
        if not table.isidentifier():
            raise ValueError(f"outbox table name {table!r} is not an identifier")
        self.db = db
        self.table = table
        with db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " event_id TEXT NOT NULL UNIQUE,"
                " subject TEXT NOT NULL,"
                " body BLOB NOT NULL,"
                " headers TEXT NOT NULL,"
                " sent INTEGER NOT NULL DEFAULT 0)"
            )

    def add(
        self, event: Event, *, subject: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Queue ``event``: call it inside the transaction that changes the business rows.

        Rows are keyed by the event id: an event already queued (or sent) is not queued
        again, so a transaction that runs twice queues its event once.

        >>> db = sqlite3.connect(":memory:")
        >>> outbox = Outbox(db)
        >>> for _ in range(2):
        ...     with db:
        ...         outbox.add(Event.create("order.placed", {"order_id": "o1"}, id="e1"))
        >>> outbox.counts()
        {'pending': 1, 'sent': 0}
        """
        subj = validate_subject(subject or event.type)
        self.db.execute(
            f"INSERT INTO {self.table} (event_id, subject, body, headers) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (event.id, subj, event.to_json(), json.dumps(headers or {}, sort_keys=True)),
        )

    def pending(self, limit: int = 1000) -> list[OutboxRow]:
        """Events not yet marked sent, oldest first."""
        rows = self.db.execute(
            f"SELECT seq, subject, body, headers FROM {self.table} WHERE sent = 0"
            " ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OutboxRow(seq, Event.from_json(body, subject=subject), subject, json.loads(headers))
            for seq, subject, body, headers in rows
        ]

    def mark_sent(self, rows: list[OutboxRow]) -> None:
        """Mark rows published (their PubAcks arrived)."""
        with self.db:
            self.db.executemany(
                f"UPDATE {self.table} SET sent = 1 WHERE seq = ?", [(r.seq,) for r in rows]
            )

    def counts(self) -> dict[str, int]:
        """How many rows are pending and sent."""
        sent, pending = self.db.execute(
            f"SELECT COALESCE(SUM(sent), 0), COALESCE(SUM(1 - sent), 0) FROM {self.table}"
        ).fetchone()
        return {"pending": int(pending), "sent": int(sent)}


class OutboxRelay:
    """Publishes an outbox's pending events in order, each with ``Nats-Msg-Id`` = its id."""

    def __init__(self, outbox: Outbox, js: JetStreamContext, *, batch: int = 100) -> None:
        self.outbox = outbox
        self.js = js
        self.batch = batch

    async def publish_pending(self) -> list[tuple[OutboxRow, PubAck]]:
        """Publish up to ``batch`` pending rows and await each PubAck; does not mark them."""
        done = []
        for row in self.outbox.pending(self.batch):
            ack = await publish_event(
                self.js, row.event, subject=row.subject, headers=row.headers, retry_for=5.0
            )
            done.append((row, ack))
        return done

    async def relay_once(self) -> list[PubAck]:
        """Publish up to ``batch`` pending rows, then mark them sent; return their acks."""
        done = await self.publish_pending()
        self.outbox.mark_sent([row for row, _ in done])
        return [ack for _, ack in done]

    async def drain(self) -> int:
        """Relay until nothing is pending; return how many rows were published."""
        total = 0
        while acks := await self.relay_once():
            total += len(acks)
        return total
