"""Class mode: one NATS deployment for a whole class, one account per student.

``edalab class init --students 40 --out class/`` writes, from one generator:

- ``accounts.conf``: an ``accounts { ... }`` block for nats-server. Every student gets
  an account of their own (``S01``, ``S02``, ...) with JetStream and per-account limits
  (memory, storage, streams, consumers): each account is its own JetStream namespace,
  so every student creates the course's ``ORDERS`` or ``USERS`` without colliding and
  cannot see anyone else's. Passwords are stored as bcrypt hashes only.
- ``nats-server.conf``: a whole server configuration (listen, monitoring, JetStream,
  ``include accounts.conf``) for Docker Compose and for ``edalab server start --config``.
- ``helm-values.yaml``: values for the official NATS Helm chart (``config.merge``
  carries the same accounts).
- ``students/s01.env`` ...: one credentials file per student (mode 0600), in the
  variable names the NATS CLI uses (``NATS_URL``, ``NATS_USER``, ``NATS_PASSWORD``),
  plus ``EDALAB_CLASS=1`` so that ``check()`` reports to the instructor.
- ``instructor.env`` (0600) and ``class.json`` (the roster and limits; no secrets).

Progress reports cross accounts through a *service import*: a student publishes
``class.report.<exercise>.<pass|fail|hint>``; the import maps it to
``class.report.<student>.<exercise>.<verdict>`` in the instructor's account, where the
``CLASS_PROGRESS`` stream keeps the last of each and answers with a ``PubAck`` (so a
report is acknowledged, never silently lost). A pass stays a pass: a later failing
attempt is a separate subject. A student cannot report for someone else: their account
imports only their own subjects. The stream captures the course's exercises and
verdicts only (:func:`report_subjects`): anything else a student publishes there is
stored nowhere, so nobody can fill the instructor's stream with junk.

    >>> room = Classroom.generate(students=2, bcrypt_rounds=4)
    >>> [s.user for s in room.students]
    ['s01', 's02']
    >>> "S02" in room.accounts()
    True
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import StorageType
from nats.js.client import JetStreamContext

from edalab import ensure_stream

from .._confidential import write_private
from .._errors import EdalabError
from .._urls import server_address, without_credentials
from ._lesson import Table

__all__ = [
    "PROGRESS_STREAM",
    "REPORT_PREFIX",
    "AccountLimits",
    "ClassProgress",
    "Classroom",
    "Seat",
    "ensure_progress_stream",
    "load_env_file",
    "read_progress",
    "report_check",
    "report_hint",
    "report_subjects",
]

#: The instructor's stream of progress reports (last report per student and exercise).
PROGRESS_STREAM = "CLASS_PROGRESS"
#: What a report says: a check passed, a check failed, a hint (or the solution) was shown.
VERDICTS = ("pass", "fail", "hint")
#: How :meth:`ClassProgress.table` shows each state, and the key printed under it.
_MARKS = {"pass": "ok", "fail": "x", "-": "."}
TABLE_KEY = "ok passed, x checked but not yet, . no check yet; hints: exercise:tier (S = solution)"
#: The largest report the stream stores (a report is a few hundred bytes of JSON).
MAX_REPORT_BYTES = 4096
#: A student publishes ``class.report.<exercise>``; the instructor sees ``...<student>.<ex>``.
REPORT_PREFIX = "class.report"
INSTRUCTOR = "INSTRUCTOR"


@dataclass(frozen=True)
class AccountLimits:
    """JetStream limits of one student account (nats-server ``jetstream { ... }``)."""

    max_mem: int = 64 * 1024 * 1024  # bytes (JSON has no size suffixes)
    max_file: int = 256 * 1024 * 1024
    max_streams: int = 40
    max_consumers: int = 200

    def config(self) -> dict[str, Any]:
        """The account's ``jetstream`` block."""
        return asdict(self)


@dataclass(frozen=True)
class Seat:
    """One student: account ``S01``, user ``s01`` and the password in their env file only."""

    user: str
    password: str = field(repr=False)

    @property
    def account(self) -> str:
        """The student's NATS account (its own JetStream namespace)."""
        return self.user.upper()


