"""The checker of exercise 01 (notebook 01_event_structure).

The task: an OrderPlaced model that round-trips and refuses bad payloads.
"""

from __future__ import annotations

from typing import Any

from edalab import Event, PayloadError

from ._core import _NotYet, _require


async def checker(model: Any = None) -> str:
    from pydantic import BaseModel, ValidationError

    _require(
        isinstance(model, type) and issubclass(model, BaseModel),
        f"{model!r} is not a pydantic model class: class OrderPlaced(BaseModel), then "
        "check('01', OrderPlaced)",
    )
    assert isinstance(model, type)
    try:
        sent = model(order_id="o-9", amount_cents=1250)
    except ValidationError as err:
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise _NotYet(
            f"{model.__name__}(order_id='o-9', amount_cents=1250) fails ({said}): declare "
            "the fields order_id: str and amount_cents: int"
        ) from None
    back = Event.from_json(Event.create("order.placed", sent).to_json(data_as_string=True))
    read: Any = back.payload(model)
    _require(read == sent, f"sent {sent!r}, read back {read!r} after the Go-style round trip")
    wrong = {
        "amount_cents 'ten'": {"order_id": "o-2", "amount_cents": "ten"},
        "amount_cents 12.5": {"order_id": "o-2", "amount_cents": 12.5},
        "a missing order_id": {"amount_cents": 1250},
    }
    for what, data in wrong.items():
        try:
            accepted: Any = Event.create("order.placed", data).payload(model)
        except PayloadError:
            continue
        raise _NotYet(
            f"{model.__name__} accepted {what} (as {accepted!r}): declare order_id: str and "
            "amount_cents: int, both required, so a bad payload raises PayloadError"
        )
    return (
        f"{model.__name__} survives the Go-style round trip and refuses 'ten', 12.5 and a "
        "missing order_id"
    )
