"""The course in one place: its lessons, what each teaches, and what each leaves on the server.

Everything that needs to know the course reads this list: the course map in
notebook 00 and the README, ``edalab reset`` (which streams and buckets are the
course's), ``edalab progress`` and the exercise checkers (which lesson an exercise
belongs to), and ``make student``.

    >>> from edalab.course.manifest import LESSONS, lesson
    >>> lesson("03").title
    'Publishing'
    >>> [x.number for x in LESSONS][:3]
    ['00', '01', '02']
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LESSONS",
    "PACE",
    "Lesson",
    "Pace",
    "course_buckets",
    "course_map",
    "course_streams",
    "lesson",
    "lesson_top",
]


@dataclass(frozen=True)
class Lesson:
    """One notebook: its number (also its exercise's id), file stem, title and footprint."""

    number: str
    slug: str
    title: str
    teaches: str
    streams: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    exercise: str = ""  # one line: what the exercise asks ("" when it has no checker)

    @property
    def notebook(self) -> str:
        """The notebook's file stem, e.g. ``03_publishing``."""
        return f"{self.number}_{self.slug}"


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "00",
        "start_here",
        "Start here",
        "what EDA is and why; the server; a first connection and message",
        exercise="greet(nc, name): subscribe, publish, receive a greeting",
    ),
    Lesson(
        "01",
        "event_structure",
        "Event structure",
        "the seed's Go struct and its JSON; the `Event` model; validation errors; ids, UTC, "
        "`version`",
        exercise="an OrderPlaced model that round-trips and refuses bad payloads",
    ),
    Lesson(
        "02",
        "subject_naming",
        "Subject naming",
        "`domain.event_type`, wildcards `*` and `>` seen live on core NATS, hierarchy "
        "design, token/header/payload, versioned subjects",
        exercise="subscription patterns for a mailer, probed on the server",
    ),
    Lesson(
        "03",
        "publishing",
        "Publishing",
        "core vs JetStream publish, `PubAck`, idempotent stream setup, async publish "
        "bounded by `publish_async_max_pending`, dedup with `Nats-Msg-Id`",
        streams=("ORDERS",),
        exercise="ORDERS with a 5-minute dedup window, a resend dropped",
    ),
    Lesson(
        "04",
        "stream_policies",
        "Stream policies",
        "retention (limits, interest, work queue), `max_msgs`/`max_bytes`/`max_age`/"
        "`max_msgs_per_subject`/`max_msg_size`, discard old vs new, per-message TTL, "
        "subject delete markers",
        streams=(
            "LOG",
            "ALERTS",
            "JOBS",
            "RECENT",
            "BLOBS",
            "FRESH",
            "QUOTES",
            "UPLOADS",
            "TICKETS",
            "PLAIN",
            "SESSIONS",
            "PRESENCE",
            "PRICES",
            "STAMPS",
            "SEATS",
        ),
        exercise="PRICES keeps the last price per symbol",
    ),
    Lesson(
        "05",
        "subscribing",
        "Subscribing",
        "callback subscribers, queue groups, push and pull consumers, stream subjects vs "
        "consumer filters, a raw pull loop (heartbeats, 408, 409), `EventConsumer`, "
        "consumer positions",
        streams=("ORDERS",),
        exercise="billing delivers and acks every order.placed",
    ),
    Lesson(
        "06",
        "acks_and_redelivery",
        "Acks and redelivery",
        "ack, `ack_wait`, nak with delay, in-progress, term, `max_deliver`, backoff, "
        "consumer state",
        streams=("TASKS",),
        exercise="consumer careful: max_deliver, backoff",
    ),
    Lesson(
        "07",
        "durable_consumers_and_replay",
        "Durable consumers and replay",
        "durables that survive disconnects and server restarts; deliver policies vs STAN "
        "start options; the fixed-policy trap",
        streams=("USERS",),
        exercise="durable audit from sequence 3",
    ),
    Lesson(
        "08",
        "versioning",
        "Versioning",
        "version field vs subject suffix, models per version, upcasters, unknown versions, "
        "compatibility checks",
        streams=("USERS",),
        exercise="user.created v4, compatible, replayed",
    ),
    Lesson(
        "09",
        "durability",
        "Durability",
        "what a `PubAck` promises, `sync_interval` (fsync every 2 minutes by default, or "
        "`always`), kill -9 the server mid-publish and lose nothing acknowledged, retries "
        "with the same `Nats-Msg-Id`",
        streams=("PAYMENTS", "LEDGER", "NOTICES"),
        exercise="LEDGER: 200 entries across a server crash, each stored once",
    ),
    Lesson(
        "10",
        "idempotency",
        "Idempotency",
        "at-least-once delivery; why check-then-mark repeats effects (the crash window, two "
        "workers); the effect and its mark as one atomic write (`create`, "
        "`Nats-Expected-Last-Subject-Sequence`)",
        streams=("PAYMENTS",),
        buckets=("processed-ids", "ledger-processed", "charges"),
        exercise="charge once per event, across racing workers and redeliveries",
    ),
    Lesson(
        "11",
        "dead_letters",
        "Dead letters",
        "the server's advisories, `DeadLetters`, why replay to the original subject reaches "
        "every consumer, replay to the consumer that gave up",
        streams=("PAYMENTS", "DEAD_LETTERS"),
        exercise="dead letters discarded or fixed and replayed to payments only",
    ),
    Lesson(
        "12",
        "security",
        "Security",
        "password and nkey users, publish/subscribe permissions, what a denial looks like, "
        "fail-fast bad credentials",
        streams=("SHOP", "SCRATCH"),
        exercise="a least-privilege auditor: fetch and ack its consumer, nothing else",
    ),
    Lesson(
        "13",
        "clustering",
        "Clustering",
        "a 3-node JetStream cluster, R3 streams, killing the leader mid-publish, catch-up",
        streams=("ORDERS", "AUDIT", "WHERE"),
        exercise="an R3 stream surviving a follower restart, every replica caught up",
    ),
    Lesson(
        "14",
        "ordering_and_backpressure",
        "Ordering, backpressure and lag",
        "the order JetStream guarantees and three ways to lose it, per-key order with "
        "`partition()`, ordered consumers, `max_ack_pending` as backpressure, lag, "
        "advisories and `/jsz`",
        streams=("LEDGER", "ACCOUNTS", "CLICKS", "SHIPMENTS"),
        exercise="SHIPMENTS in 4 partitions, one in-order consumer each",
    ),
    Lesson(
        "15",
        "performance",
        "Performance",
        "publish windows, fetch batch sizes, ack policies and their guarantees, the "
        "benchmark suite",
        streams=("PERF",),
    ),
    Lesson(
        "16",
        "patterns",
        "Patterns for event-driven services",
        "commands vs events, the transactional outbox (SQLite), derived ids, correlation, "
        "causation and `traceparent`, sagas both ways with compensation, optimistic "
        "concurrency, a key-value read model, CloudEvents",
        streams=("ORDERS", "ACCOUNTS"),
        buckets=("order-status",),
        exercise="billing.charged exactly once per order, traced",
    ),
    Lesson(
        "17",
        "capstone",
        "Capstone: a shop made of events",
        "a shop of five services talking through events: read model by replay, a live schema "
        "rollout, a poison event replayed, a timeline of what happened",
        streams=("SHOP", "SHOP_ANALYTICS", "DEAD_LETTERS"),
        buckets=("shop-emails",),
        exercise="a loyalty service that awards each payment once, even when redelivered",
    ),
    Lesson(
        "18",
        "from_nats_streaming",
        "From NATS Streaming to JetStream",
        "the seed's `stan` publisher and subscriber next to their JetStream versions, the "
        "concept map, the traps",
        streams=("MIGRATION",),
        exercise="a STAN subscription translated",
    ),
    Lesson(
        "19",
        "one_active_worker",
        "One active worker, and a standby",
        "priority groups: a pinned worker with a standby that takes over, unpinning, the "
        "overflow policy; versus queue groups, `max_ack_pending=1` and partitions",
        streams=("WORK", "BACKLOG", "DRILL", "KEYED"),
        exercise="a consumer and worker pair: one active, a standby takes over in time",
    ),
    Lesson(
        "20",
        "topology_and_recovery",
        "Stream topology and disaster recovery",
        "a mirror as a read replica and what it refuses, sources with subject transforms, "
        "a stream shared with another account, a leaf node cut off and catching up, a "
        "snapshot restored into a fresh server",
        streams=(
            "SALES",
            "SALES_READ",
            "SALES_EU",
            "SALES_US",
            "SALES_WORLD",
            "REPORTS",
            "INVOICES",
            "STORE",
            "STORES",
        ),
        exercise="REPORTS: both regions' sales under report., read-only",
    ),
    Lesson(
        "21",
        "many_teams",
        "Many teams on one NATS",
        "decentralized security: operator, accounts and users as signed JWTs, a memory "
        "resolver, account limits enforced, revoking a connected user, an auth callout in "
        "Python and what happens when it is down",
        streams=("TEAM_A_WORK", "TEAM_A_MORE"),
        exercise="an auth callout's decide: the right person into their team, others refused",
    ),
    Lesson(
        "22",
        "workbook_to_service",
        "From workbook to service",
        "two capstone services as FastStream apps, with edalab's guarantees as FastStream "
        "middlewares: `Nats-Msg-Id` on publish, upcasting decoder, nak vs term with dead "
        "letters and replay, an idempotency guard",
        streams=("SHOP", "DEAD_LETTERS"),
        buckets=("shop-charges", "shop-emails-sent"),
        exercise="a payments service's middleware stack: charged once, retried, dead-lettered",
    ),
)


