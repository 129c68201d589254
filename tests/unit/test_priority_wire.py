"""The priority-group wire details (ADR-42) that PriorityPuller sends and reads."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from edalab import Connection, ConsumerError, ensure_priority_consumer
from tests.internals import PriorityPull, pin_id_of, status_of


def _msg(headers: dict[str, str] | None) -> Msg:
    return Msg(None, subject="work.job", reply="", data=b"", headers=headers)  # type: ignore[arg-type]


def test_a_pull_names_its_group_and_only_the_fields_set() -> None:
    """group always; id, min_pending and min_ack_pending only when given."""
    assert PriorityPull("g").fields() == {"group": "g"}
    assert PriorityPull("g", id="PIN").fields() == {"group": "g", "id": "PIN"}
    both = PriorityPull("g", min_pending=50, min_ack_pending=10).fields()
    assert both == {"group": "g", "min_pending": 50, "min_ack_pending": 10}


def test_the_pin_id_comes_from_the_header() -> None:
    """A pinned_client delivery carries Nats-Pin-Id; other messages have no pin."""
    assert pin_id_of(_msg({"Nats-Pin-Id": "abc"})) == "abc"
    assert pin_id_of(_msg(None)) is None
    assert pin_id_of(_msg({"Nats-Msg-Id": "x"})) is None


def test_a_423_means_the_pin_is_lost() -> None:
    """Both 423 descriptions count as a lost pin; 408 and 400 do not."""
    for said in ("Nats-Pin-Id mismatch", "Nats-Wrong-Pin-Id"):
        status = status_of(_msg({"Status": "423", "Description": said}))
        assert status is not None and status.pin_lost
    for code in ("408", "400"):
        status = status_of(_msg({"Status": code, "Description": "x"}))
        assert status is not None and not status.pin_lost


async def test_an_older_server_is_refused_before_it_makes_a_plain_consumer() -> None:
    """A server before 2.11 would drop the priority fields and make a plain consumer: the
    helper refuses first (a connection not yet connected reports version 0.0.0)."""
    js = Connection().jetstream()
    with pytest.raises(ConsumerError, match=r"need nats-server 2\.11\+; this server is 0\.0\.0"):
        await ensure_priority_consumer(js, "S", "c", group="g")
