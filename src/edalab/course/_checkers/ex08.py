"""The checker of exercise 08 (notebook 08_versioning).

The task: user.created v4, compatible, replayed.
"""

from __future__ import annotations

from typing import Any

from nats.js.client import JetStreamContext

from edalab import EdalabError, Event, SchemaRegistry, compare_models, stream_messages

from ._core import _all_of, _NotYet, _require, _stream


async def checker(js: JetStreamContext, registry: Any = None) -> str:

    _require(
        isinstance(registry, SchemaRegistry), "pass your SchemaRegistry: check('08', js, registry)"
    )
    assert isinstance(registry, SchemaRegistry)
    versions = registry.versions("user.created")
    _require(versions[-1:] == [4], f"user.created versions are {versions}; add version 4")
    _require(
        3 in versions,
        f"user.created versions are {versions}, without version 3 to compare version 4 "
        "with: run the lesson's registry cells again, then add version 4 to that registry",
    )
    v3, v4 = registry.model("user.created", 3), registry.model("user.created", 4)
    await _stream(js, "USERS")
    count = 0
    with _all_of() as want:
        added = sorted(set(v4.model_fields) - set(v3.model_fields))
        has_country = want(
            "country" in v4.model_fields,
            f"version 4's model adds {added or 'no field'} to version 3's "
            f"({', '.join(v3.model_fields)}): declare the new field, country: str = 'unknown'",
        )
        compat = compare_models(v3, v4)
        want(compat.compatible, f"v4 breaks v3 consumers: {'; '.join(compat.breaking)}")
        async for seq, raw in stream_messages(js, "USERS"):
            try:
                event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
            except EdalabError as err:
                raise _NotYet(f"USERS message {seq} is not an event: {err}") from None
            if event.type != "user.created" or event.version > 4:
                continue
            try:
                upcast = registry.upcast(event, subject=raw.subject)
            except EdalabError as err:
                said = " ".join(str(err).split("For further information")[0].split())
                raise _NotYet(
                    f"sequence {seq} (version {event.version}) does not replay as version 4: "
                    f"{said}; give every version below 4 an upcaster to the next "
                    "(@registry.upcaster('user.created', n)) and check again"
                ) from None
            _require(upcast.version == 4, f"sequence {seq} came out as version {upcast.version}")
            country = (upcast.data or {}).get("country") if has_country else ""
            _require(
                isinstance(country, str),
                f"sequence {seq} (version {event.version}) came out as version 4 with country "
                f"{country!r}: an old event does not know its country, so give it the "
                "exercise's default, country: str = 'unknown'",
            )
            count += 1
    return f"all {count} known-version user.created events replay as version 4"
