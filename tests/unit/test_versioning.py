"""Versioned payloads: upcasting chains, unknown versions, compatibility."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from edalab import (
    EventFactory,
    SchemaRegistry,
    UnknownVersionError,
    UpcastError,
    compare_models,
)
from tests.internals import version_of
from tests.versions import V1, V2, V3


def registry() -> SchemaRegistry:
    reg = SchemaRegistry()
    reg.register("user.created", 1, V1)
    reg.register("user.created", 2, V2)
    reg.register("user.created", 3, V3)

    @reg.upcaster("user.created", 1)
    def split(data: dict) -> dict:
        first, _, last = data.pop("name").partition(" ")
        return {**data, "first_name": first, "last_name": last}

    @reg.upcaster("user.created", 2)
    def add_email(data: dict) -> dict:
        return {**data, "email": None}

    return reg


def test_upcasts_a_chain_to_the_newest() -> None:
    """A v1 event comes out as v3 with its data converted step by step."""
    old = EventFactory()("user.created", {"user_id": "u1", "name": "Ann Lee"})
    new = registry().upcast(old)
    assert new.version == 3
    assert new.data == {"user_id": "u1", "first_name": "Ann", "last_name": "Lee", "email": None}
    assert new.id == old.id


def test_subject_suffix_sets_the_version() -> None:
    """A `.v2` subject wins over the envelope's default version."""
    event = EventFactory()("user.created", {"user_id": "u", "first_name": "A", "last_name": "B"})
    assert version_of(event, "user.created.v2") == 2
    assert registry().upcast(event, subject="user.created.v2").version == 3


def test_future_version_is_a_typed_error() -> None:
    """A version nobody registered raises UnknownVersionError listing the known ones."""
    event = EventFactory()("user.created", {}, version=9)
    with pytest.raises(UnknownVersionError) as info:
        registry().upcast(event)
    assert info.value.version == 9 and info.value.known == [1, 2, 3]


def test_missing_upcaster_is_reported() -> None:
    """A gap in the chain names the version it cannot leave."""
    reg = SchemaRegistry()
    reg.register("a.b", 1, V1)
    reg.register("a.b", 2, V2)
    with pytest.raises(UpcastError, match="from version 1"):
        reg.upcast(EventFactory()("a.b", {"user_id": "u", "name": "x"}))


def test_compare_models_finds_breaking_changes() -> None:
    """Removed and retyped fields and new required fields break; new optional ones don't."""

    class Old(BaseModel):
        user_id: str
        age: int
        nick: str | None = None

    class New(BaseModel):
        user_id: str
        age: str
        email: str
        tags: list[str] = []

    result = compare_models(Old, New)
    assert not result.compatible
    assert sorted(result.breaking) == sorted(
        [
            "field 'age' changed type int -> str",
            "removed field 'nick'",
            "new required field 'email'",
        ]
    )
    assert result.safe == ["new optional field 'tags'"]
    assert compare_models(V2, V3).compatible
