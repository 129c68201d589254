"""The Event envelope: Go interoperability, typed payloads and decode errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from edalab import (
    Event,
    EventDecodeError,
    PayloadError,
    SubjectError,
    validate_subject,
)
from tests.internals import describe_validation_error

# Exactly what Go's encoding/json writes for the seed's struct
# (Data is a string; time.Time marshals as RFC 3339 with nanoseconds and an offset).
GO_JSON = (
    b'{"id":"123","type":"user.created",'
    b'"data":"{\\"user_id\\": \\"user123\\", \\"username\\": \\"testuser\\"}",'
    b'"timestamp":"2024-05-01T10:20:30.123456789+08:00"}'
)


class UserCreated(BaseModel):
    user_id: str
    username: str


def test_decodes_what_go_writes() -> None:
    """The seed's Go JSON decodes, keeping the offset, with nanoseconds cut to microseconds."""
    event = Event.from_json(GO_JSON)
    assert event.id == "123"
    assert event.type == "user.created"
    assert event.version == 1
    assert event.timestamp == datetime(
        2024, 5, 1, 10, 20, 30, 123456, tzinfo=timezone(timedelta(hours=8))
    )
    assert event.payload(UserCreated) == UserCreated(user_id="user123", username="testuser")


def test_decodes_go_utc_and_whole_seconds() -> None:
    """Go writes 'Z' for UTC and drops a zero fraction; both decode."""
    raw = b'{"id":"1","type":"a.b","data":"","timestamp":"2024-05-01T10:20:30Z"}'
    assert Event.from_json(raw).timestamp == datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)


def test_encodes_what_go_decodes() -> None:
    """With data_as_string the JSON has exactly the Go struct's fields and types."""
    event = Event.create("user.created", UserCreated(user_id="u1", username="ann"), id="e1")
    wire = json.loads(event.to_json(data_as_string=True))
    assert set(wire) >= {"id", "type", "data", "timestamp"}
    assert isinstance(wire["data"], str)
    assert json.loads(wire["data"]) == {"user_id": "u1", "username": "ann"}
    # Go's time.Time accepts RFC 3339: a 'T', seconds and a zone designator.
    assert datetime.fromisoformat(wire["timestamp"]).tzinfo is not None
    assert (
        Event.from_json(event.to_json(data_as_string=True)).payload(UserCreated).username == "ann"
    )


def test_typed_payload_round_trip() -> None:
    """A model or dict payload travels as a JSON object and reads back as the model."""
    event = Event.create("user.created", UserCreated(user_id="u1", username="ann"), id="e1")
    wire = json.loads(event.to_json())
    assert wire["data"] == {"user_id": "u1", "username": "ann"}
    back = Event.from_json(event.to_json())
    assert back.payload(UserCreated) == UserCreated(user_id="u1", username="ann")
    assert back.id == event.id and back.timestamp == event.timestamp


def test_created_events_are_utc_with_unique_ids() -> None:
    """Event.create stamps UTC now and a fresh id each time."""
    a, b = Event.create("a.b"), Event.create("a.b")
    assert a.id != b.id
    assert a.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "should be an object"),
        (b'{"type":"a.b","timestamp":"2024-01-01T00:00:00Z"}', "field 'id': Field required"),
        (b'{"id":"1","type":"a.b","timestamp":"2024-01-01T00:00:00"}', "field 'timestamp'"),
        (b'{"id":"1","type":"a.b","timestamp":"yesterday"}', "field 'timestamp'"),
        (b'{"id":"","type":"a.b","timestamp":"2024-01-01T00:00:00Z"}', "field 'id'"),
        (
            b'{"id":"1","type":"a.b","timestamp":"2024-01-01T00:00:00Z","version":0}',
            "field 'version'",
        ),
    ],
)
def test_malformed_json_names_subject_sequence_and_field(raw: bytes, fragment: str) -> None:
    """A bad message raises EventDecodeError with subject, sequence, reason and the raw bytes."""
    with pytest.raises(EventDecodeError) as info:
        Event.from_json(raw, subject="user.created", sequence=42)
    err = info.value
    assert fragment in err.reason
    assert err.subject == "user.created" and err.sequence == 42 and err.raw == raw
    assert "'user.created'" in str(err) and "stream sequence 42" in str(err)


def test_payload_errors_are_typed() -> None:
    """Data that is not JSON, or does not fit the model, raises PayloadError naming both."""
    with pytest.raises(PayloadError, match="not JSON"):
        Event.create("a.b", "{oops", id="e1").payload()
    with pytest.raises(PayloadError, match="'username'") as info:
        Event.create("a.b", {"user_id": "u"}, id="e2").payload(UserCreated)
    assert info.value.event_id == "e2" and info.value.model == "UserCreated"


@pytest.mark.parametrize("bad", ["user.*", "user.>", "user created", ".user", "user.", "a..b"])
def test_a_type_that_cannot_be_a_subject_is_refused_at_creation(bad: str) -> None:
    """Event.create raises the SubjectError a publish to that type would raise; Event(...)
    pydantic's ValidationError naming field 'type' and the same reason."""
    with pytest.raises(SubjectError) as expected:
        validate_subject(bad)
    with pytest.raises(SubjectError) as created:
        Event.create(bad, {})
    with pytest.raises(ValidationError) as built:
        Event(id="1", type=bad, timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    assert str(created.value) == str(expected.value)
    assert describe_validation_error(built.value) == f"field 'type': Value error, {expected.value}"


def test_a_decoded_event_keeps_a_type_that_is_no_subject() -> None:
    """What another producer stored stays readable: decoding does not check the type."""
    raw = b'{"id":"1","type":"User Created","timestamp":"2024-01-01T00:00:00Z"}'
    assert Event.from_json(raw).type == "User Created"
    assert Event.create("UserCreated").type == "UserCreated", "one token is a subject"
