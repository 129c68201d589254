"""The checker of exercise 14 (notebook 14_ordering_and_backpressure).

The task: SHIPMENTS in 4 partitions, one in-order consumer each.
"""

from __future__ import annotations

import contextlib

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext

from edalab import matches

from ._common import consumer_filters
from ._core import _drained, _floor, _NotYet, _require, _settled, _stream

_SHIP_PARTITIONS = 4


#: The check's own shipment keys. Under the server's FNV-1a hash (getHashPartition,
#: server/subject_transform.go) two of them fall in each of 4 partitions, whether the key
#: alone ({{partition(4,1)}}) or the whole subject ({{partition(4)}}) is hashed.
_SHIP_PROBES = tuple(f"edalab-probe-{i:02d}" for i in range(8))


_SHIP_HINT = "map shipment.* to shipment.{{partition(4,1)}}.{{wildcard(1)}}"


async def _stored_as(js: JetStreamContext) -> dict[str, set[str]]:
    """Publish each probe key twice; where SHIPMENTS stored it (the probes are deleted again)."""
    where: dict[str, set[str]] = {}
    seqs: list[int] = []
    try:
        for key in _SHIP_PROBES + _SHIP_PROBES:
            ack = await js.publish(f"shipment.{key}", b"{}", stream="SHIPMENTS", timeout=5)
            seqs.append(ack.seq)
            stored = (await js.get_msg("SHIPMENTS", ack.seq)).subject or ""
            where.setdefault(key, set()).add(stored)
    except nats.errors.NoRespondersError:
        raise _NotYet(
            f"no stream stores shipment.{_SHIP_PROBES[0]}: give SHIPMENTS the subjects shipment.*"
        ) from None
    except nats.js.errors.APIError as err:
        raise _NotYet(f"SHIPMENTS refused a shipment ({err.description})") from None
    finally:
        for seq in seqs:  # the learner's stream keeps only the learner's shipments
            with contextlib.suppress(nats.errors.Error):
                await js.delete_msg("SHIPMENTS", seq)
    return where


def _routed(where: dict[str, str], filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """``{consumer: probe keys it receives}``; fails if a key reaches no consumer or two."""
    got: dict[str, list[str]] = {name: [] for name in filters}
    for key, subject in where.items():
        mine = [n for n, fs in filters.items() if any(matches(f, subject) for f in fs)]
        _require(
            len(mine) == 1,
            f"shipment.{key} was stored as {subject}, which "
            + (f"{len(mine)} consumers {mine} receive" if mine else "no consumer receives")
            + f"; expected exactly one: give each ship-N one partition, {_SHIP_HINT}",
        )
        got[mine[0]].append(key)
    return got


async def checker(js: JetStreamContext) -> str:
    """Where the server stores the check's own keys decides, not the transform's text.

    Timing: each consumer's plain acks are given 2 s to land (``_settled``).
    """
    await _stream(js, "SHIPMENTS")
    where = await _stored_as(js)
    moved = {k: sorted(v) for k, v in where.items() if len(v) > 1}
    _require(
        not moved,
        "the same key was stored on different subjects "
        + ", ".join(f"shipment.{k} as {' and '.join(v)}" for k, v in list(moved.items())[:2])
        + f"; expected one partition per key, always the same: {_SHIP_HINT}",
    )
    stored = {key: subjects.pop() for key, subjects in where.items()}
    same = [k for k, subject in stored.items() if subject == f"shipment.{k}"]
    _require(
        not same,
        f"SHIPMENTS stored shipment.{same[0] if same else ''} unchanged; expected "
        f"shipment.<partition>.<key>: {_SHIP_HINT} (the stream's subject_transform)",
    )
    filters: dict[str, list[str]] = {}
    acked = 0
    for p in range(_SHIP_PARTITIONS):
        consumer = await _settled(js, "SHIPMENTS", f"ship-{p}")
        _require(
            consumer.config.max_ack_pending == 1,
            f"ship-{p} has max_ack_pending={consumer.config.max_ack_pending}; expected 1, so "
            "that each partition is processed in order",
        )
        _drained(consumer)
        acked += _floor(consumer)
        filters[f"ship-{p}"] = consumer_filters(consumer.config) or [">"]
    _require(
        acked > 0,
        "none of ship-0..ship-3 has acknowledged a shipment yet: publish a few shipments "
        "and let each consumer process its partition",
    )
    got = _routed(stored, filters)
    idle = [name for name, keys in got.items() if not keys]
    _require(
        not idle,
        f"none of the {len(_SHIP_PROBES)} probe keys reached {', '.join(idle)}; they were "
        f"stored as {', '.join(sorted({s.replace(k, '<key>') for k, s in stored.items()}))}; "
        f"expected 4 partitions, one consumer each: {_SHIP_HINT}",
    )
    return (
        f"{len(_SHIP_PROBES)} probe keys, each published twice, stayed in one partition "
        "each and reached exactly one of the 4 consumers; every consumer got some"
    )