def _hash(password: str, rounds: int) -> str:
    import bcrypt  # the course's dependency: only `class init` hashes passwords

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


@dataclass
class Classroom:
    """A class: its students, the instructor, their limits; renders every config file."""

    students: list[Seat]
    instructor: Seat
    limits: AccountLimits = field(default_factory=AccountLimits)
    bcrypt_rounds: int = 10
    _hashes: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def generate(
        cls, students: int, *, limits: AccountLimits | None = None, bcrypt_rounds: int = 10
    ) -> Classroom:
        """A class of ``students`` seats with fresh random passwords (``secrets``)."""
        if not 1 <= students <= 999:
            raise ValueError(f"students must be between 1 and 999, not {students}")
        width = max(2, len(str(students)))
        seats = [Seat(f"s{i:0{width}d}", secrets.token_urlsafe(18)) for i in range(1, students + 1)]
        instructor = Seat("instructor", secrets.token_urlsafe(24))
        return cls(seats, instructor, limits or AccountLimits(), bcrypt_rounds)

    def _hashed(self, seat: Seat) -> str:
        if seat.user not in self._hashes:
            self._hashes[seat.user] = _hash(seat.password, self.bcrypt_rounds)
        return self._hashes[seat.user]

    def accounts(self) -> dict[str, Any]:
        """The ``accounts`` block as data: one source for nats-server, Compose and Helm."""
        accounts: dict[str, Any] = {
            INSTRUCTOR: {
                "jetstream": "enabled",
                "users": [
                    {"user": self.instructor.user, "password": self._hashed(self.instructor)}
                ],
                "exports": [{"service": f"{REPORT_PREFIX}.*.*.*"}],
            }
        }
        for seat in self.students:
            accounts[seat.account] = {
                "jetstream": self.limits.config(),
                "users": [
                    {
                        "user": seat.user,
                        "password": self._hashed(seat),
                        # Reports go out through the import; nobody reads the class's reports.
                        "permissions": {"subscribe": {"deny": [f"{REPORT_PREFIX}.>"]}},
                    }
                ],
                "imports": [
                    {
                        "service": {
                            "account": INSTRUCTOR,
                            "subject": f"{REPORT_PREFIX}.{seat.user}.*.*",
                        },
                        "to": f"{REPORT_PREFIX}.*.*",
                    }
                ],
            }
        return accounts

    def accounts_conf(self) -> str:
        """``accounts.conf``: nats-server reads JSON, so the block is rendered as JSON."""
        return "accounts: " + json.dumps(self.accounts(), indent=2) + "\n"

    @staticmethod
    def server_conf(store_dir: str = "/data/jetstream") -> str:
        """A whole server configuration for Docker: ports, monitoring, JetStream, accounts."""
        return (
            "# edalab class server (generated by `edalab class init`)\n"
            "listen: 0.0.0.0:4222\n"
            "http: 0.0.0.0:8222\n"
            f"jetstream {{\n  store_dir: {json.dumps(store_dir)}\n}}\n"
            "include ./accounts.conf\n"
        )

    def helm_values(self, *, replicas: int = 3) -> dict[str, Any]:
        """Values for the official NATS Helm chart (nats-io/k8s, chart ``nats`` 1.x)."""
        return {
            "config": {
                "cluster": {"enabled": replicas > 1, "replicas": replicas},
                "jetstream": {
                    "enabled": True,
                    "fileStore": {"pvc": {"size": "10Gi"}},
                },
                "merge": {"accounts": self.accounts()},
            }
        }

    def env_file(self, seat: Seat, url: str) -> str:
        """A student's (or the instructor's) credentials, in the NATS CLI's variable names."""
        lines = [
            f"# edalab class credentials for {seat.user}: keep private (mode 0600)",
            # The seat logs in with its own user and password: a user, password or token in
            # the URL given (the instructor's, say) must not reach a student's file.
            f"NATS_URL={without_credentials(url)}",
            f"NATS_USER={seat.user}",
            f"NATS_PASSWORD={seat.password}",
            "EDALAB_CLASS=1",
        ]
        return "\n".join(lines) + "\n"

    def write(self, out: Path | str, *, url: str = "nats://127.0.0.1:4222") -> list[Path]:
        """Write every file of the class into ``out``; return their paths."""
        import yaml  # type: ignore[import-untyped]  # PyYAML comes with the workbook (jupyter)

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        files = {
            "accounts.conf": self.accounts_conf(),
            "nats-server.conf": self.server_conf(),
            "helm-values.yaml": yaml.safe_dump(self.helm_values(), sort_keys=False),
            "instructor.env": self.env_file(self.instructor, url),
        }
        for seat in self.students:
            files[f"students/{seat.user}.env"] = self.env_file(seat, url)
        for name, text in files.items():
            write_private(out / name, text)
            written.append(out / name)
        host, port = server_address(url.split(",")[0])
        roster = {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "students": [s.user for s in self.students],
            "limits": asdict(self.limits),
            "url": without_credentials(url),
            # `edalab server start --config <dir>/accounts.conf` listens where students look.
            "host": host,
            "port": port,
        }
        (out / "class.json").write_text(json.dumps(roster, indent=2) + "\n")
        written.append(out / "class.json")
        return written


