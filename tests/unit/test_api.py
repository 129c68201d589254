"""The public API in edalab/__init__.py."""

from __future__ import annotations

import edalab
from edalab import errors


def test_all_is_sorted_and_importable() -> None:
    """__all__ is sorted and every name in it exists."""
    assert edalab.__all__ == sorted(edalab.__all__)
    for name in edalab.__all__:
        assert hasattr(edalab, name), name


def test_every_error_is_exported_and_derives_from_the_base() -> None:
    """Each exception class in edalab.errors is public and an EdalabError."""
    for name in dir(errors):
        obj = getattr(errors, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == errors.__name__
        ):
            assert issubclass(obj, edalab.EdalabError), name
            assert name in edalab.__all__, name
