"""What notebook 00 gives a newcomer: a picture of an event's whole path, and a glossary.

One source for both: notebook 00 shows them (``event_path()``, ``glossary()``), and the
course book (tools/build_book.py) makes its glossary page from the same two.

    >>> glossary().splitlines()[0]
    '| term | what it means | notebook |'
    >>> "publisher" in EVENT_PATH.read_text()
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EVENT_PATH", "GLOSSARY", "Picture", "Term", "event_path", "glossary"]

#: The picture: publisher → subject → stream → consumer → handler, then ack or redelivery.
#: Plain SVG with no external reference (no fonts, scripts or links): it renders offline.
EVENT_PATH = Path(__file__).with_name("event_path.svg")


@dataclass(frozen=True)
class Term:
    """One glossary entry and the notebook that teaches it."""

    term: str
    meaning: str
    notebook: str


GLOSSARY: tuple[Term, ...] = (
    Term("event", "a record that something happened (`order.placed`), never changed "
         "afterwards; here the `Event` envelope: id, type, data, timestamp, version", "01"),
    Term("subject", "the dot-separated name a message is published on (`order.placed`); "
         "subscriptions, streams and consumers select messages by subject", "02"),
    Term("wildcard", "in a subscription or filter, `*` matches exactly one token and `>` "
         "one or more tokens at the end", "02"),
    Term("core NATS", "publish and subscribe with no storage: only the subscribers "
         "listening at that moment receive a message", "00"),
    Term("JetStream", "the storage layer built into `nats-server`: streams and consumers",
         "03"),
    Term("stream", "stores the messages published on its subjects, in order, each with a "
         "sequence number, until its limits or retention policy remove them", "03"),
    Term("`PubAck`", "a stream's answer to a JetStream publish: accepted (and stored, "
         "unless an interest stream had no consumer for it), in which stream, at which "
         "sequence, and whether it was a duplicate", "03"),
    Term("`Nats-Msg-Id`", "a header naming a message; within its duplicate window, a "
         "stream drops a second message with the same id", "03"),
    Term("retention", "when a stream deletes messages: at its limits (`max_msgs`, "
         "`max_age`, ...), when every interested consumer acked, or once acked (work "
         "queue)", "04"),
    Term("consumer", "a reader's state on the server, for one stream: its filter, its "
         "position, and what it delivered that is not yet acknowledged", "05"),
    Term("pull / push consumer", "pull: the client asks for messages (`fetch`); push: the "
         "server sends them to a subject the client subscribes to", "05"),
    Term("ack floor, ack pending", "the sequence up to which everything is acknowledged; "
         "the messages delivered and not yet acknowledged", "05"),
    Term("ack", "the handler's word that a message is done: it will not be delivered "
         "again", "06"),
    Term("`ack_wait`", "how long a consumer waits for an ack before it delivers the "
         "message again", "06"),
    Term("nak, term", "nak: deliver this message again (now or after a delay); term: never "
         "deliver it again", "06"),
    Term("redelivery", "a consumer delivering a message again: no ack within `ack_wait`, "
         "or a nak", "06"),
    Term("`max_deliver`, `backoff`", "the most deliveries of one message; one ack "
         "timeout per delivery (`backoff[0]` for the first, `backoff[1]` for the second, "
         "...) in place of the single `ack_wait`", "06"),
    Term("durable consumer", "a consumer with a name, kept on the server across client "
         "disconnects and server restarts; an ephemeral one goes away when unused", "07"),
    Term("upcaster", "a function that turns an event of one version into the next "
         "version, so handlers only see the newest", "08"),
    Term("at least once", "a message is delivered until it is acknowledged, so a handler "
         "can see it more than once", "10"),
    Term("idempotent", "handling the same event twice has the effect of handling it once",
         "10"),
    Term("key-value bucket", "JetStream's key-value store, a stream underneath; "
         "`create` writes a key only if it has no value yet", "10"),
    Term("advisory", "an event the server publishes about itself on `$JS.EVENT.ADVISORY.>`, "
         "e.g. when a consumer reached `max_deliver` for a message", "11"),
    Term("dead letter", "a message a consumer gave up on (`max_deliver` reached, or "
         "term), kept to inspect, fix and replay", "11"),
    Term("permissions", "which subjects a user may publish and subscribe to; every "
         "JetStream operation is a subject too", "12"),
    Term("replicas (R3)", "copies of a stream on several servers of a cluster: a leader "
         "and followers; a `PubAck` means a majority holds the message", "13"),
    Term("`max_ack_pending`", "the most messages a consumer has delivered and not yet "
         "acknowledged at once: backpressure", "14"),
    Term("outbox", "the row and its event written in one database transaction; a relay "
         "publishes the event afterwards", "16"),
    Term("account", "a separate namespace on one NATS deployment: its own users, subjects "
         "and streams (class mode gives each student one)", "—"),
)  # fmt: skip


def glossary() -> str:
    """The glossary as a Markdown table, in the order the course meets the terms."""
    rows = ["| term | what it means | notebook |", "|---|---|---|"]
    rows += [f"| {t.term} | {t.meaning} | {t.notebook} |" for t in GLOSSARY]
    return "\n".join(rows)


class Picture:
    """An SVG picture that Jupyter shows as the picture (``_repr_svg_``), with a short repr."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _repr_svg_(self) -> str:
        return self.path.read_text()

    def __repr__(self) -> str:
        return f"<picture {self.path.name}>"


def event_path() -> Picture:
    """The picture of an event's path, for a notebook cell.

    >>> event_path()
    <picture event_path.svg>
    """
    return Picture(EVENT_PATH)
