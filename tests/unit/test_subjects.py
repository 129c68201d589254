"""Subject building, validation and wildcard matching (tests/server/test_subjects_live.py checks
matching against the server)."""

from __future__ import annotations

import re

import pytest

from edalab import SubjectError, matches, split_version, subject, validate_subject


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
        subject("user", "created", version=version)


def test_split_version() -> None:
    """Only a trailing `vN` token is a version; a lone `v2` is not."""
    assert split_version("user.created.v12") == ("user.created", 12)
    assert split_version("user.created") == ("user.created", None)
    assert split_version("v2") == ("v2", None)
    assert split_version("user.v0") == ("user.v0", None)


def test_matches_rejects_a_wildcard_subject() -> None:
    """A wildcard in the literal side is a mistake, not a match."""
    with pytest.raises(SubjectError):
        matches("user.*", "user.*")