def load_env_file(path: Path | str) -> dict[str, str]:
    """Read a ``KEY=value`` credentials file (comments and blank lines skipped).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s01.env"
    >>> _ = p.write_text("# c\\nNATS_USER=s01\\n")
    >>> load_env_file(p)
    {'NATS_USER': 's01'}
    """
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def in_class_mode() -> bool:
    """Whether this process is a student's in class mode (``EDALAB_CLASS=1``)."""
    from .._discovery import class_mode

    return class_mode()


async def report_check(
    js: JetStreamContext | None,
    exercise: str,
    passed: bool,
    message: str,
    *,
    timeout: float = 2.0,
) -> str | None:
    """Report one check to the instructor; ``None`` when acknowledged, else why not.

    The report is stored by the instructor's ``CLASS_PROGRESS`` stream (through the
    account's service import), which acknowledges it like any JetStream publish. With
    ``js=None`` it goes over a connection of its own to the class server the environment
    names (``NATS_URL`` and the student's credentials): a notebook whose check ran on a
    lesson server of its own still reports to the class.
    """
    body = {"exercise": exercise, "passed": passed, "message": message[:300]}
    return await _send(js, exercise, "pass" if passed else "fail", body, timeout)


async def report_hint(
    exercise: str, tier: int, *, solution: bool = False, timeout: float = 2.0
) -> str | None:
    """Report that a student was shown hint ``tier`` (or the solution) of ``exercise``.

    Like :func:`report_check` with ``js=None``: ``None`` when the instructor's stream
    acknowledged it, else why not. The stream keeps the last hint report per student
    and exercise, so it says how far each student needed to go.
    """
    body = {"exercise": exercise, "tier": tier, "solution": solution}
    return await _send(None, exercise, "hint", body, timeout)


async def _send(
    js: JetStreamContext | None,
    exercise: str,
    verdict: str,
    fields: dict[str, Any],
    timeout: float,
) -> str | None:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    body = json.dumps({**fields, "at": at}).encode()
    subject = f"{REPORT_PREFIX}.{exercise}.{verdict}"
    try:
        if js is not None:
            await js.publish(subject, body, timeout=timeout)
            return None
        from .._connection import connect

        nc = await connect(timeout=timeout)
        try:
            await nc.jetstream().publish(subject, body, timeout=timeout)
        finally:
            await nc.close()
    except nats.js.errors.NoStreamResponseError:
        return (
            "the class's progress stream does not take this report yet: ask your instructor "
            "to run `edalab class progress` (it creates the stream, or adds new exercises)"
        )
    except Exception as err:  # the check's verdict stands; the learner is told
        return f"{type(err).__name__}: {err}".rstrip(": ")
    return None


def report_subjects() -> list[str]:
    """What ``CLASS_PROGRESS`` captures: every student, the course's exercises and verdicts.

    >>> "class.report.*.03.pass" in report_subjects()
    True
    >>> any("junk" in s for s in report_subjects())
    False
    """
    from edalab.course.exercises import EXERCISES

    keys = sorted(EXERCISES)
    return [f"{REPORT_PREFIX}.*.{ex}.{verdict}" for ex in keys for verdict in VERDICTS]


