"""Subject naming: build, validate and match NATS subjects.

The course's convention (notebook ``02_subject_naming``) is ``domain.event_type``
(``user.created``), finer where consumers need to filter (``user.profile.updated``),
with an optional version suffix (``user.created.v2``, notebook ``08_versioning``).

    >>> subject("user", "profile", "updated")
    'user.profile.updated'
    >>> subject("user", "created", version=2)
    'user.created.v2'
    >>> matches("user.*.updated", "user.profile.updated")
    True
    >>> split_version("user.created.v2")
    ('user.created', 2)

Matching follows the server's rules: ``*`` stands for exactly one token and ``>``
for one or more tokens at the end.
"""

from __future__ import annotations

import re

from ._errors import SubjectError

__all__ = [
    "matches",
    "overlaps",
    "split_version",
    "subject",
    "validate_subject",
    "validate_token",
]

_VERSION_TOKEN = re.compile(r"^v([1-9][0-9]*)$")
_WHITESPACE = re.compile(r"\s")


def validate_token(token: str, *, subject: str | None = None) -> str:
    """Check one literal token (no dots, no wildcards, no whitespace) and return it.

    >>> validate_token("profile")
    'profile'
    """
    where = subject if subject is not None else token
    if not isinstance(token, str):
        raise SubjectError(str(where), f"token {token!r} is not a string")
    if token == "":
        raise SubjectError(where, "empty token")
    if "." in token:
        raise SubjectError(where, f"token {token!r} contains a dot; pass tokens separately")
    if _WHITESPACE.search(token):
        raise SubjectError(where, f"token {token!r} contains whitespace")
    if token in ("*", ">"):
        raise SubjectError(where, f"wildcard {token!r} is not allowed here")
    return token


def validate_subject(value: str, *, wildcards: bool = False) -> str:
    """Check a whole subject and return it unchanged.

    With ``wildcards=True`` (stream subjects, consumer filters, subscriptions) the
    tokens ``*`` and ``>`` are allowed, ``>`` only as the last token.

    >>> validate_subject("user.created")
    'user.created'
    >>> validate_subject("user.>", wildcards=True)
    'user.>'
    """
    if not isinstance(value, str):
        raise SubjectError(str(value), "a subject must be a string")
    if value == "":
        raise SubjectError(value, "a subject cannot be empty")
    if value.startswith("."):
        raise SubjectError(value, "leading dot (empty first token)")
    if value.endswith("."):
        raise SubjectError(value, "trailing dot (empty last token)")
    if _WHITESPACE.search(value):
        raise SubjectError(value, "contains whitespace")
    tokens = value.split(".")
    for i, tok in enumerate(tokens):
        if tok == "":
            raise SubjectError(value, f"empty token at position {i + 1} (two dots in a row)")
        if tok in ("*", ">"):
            if not wildcards:
                raise SubjectError(
                    value, f"wildcard {tok!r} is not allowed in a subject you publish to"
                )
            if tok == ">" and i != len(tokens) - 1:
                raise SubjectError(value, "'>' must be the last token")
    return value


def subject(domain: str, *parts: str, version: int | None = None) -> str:
    """Build ``domain.part1.part2[.vN]`` from literal tokens.

    >>> subject("order", "placed")
    'order.placed'
    """
    tokens = [validate_token(t, subject=".".join([domain, *parts])) for t in (domain, *parts)]
    if len(tokens) < 2:
        raise SubjectError(domain, "expected at least a domain and an event type")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise SubjectError(
                ".".join(tokens), f"version must be an integer >= 1, not {version!r}"
            )
        tokens.append(f"v{version}")
    return ".".join(tokens)


def split_version(value: str) -> tuple[str, int | None]:
    """Split a trailing ``.vN`` suffix off a subject.

    >>> split_version("user.created")
    ('user.created', None)
    """
    validate_subject(value)
    base, _, last = value.rpartition(".")
    found = _VERSION_TOKEN.match(last)
    if base and found:
        return base, int(found.group(1))
    return value, None


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` (a literal subject) matches ``pattern``, as the server decides.

    >>> matches("user.>", "user")
    False
    """
    validate_subject(pattern, wildcards=True)
    validate_subject(value)
    pat = pattern.split(".")
    sub = value.split(".")
    for i, tok in enumerate(pat):
        if tok == ">":
            return len(sub) > i
        if i >= len(sub):
            return False
        if tok != "*" and tok != sub[i]:
            return False
    return len(sub) == len(pat)


def overlaps(a: str, b: str) -> bool:
    """Whether some literal subject matches both patterns ``a`` and ``b``.

    >>> overlaps("user.*", "user.created")
    True
    >>> overlaps("user.*", "order.>")
    False
    """
    validate_subject(a, wildcards=True)
    validate_subject(b, wildcards=True)
    ta, tb = a.split("."), b.split(".")
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != "*" and y != "*" and x != y:
            return False
    return True
