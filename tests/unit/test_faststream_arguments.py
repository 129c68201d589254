"""edalab.faststream's pieces refuse, when built, what would fail on every message."""

from __future__ import annotations

import pytest

from edalab.faststream import IdempotencyGuard


def test_a_guard_on_a_key_value_bucket_is_refused_when_built() -> None:
    """A KeyValue (or anything not a ProcessedIds or a name) raises at once, naming the fix.

    Before, the guard accepted it and failed each delivery inside the consume scope, where
    Failures took the error for a bug and retried every message until max_deliver.
    """

    class KeyValue:  # what `await js.key_value("charges")` gives a notebook
        pass

    with pytest.raises(TypeError, match=r"not a KeyValue: pass ProcessedIds\(kv\)"):
        IdempotencyGuard(KeyValue())  # type: ignore[arg-type]
