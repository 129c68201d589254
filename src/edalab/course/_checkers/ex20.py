"""The checker of exercise 20 (notebook 20_topology_and_recovery).

The task: REPORTS: both regions' sales under report., read-only.

Judged on the live server: new sales are published in both regions (one a level deeper
than the lesson's, ``eu.sale.probe.<token>``), and each must arrive in the learner's
stream once, under ``report.<its subject>`` (the check waits for as many copies of each
as the learner's sources let in, so a region sourced twice is seen twice); then a
publish into the stream must fail.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import secrets
from collections import Counter
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import StreamInfo
from nats.js.client import JetStreamContext

from edalab import matches, wait_for

from ._core import _NotYet, _require, _stream

#: The streams the exercise gathers, and the region each holds.
ORIGINS = {"SALES_EU": "eu", "SALES_US": "us"}
PREFIX = "report."
_WAIT = 5.0  # seconds for the copies to arrive: a source copies within milliseconds


def _name_of(reports: Any) -> str:
    if isinstance(reports, str):
        return reports
    _require(
        not inspect.isawaitable(reports),
        "reports is a coroutine, not the stream's info: put await in front "
        "(reports = await js.add_stream(...)) and run the cell again",
    )
    # The StreamInfo add_stream returns, or the StreamConfig given to it.
    config = getattr(reports, "config", reports)
    name = getattr(config, "name", None)
    _require(
        isinstance(name, str) and bool(name),
        f"check('20', js, reports) takes the StreamInfo that js.add_stream returned (or the "
        f"stream's name); got {type(reports).__name__}",
    )
    return str(name)


async def _stream_or_hint(js: JetStreamContext, name: str) -> StreamInfo:
    try:
        info: StreamInfo = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        raise _NotYet(
            f"there is no stream {name!r} yet: create it with sources=[StreamSource(name="
            "'SALES_EU', subject_transforms=[...]), StreamSource(name='SALES_US', ...)] (a "
            "stream that captures eu.sale.> itself is refused: those subjects belong to "
            "SALES_EU, error 10065 'subjects overlap')"
        ) from None
    return info


async def _publish_probes(js: JetStreamContext, token: str) -> dict[bytes, str]:
    """New sales in both regions: ``{payload: subject}``."""
    probes: dict[bytes, str] = {}
    for stream, region in ORIGINS.items():
        for subject in (f"{region}.sale.placed", f"{region}.sale.probe.{token}"):
            data = json.dumps({"probe": token, "subject": subject}).encode()
            await js.publish(subject, data, stream=stream, timeout=5)
            probes[data] = subject
    return probes


def _copies_due(info: StreamInfo, subject: str) -> int:
    """How many copies of a sale on ``subject`` the configuration lets in (at least one).

    A region sourced twice with overlapping patterns copies a sale twice; waiting for
    the first copy alone would judge before the second arrived.
    """
    origin = next(o for o, region in ORIGINS.items() if subject.startswith(region + "."))
    due = 0
    for source in info.config.sources or []:
        if source.name != origin:
            continue
        srcs = [t.src for t in source.subject_transforms or []] or [source.filter_subject or ">"]
        with contextlib.suppress(ValueError):  # a pattern the server took but we cannot read
            due += any(matches(pattern, subject) for pattern in srcs if pattern)
    return max(due, 1)


async def _copies(
    js: JetStreamContext, name: str, after: int, probes: dict[bytes, str], info: StreamInfo
) -> list[tuple[bytes, str]]:
    """``(payload, subject)`` of every probe that reached ``name`` past sequence ``after``
    (waiting for as many copies of each as the sources let in)."""
    due = {data: _copies_due(info, subject) for data, subject in probes.items()}
    seen: list[tuple[bytes, str]] = []
    next_seq = [after + 1]

    async def all_arrived() -> bool:
        last = (await js.stream_info(name)).state.last_seq
        for seq in range(next_seq[0], last + 1):
            try:
                msg = await js.get_msg(name, seq)
            except nats.js.errors.NotFoundError:
                continue
            if msg.data in probes:
                seen.append((msg.data or b"", msg.subject or ""))
        next_seq[0] = max(next_seq[0], last + 1)
        counts = Counter(data for data, _ in seen)
        return all(counts[data] >= n for data, n in due.items())

    with contextlib.suppress(TimeoutError):  # judged by the caller, on what did arrive
        await wait_for(all_arrived, timeout=_WAIT, what=f"the new sales to reach {name}")
    return seen


def _patterns(info: StreamInfo) -> str:
    """Each source with the ``src`` of its transforms (or its filter), as a learner wrote them."""
    out = []
    for source in info.config.sources or []:
        srcs = [t.src for t in source.subject_transforms or []] or [source.filter_subject or ">"]
        out.append(f"{source.name} takes {', '.join(srcs)}")
    return "; ".join(out)


def _recreated(info: StreamInfo, origins: dict[str, StreamInfo]) -> list[str]:
    """The origins created after the learner's stream (a re-run of the sources cell)."""
    if info.created is None:
        return []
    return [o for o, oi in origins.items() if oi.created is not None and oi.created > info.created]