async def ensure_progress_stream(js: JetStreamContext) -> None:
    """Create ``CLASS_PROGRESS`` (the last report per student, exercise and verdict), or
    bring one made before (by an older course, say) to the course's subjects."""
    try:
        await ensure_stream(
            js,
            PROGRESS_STREAM,
            report_subjects(),
            max_msgs_per_subject=1,
            max_msg_size=MAX_REPORT_BYTES,
            storage=StorageType.FILE,
        )
    except (EdalabError, nats.errors.Error) as err:
        raise EdalabError(f"cannot set up {PROGRESS_STREAM}: {err}") from err


@dataclass
class ClassProgress:
    """Students x exercises: the last report of each (``None`` where none came yet).

    ``hints`` holds the last hint report per student and exercise (how far they went).
    """

    students: list[str]
    exercises: list[str]
    cells: dict[tuple[str, str], dict[str, Any]]
    hints: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def state(self, student: str, exercise: str) -> str:
        """``pass``, ``fail`` or ``-`` (no report yet)."""
        report = self.cells.get((student, exercise))
        if report is None:
            return "-"
        return "pass" if report.get("passed") else "fail"

    def hint(self, student: str, exercise: str) -> str:
        """How much help a student was shown: ``""``, ``"1"``..``"3"`` or ``"solution"``."""
        report = self.hints.get((student, exercise))
        if report is None:
            return ""
        return "solution" if report.get("solution") else str(report.get("tier", ""))

    def table(self) -> Table:
        """A text table: one row per student, one column per exercise, then their hints.

        A cell is ``ok`` (passed), ``x`` (checked, not yet) or ``.`` (no check yet): two
        characters at most, so twenty-odd exercises fit a terminal's width
        (:data:`TABLE_KEY` says so under the table).
        """
        rows = []
        for student in self.students:
            states = [self.state(student, ex) for ex in self.exercises]
            helped = [(ex, self.hint(student, ex)) for ex in self.exercises]
            shown = " ".join(f"{ex}:{'S' if h == 'solution' else h}" for ex, h in helped if h)
            marks = [_MARKS[state] for state in states]
            rows.append([student, *marks, str(states.count("pass")), shown or "-"])
        return Table(["student", *self.exercises, "passed", "hints"], rows, gap=1)

    def as_json(self) -> dict[str, Any]:
        """What the instructor's web page reads."""
        return {
            "students": self.students,
            "exercises": self.exercises,
            "cells": {f"{s}/{e}": self.state(s, e) for s in self.students for e in self.exercises},
            "messages": {f"{s}/{e}": r.get("message", "") for (s, e), r in self.cells.items()},
            "hints": {f"{s}/{e}": self.hint(s, e) for (s, e) in self.hints},
        }


Cells = dict[tuple[str, str], dict[str, Any]]


def _fold(cells: Cells, hints: Cells, subject: str, data: bytes | None) -> None:
    """Fold one stored report (``class.report.<student>.<exercise>.<verdict>``) in."""
    student, exercise, verdict = subject.split(".")[2:5]
    try:
        report = json.loads(data or b"{}")
    except ValueError:
        report = None
    if verdict == "hint":
        if isinstance(report, dict):
            hints[(student, exercise)] = report
        return
    _keep(cells, student, exercise, report)


async def read_progress(
    js: JetStreamContext, students: list[str], exercises: list[str], *, timeout: float = 5.0
) -> ClassProgress:
    """Read the last report of every student and exercise from ``CLASS_PROGRESS``."""
    cells: Cells = {}
    hints: Cells = {}
    info = await js.stream_info(PROGRESS_STREAM, subjects_filter=f"{REPORT_PREFIX}.>")
    for subject in sorted(info.state.subjects or {}):
        msg = await asyncio.wait_for(js.get_last_msg(PROGRESS_STREAM, subject), timeout)
        _fold(cells, hints, subject, msg.data)
    seen = sorted({e for _, e in cells} - set(exercises))
    return ClassProgress(students, exercises + seen, cells, hints)