@dataclass(frozen=True)
class Pace:
    """How long a lesson takes, and what it needs from earlier lessons: (number, what)."""

    minutes: int
    needs: tuple[tuple[str, str], ...] = ()


#: Each lesson's time and prerequisites. The top cell of every notebook says them
#: (``lesson_top``); tests/unit/test_course.py checks that each notebook agrees.
PACE: dict[str, Pace] = {
    "00": Pace(15),
    "01": Pace(20, (("00", "what an event is"),)),
    "02": Pace(25, (("00", "a connection; publish and subscribe on core NATS"),)),
    "03": Pace(30, (("01", "the `Event` envelope"), ("02", "subjects and wildcards"))),
    "04": Pace(40, (("03", "streams and `PubAck`"),)),
    "05": Pace(45, (("02", "wildcards"), ("03", "streams and `publish_events`"))),
    "06": Pace(40, (("05", "pull consumers and `EventConsumer`"),)),
    "07": Pace(30, (("05", "pull consumers"), ("06", "`ack` and `ack_wait`"))),
    "08": Pace(30, (("01", "the `Event` model and its `version`"), ("05", "`EventConsumer`"))),
    "09": Pace(25, (("03", "`PubAck` and `Nats-Msg-Id` deduplication"),)),
    "10": Pace(35, (("03", "`Nats-Msg-Id`"), ("06", "`ack_wait` and redelivery"))),
    "11": Pace(30, (("06", "`max_deliver` and `term`"),)),
    "12": Pace(35, (("03", "streams"), ("05", "pull consumers"))),
    "13": Pace(30, (("03", "streams and `PubAck`"), ("09", "what an acknowledgement promises"))),
    "14": Pace(45, (("05", "pull consumers"), ("06", "`ack`, `nak` and redelivery"))),
    "15": Pace(25, (("03", "`publish_async` and `publish_events`"), ("05", "`fetch`"))),
    "16": Pace(60, (("03", "`Nats-Msg-Id`"), ("10", "idempotent handlers"))),
    "17": Pace(
        45,
        (("08", "upcasters"), ("10", "`ProcessedIds`"), ("11", "`DeadLetters` and replay")),
    ),
    "18": Pace(25, (("05", "consumers and acks"), ("07", "durables and deliver policies"))),
    "19": Pace(
        35, (("06", "`ack_wait` and redelivery"), ("14", "partitions and `max_ack_pending`"))
    ),
    "20": Pace(
        40,
        (("12", "users and permissions"), ("13", "replicated streams and catching up")),
    ),
    "21": Pace(40, (("12", "users and permissions"), ("13", "servers of a lesson's own"))),
    "22": Pace(40, (("17", "the capstone's shop"), ("11", "dead letters and replay"))),
}