def _judge(
    name: str,
    info: StreamInfo,
    probes: dict[bytes, str],
    seen: list[tuple[bytes, str]],
    recreated: list[str],
) -> None:
    counts = Counter(data for data, _ in seen)
    missing = sorted(probes[d] for d in probes if not counts[d])
    if missing:
        what = f"{len(missing)} of the {len(probes)} new sales never reached {name}: "
        what += ", ".join(missing)
        _require(
            not recreated,
            what + f"; {' and '.join(recreated)} "
            f"{'were' if len(recreated) > 1 else 'was'} created again after {name} (a cell "
            f"re-run?), and {name} resumes each copy after the sequence it had reached in "
            f"the old stream, skipping the new one's first sales: delete it "
            f"(await js.delete_stream({name!r})) and create it again",
        )
        if info.mirror is not None:
            raise _NotYet(
                what + f"; {name} is a mirror of {info.mirror.name}, and a mirror copies one "
                "stream (all of it, unless filtered): gather SALES_EU and SALES_US with "
                "sources=[...], one StreamSource each"
            )
        sourced = sorted(s.name for s in info.config.sources or [])
        unsourced = [origin for origin in ORIGINS if origin not in sourced]
        if unsourced:
            raise _NotYet(
                what + f"; {name} sources {', '.join(sourced) or 'nothing'}: add a "
                f"StreamSource for {' and '.join(unsourced)} (one per region)"
            )
        raise _NotYet(
            what + f"; {name} sources both regions, but a source copies only the subjects "
            f"its transforms' src match: {_patterns(info)}; let each src take every subject "
            "of its own region (eu.sale.> for SALES_EU, with '>', not only one more token "
            "with '*')"
        )
    wrong = sorted(
        {
            f"{subject} (from {probes[data]})"
            for data, subject in seen
            if subject != PREFIX + probes[data]
        }
    )
    _require(
        not wrong,
        f"the new sales reached {name} as {', '.join(wrong)}; expected "
        f"{PREFIX}<their subject>, e.g. {PREFIX}eu.sale.placed: give each source a "
        "subject_transforms=[SubjectTransform(src=..., dest=...)] that puts report. in front",
    )
    twice = sorted(probes[d] for d, n in counts.items() if n > 1)
    _require(
        not twice,
        f"{', '.join(twice)} reached {name} more than once: a region is sourced twice "
        f"with patterns that overlap ({_patterns(info)}); keep one StreamSource per region",
    )


async def checker(js: JetStreamContext, reports: Any) -> str:
    """New sales in both regions reach the learner's stream once each, renamed; it takes
    no publish of its own. Timing: at most 5 s waiting for the copies."""
    name = _name_of(reports)
    origins: dict[str, StreamInfo] = {}
    for origin in ORIGINS:
        try:
            origins[origin] = await _stream(js, origin)
        except _NotYet as missing:
            raise _NotYet(
                f"{missing} on the server js talks to: run the notebook's cells on sources "
                "first, and check with the js of lesson_server('20') (not js_hub, js_fresh...)"
            ) from None
    info = await _stream_or_hint(js, name)
    subjects = info.config.subjects or []
    _require(
        not subjects,
        f"{name} has subjects of its own ({', '.join(subjects)}), so anyone may publish into "
        "it: a read replica takes messages from its sources only; create it without subjects",
    )
    token = secrets.token_hex(4)
    probes = await _publish_probes(js, token)
    seen = await _copies(js, name, info.state.last_seq, probes, info)
    _judge(name, info, probes, seen, _recreated(info, origins))
    try:
        await js.publish(f"{PREFIX}eu.sale.placed", b"{}", stream=name, timeout=2)
    except (nats.errors.Error, TimeoutError):
        pass  # refused, or nothing captures the subject: what a read replica does
    else:
        raise _NotYet(f"{name} accepted a publish on {PREFIX}eu.sale.placed: make it read-only")
    return (
        f"all {len(probes)} new sales of SALES_EU and SALES_US reached {name} once each, "
        f"under {PREFIX}<subject>, and a publish into {name} found nothing to take it"
    )
