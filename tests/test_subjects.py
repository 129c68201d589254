"""Subject building, validation and wildcard matching (checked against the server)."""

from __future__ import annotations

import asyncio
import re

import pytest

from edalab import (
    StreamConfigConflict,
    SubjectError,
    ensure_stream,
    matches,
    overlaps,
    split_version,
    subject,
    validate_subject,
)


def test_builds_domain_event_type_subjects() -> None:
    """Tokens join with dots; a version becomes a `.vN` suffix."""
    assert subject("user", "created") == "user.created"
    assert subject("user", "profile", "updated") == "user.profile.updated"
    assert subject("user", "created", version=2) == "user.created.v2"


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("", "cannot be empty"),
        (".user.created", "leading dot"),
        ("user.created.", "trailing dot"),
        ("user..created", "empty token at position 2"),
        ("user created", "whitespace"),
        ("user.\tcreated", "whitespace"),
        ("user.*", "wildcard '*' is not allowed"),
        ("user.>", "wildcard '>' is not allowed"),
    ],
)
def test_rejects_bad_subjects_with_the_reason(bad: str, fragment: str) -> None:
    """Each broken subject raises SubjectError that names the subject and the rule."""
    with pytest.raises(SubjectError, match=re.escape(fragment)) as info:
        validate_subject(bad)
    assert info.value.subject == bad
    assert repr(bad) in str(info.value)


def test_wildcards_allowed_only_where_asked_and_gt_only_last() -> None:
    """Filters may use wildcards, but '>' must end the subject."""
    assert validate_subject("user.*.updated", wildcards=True) == "user.*.updated"
    with pytest.raises(SubjectError, match="must be the last token"):
        validate_subject("user.>.x", wildcards=True)


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "*", ">"])
def test_builder_rejects_bad_tokens(bad: str) -> None:
    """The builder refuses tokens that would change the subject's shape."""
    with pytest.raises(SubjectError):
        subject("user", bad)


@pytest.mark.parametrize("version", [0, -1, True, "2"])
def test_builder_rejects_bad_versions(version: object) -> None:
    """Versions are positive integers."""
    with pytest.raises(SubjectError, match="version"):
        subject("user", "created", version=version)  # type: ignore[arg-type]


def test_split_version() -> None:
    """Only a trailing `vN` token is a version; a lone `v2` is not."""
    assert split_version("user.created.v12") == ("user.created", 12)
    assert split_version("user.created") == ("user.created", None)
    assert split_version("v2") == ("v2", None)
    assert split_version("user.v0") == ("user.v0", None)


PATTERNS = ["user.*", "user.>", "*.created", "user.*.updated", ">", "user.created", "*.*.*"]
SUBJECTS = ["user", "user.created", "user.profile.updated", "order.created", "user.a.b.c"]


async def test_matches_agrees_with_the_server(nc) -> None:  # type: ignore[no-untyped-def]
    """For every pattern, matches() selects exactly the subjects the server delivers."""
    for i, pattern in enumerate(PATTERNS):
        prefix = f"m{i}"
        got: asyncio.Queue[str] = asyncio.Queue()

        async def cb(msg, prefix=prefix, got=got):  # type: ignore[no-untyped-def]
            await got.put(msg.subject[len(prefix) + 1 :])

        sub = await nc.subscribe(f"{prefix}.{pattern}", cb=cb)
        for s in SUBJECTS:
            await nc.publish(f"{prefix}.{s}", b"")
        await nc.publish(f"{prefix}.user.created", b"", reply="end")  # marker, also a match
        await nc.flush()
        seen = []
        marker_expected = matches(pattern, "user.created")
        want = [s for s in SUBJECTS if matches(pattern, s)]
        expected = len(want) + (1 if marker_expected else 0)
        for _ in range(expected):
            seen.append(await asyncio.wait_for(got.get(), 2))
        await nc.flush()
        assert got.empty(), f"{pattern}: the server delivered more than matches() predicts"
        await sub.unsubscribe()
        assert sorted(set(seen)) == sorted(set(want)), pattern


def test_matches_rejects_a_wildcard_subject() -> None:
    """A wildcard in the literal side is a mistake, not a match."""
    with pytest.raises(SubjectError):
        matches("user.*", "user.*")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("user.*", "user.created", True),
        ("user.>", "*.created", True),
        ("user.created.>", "user.created", False),
        ("user.*", "order.*", False),
        ("a.*.c", "a.b.*", True),
        ("a.*", "a.*.c", False),
    ],
)
async def test_overlaps_agrees_with_the_server(js, token, a, b, expected) -> None:  # type: ignore[no-untyped-def]
    """Two streams can coexist exactly when overlaps() says their subjects are disjoint."""
    assert overlaps(a, b) is expected
    first = f"{token}_a"
    await ensure_stream(js, first, [f"{token}.{a}"])
    try:
        if expected:
            with pytest.raises(StreamConfigConflict, match="overlap") as info:
                await ensure_stream(js, f"{token}_b", [f"{token}.{b}"])
            assert first in str(info.value)
        else:
            await ensure_stream(js, f"{token}_b", [f"{token}.{b}"])
            await js.delete_stream(f"{token}_b")
    finally:
        await js.delete_stream(first)