#: What every notebook's top cell tells a learner about running it.
ONE_AT_A_TIME = (
    "One notebook at a time; when in doubt, Restart Kernel and Run All (the *Kernel* menu)."
)


def lesson_top(number: str) -> str:
    """The line under a notebook's title: its time, what it needs, how to run it.

    >>> lesson_top("04")[:66]
    '**About 40 minutes.** Needs 03 Publishing (streams and `PubAck`). '
    >>> lesson_top("00").endswith("Restart Kernel and Run All (the *Kernel* menu).")
    True
    """
    pace = PACE[number]
    needs = ", ".join(f"{n} {lesson(n).title} ({what})" for n, what in pace.needs)
    return (
        f"**About {pace.minutes} minutes.** "
        + (f"Needs {needs}. " if needs else "Needs nothing but Python. ")
        + ONE_AT_A_TIME
    )


def lesson(number: str) -> Lesson:
    """The lesson numbered ``number`` (``"03"``); ``KeyError`` names the known ones."""
    for item in LESSONS:
        if item.number == number:
            return item
    raise KeyError(f"no lesson {number!r}; known: {', '.join(x.number for x in LESSONS)}")


def course_streams() -> list[str]:
    """Every stream some lesson creates, in course order, each once."""
    return list(dict.fromkeys(s for x in LESSONS for s in x.streams))


def course_buckets() -> list[str]:
    """Every key-value bucket some lesson creates, in course order, each once."""
    return list(dict.fromkeys(b for x in LESSONS for b in x.buckets))


def course_map() -> str:
    """The course map as a Markdown table (notebook 00 and the README show it).

    >>> course_map().splitlines()[0]
    '| notebook | you learn | time |'
    """
    rows = ["| notebook | you learn | time |", "|---|---|---|"]
    rows += [f"| `{x.notebook}` | {x.teaches} | {PACE[x.number].minutes} min |" for x in LESSONS]
    return "\n".join(rows)