def _keep(cells: Cells, student: str, exercise: str, report: Any) -> None:
    """Record a report; a pass is never replaced by a later failure."""
    if not isinstance(report, dict):
        report = {"passed": False, "message": "an unreadable report"}
    earlier = cells.get((student, exercise))
    if earlier is None or not earlier.get("passed") or report.get("passed"):
        cells[(student, exercise)] = report


def roster(class_dir: Path | str) -> Mapping[str, Any]:
    """The class's ``class.json`` (students, limits, URL)."""
    path = Path(class_dir) / "class.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise EdalabError(f"no class in {path.parent}: run `edalab class init` ({err})") from None
    return data


class ClassWatcher:
    """The instructor's live view: an ordered consumer folding ``CLASS_PROGRESS`` reports.

    A read model like any other: it replays the stream from the start, then applies
    each new report as it arrives. ``changed`` is set on every report, so a terminal
    view redraws when something happened instead of polling.

        watcher = ClassWatcher(js, roster["students"], exercises)
        await watcher.start()
        watcher.progress().table()
    """

    def __init__(self, js: JetStreamContext, students: list[str], exercises: list[str]) -> None:
        self.js = js
        self.students = list(students)
        self.exercises = list(exercises)
        self.cells: Cells = {}
        self.hints: Cells = {}
        self.reports = 0
        self.changed = asyncio.Event()
        self._sub: Any = None

    async def start(self) -> None:
        """Subscribe (ordered, from the first report) and keep folding in the background."""
        await ensure_progress_stream(self.js)
        self._sub = await self.js.subscribe(
            f"{REPORT_PREFIX}.>", stream=PROGRESS_STREAM, ordered_consumer=True, cb=self._apply
        )

    async def _apply(self, msg: Any) -> None:
        _fold(self.cells, self.hints, msg.subject, msg.data)
        self.reports += 1
        self.changed.set()

    async def stop(self) -> None:
        """Stop watching."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    def progress(self) -> ClassProgress:
        """The table as it stands now."""
        seen = sorted({e for _, e in self.cells} - set(self.exercises))
        return ClassProgress(
            self.students, self.exercises + seen, dict(self.cells), dict(self.hints)
        )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edalab class progress</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: center; }
td.pass { background: #c8f0c8; } td.fail { background: #f6c9c9; } td.none { color: #999; }
</style></head>
<body><h1>edalab class progress</h1>
<p id="status">loading...</p>
<table id="progress"></table>
<script>
async function refresh() {
  const r = await fetch("progress.json", {cache: "no-store"});
  const p = await r.json();
  const t = document.getElementById("progress");
  let html = "<tr><th>student</th>" + p.exercises.map(e => `<th>${e}</th>`).join("") +
             "<th>passed</th></tr>";
  for (const s of p.students) {
    let passed = 0, row = `<tr><th>${s}</th>`;
    for (const e of p.exercises) {
      const st = p.cells[`${s}/${e}`];
      if (st === "pass") passed++;
      const cls = st === "pass" ? "pass" : st === "fail" ? "fail" : "none";
      const tip = (p.messages[`${s}/${e}`] || "").replace(/"/g, "&quot;");
      const h = p.hints[`${s}/${e}`] || "";
      const said = h === "solution" ? "solution" : "hint " + h;
      const help = h ? `<br><small data-hint="${s}/${e}">${said}</small>` : "";
      row += `<td class="${cls}" title="${tip}" data-cell="${s}/${e}">${st}${help}</td>`;
    }
    html += row + `<td data-passed="${s}">${passed}</td></tr>`;
  }
  t.innerHTML = html;
  document.getElementById("status").textContent =
    `${p.reports} reports, updated ${new Date().toLocaleTimeString()}`;
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""


def serve_progress(watcher: ClassWatcher, port: int = 0, host: str = "127.0.0.1") -> Any:
    """Serve the live table on ``http://host:port/`` (a thread); returns the HTTP server.

    The page fetches ``progress.json`` every second; the JSON is the watcher's state.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/progress.json"):
                body = json.dumps({**watcher.progress().as_json(), "reports": watcher.reports})
                self._send(200, "application/json", body.encode())
            elif self.path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="class-progress").start()
    return server
