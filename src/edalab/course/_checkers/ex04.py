"""The checker of exercise 04 (notebook 04_stream_policies).

The task: PRICES keeps the last price per symbol.
"""

from __future__ import annotations

import contextlib
import secrets
import string

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext

from edalab import matches

from ._core import _all_of, _NotYet, _require, _stream

_PRICE_SYMBOLS = ("AAPL", "MSFT", "NVDA")


async def _probe_last_value(js: JetStreamContext, stream: str, probe: str) -> None:
    """Publish two values for a key of the checker's own; the stream must keep only the second."""
    try:
        for value in (b"1", b"2"):
            await js.publish(probe, value, stream=stream)
        kept = (await js.stream_info(stream, subjects_filter=probe)).state.subjects or {}
        last = await js.get_last_msg(stream, probe)
    except nats.js.errors.APIError as err:
        raise _NotYet(
            f"{stream} refused an update of a key ({err.description}): a last-value stream must "
            "replace the old value, not refuse the new one (discard old)"
        ) from None
    finally:
        with contextlib.suppress(nats.errors.Error):
            await js.purge_stream(stream, subject=probe)
    _require(
        kept.get(probe) == 1 and last.data == b"2",
        f"after two updates of {probe}, {stream} kept {kept.get(probe, 0)} "
        "messages for it: set max_msgs_per_subject=1",
    )


async def checker(js: JetStreamContext) -> str:
    info = await _stream(js, "PRICES")
    subjects = info.config.subjects or []
    # A symbol nobody listed, new at each check: the stream must capture it and keep its last.
    probe = "price.CHECK" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    counts = (await js.stream_info("PRICES", subjects_filter="price.*")).state.subjects or {}
    missing = [x for x in _PRICE_SYMBOLS if f"price.{x}" not in counts]
    extra = {k: v for k, v in sorted(counts.items()) if v > 1}
    published = info.state.last_seq
    with _all_of() as want:
        want(
            any(matches(s, probe) for s in subjects),
            f"stream PRICES captures {subjects}, so a price for a new symbol such as "
            f"{probe} would not be stored: capture price.* (one token, any symbol)",
        )
        want(not missing, f"PRICES has no price for {missing}: publish on price.<symbol>")
        want(
            not extra,
            f"PRICES keeps several prices per symbol {extra}: keep only the latest "
            "(max_msgs_per_subject=1)",
        )
        want(
            published >= 2 * len(_PRICE_SYMBOLS),
            f"only {published} prices were ever published to PRICES: publish at least two per "
            "symbol, so that newer prices replace older ones",
        )
    await _probe_last_value(js, "PRICES", probe)  # only now: each probe adds to last_seq
    return (
        "PRICES keeps one price per symbol, older prices were replaced, and a symbol of the "
        "check's own kept only its update"
    )
