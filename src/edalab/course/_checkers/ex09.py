"""The checker of exercise 09 (notebook 09_durability).

The task: LEDGER: 200 entries across a server crash, each stored once.
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from edalab import MSG_ID, EdalabError, Event, stream_messages

from ._core import _NotYet, _require, _stream


async def checker(js: JetStreamContext) -> str:

    info = await _stream(js, "LEDGER")
    storage = str(getattr(info.config.storage, "value", info.config.storage))
    _require(
        storage == "file",
        f"LEDGER uses {storage} storage; expected file storage, which survives a server "
        "crash: create it with storage='file' (fresh_stream's default)",
    )
    ids: dict[str, int] = {}
    by_n: dict[int, set[str]] = {}
    async for seq, raw in stream_messages(js, "LEDGER"):
        try:
            event = Event.from_json(raw.data or b"", subject=raw.subject, sequence=seq)
        except EdalabError as err:
            raise _NotYet(f"LEDGER message {seq} is not an event: {err}") from None
        msg_id = (raw.headers or {}).get(MSG_ID)
        _require(
            msg_id == event.id,
            f"LEDGER message {seq} (event {event.id}) carries Nats-Msg-Id {msg_id!r}; expected "
            "its event id, so that a retry of it is dropped (publish_events sets it)",
        )
        ids[event.id] = ids.get(event.id, 0) + 1
        if isinstance(event.data, dict) and isinstance(event.data.get("n"), int):
            by_n.setdefault(event.data["n"], set()).add(event.id)
    twice = sorted(i for i, n in ids.items() if n > 1)
    _require(
        not twice,
        f"LEDGER stores {len(twice)} events more than once (e.g. {twice[0] if twice else ''} "
        f"{ids[twice[0]] if twice else 0} times); expected each once: retry with the same "
        "Nats-Msg-Id, inside the stream's duplicate window",
    )
    renamed = sorted(n for n, names in by_n.items() if len(names) > 1)
    _require(
        not renamed,
        f"ledger entry n={renamed[0] if renamed else ''} is stored under "
        f"{len(by_n[renamed[0]]) if renamed else 0} event ids ({len(renamed)} entries like "
        "it); expected one: resend the same Event objects, not new ones made again",
    )
    missing = sorted(set(range(200)) - set(by_n))
    _require(
        not missing,
        f"LEDGER holds {len(by_n)} of the 200 ledger entries; missing n={missing[:5]}...; "
        "expected all 200: send everything not acknowledged again after the restart",
    )
    _require(len(ids) == 200, f"LEDGER holds {len(ids)} events; expected exactly the 200 entries")
    return "LEDGER holds each of the 200 entries exactly once, each with its Nats-Msg-Id"
