"""Event versioning: a model per version, upcasters, and a compatibility check.

Notebook ``08_versioning`` teaches both strategies from the seed tutorial: a
``version`` field in the envelope, and a version suffix on the subject
(``user.created.v2``). Either way a handler should see one shape, the newest.
A :class:`SchemaRegistry` knows each version's pydantic model and how to turn
version *n* into *n + 1*; it upcasts chains (v1 → v2 → v3) and rejects versions it
does not know with :class:`~edalab.UnknownVersionError`::

    registry = SchemaRegistry()
    registry.register("user.created", 1, UserCreatedV1)
    registry.register("user.created", 2, UserCreatedV2)

    @registry.upcaster("user.created", 1)
    def split_name(data: dict) -> dict:            # v1 -> v2
        first, _, last = data.pop("name").partition(" ")
        return {**data, "first_name": first, "last_name": last}

    registry.upcast(old_event).version             # 2

:func:`compare_models` lists the changes between two versions of a model and
which of them break consumers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ._errors import PayloadError, UnknownVersionError, UpcastError
from ._events import Event
from ._subjects import split_version

__all__ = ["Compatibility", "SchemaRegistry", "Upcaster", "compare_models", "version_of"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
F = TypeVar("F", bound=Upcaster)


def version_of(event: Event, subject: str | None = None) -> int:
    """The event's version: the subject's ``.vN`` suffix when there is one, else ``event.version``.

    >>> from edalab import EventFactory
    >>> version_of(EventFactory()("user.created"), "user.created.v2")
    2
    """
    if subject:
        _, suffix = split_version(subject)
        if suffix is not None:
            return suffix
    return event.version


class SchemaRegistry:
    """Models per ``(event type, version)`` and upcasters from each version to the next."""

    def __init__(self) -> None:
        self._models: dict[str, dict[int, type[BaseModel]]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, version: int, model: type[BaseModel]) -> None:
        """Declare the payload model of ``event_type`` at ``version``."""
        if version < 1:
            raise ValueError(f"versions start at 1, not {version}")
        self._models.setdefault(event_type, {})[version] = model

    def upcaster(self, event_type: str, from_version: int) -> Callable[[F], F]:
        """Decorator: the function turns a ``from_version`` payload into ``from_version + 1``."""

        def decorate(fn: F) -> F:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return decorate

    def versions(self, event_type: str) -> list[int]:
        """The registered versions of ``event_type``, oldest first."""
        return sorted(self._models.get(event_type, {}))

    def latest(self, event_type: str) -> int:
        """The newest registered version (raises UnknownVersionError when there is none)."""
        known = self.versions(event_type)
        if not known:
            raise UnknownVersionError(event_type, 0, [])
        return known[-1]

    def model(self, event_type: str, version: int) -> type[BaseModel]:
        """The model of one version."""
        try:
            return self._models[event_type][version]
        except KeyError:
            raise UnknownVersionError(event_type, version, self.versions(event_type)) from None

    def upcast(self, event: Event, *, subject: str | None = None) -> Event:
        """Return ``event`` at the newest version, its data validated by that version's model.

        The version comes from :func:`version_of`. Raises UnknownVersionError for a
        version with no registered model (a future version, say), and UpcastError
        when a step has no upcaster or the upcaster's output does not validate.
        """
        version = version_of(event, subject)
        model = self.model(event.type, version)
        data = event.payload(model).model_dump(mode="json")
        latest = self.latest(event.type)
        while version < latest:
            step = self._upcasters.get((event.type, version))
            if step is None:
                raise UpcastError(event.type, version, f"no upcaster to version {version + 1}")
            try:
                data = step(dict(data))
                data = (
                    self.model(event.type, version + 1).model_validate(data).model_dump(mode="json")
                )
            except UnknownVersionError:
                raise UpcastError(
                    event.type, version, f"no model for version {version + 1}"
                ) from None
            except Exception as err:
                raise UpcastError(event.type, version, f"{type(err).__name__}: {err}") from None
            version += 1
        return event.model_copy(update={"data": data, "version": version})

    def parse(self, event: Event, *, subject: str | None = None) -> BaseModel:
        """The newest model instance for ``event``'s payload."""
        newest = self.upcast(event, subject=subject)
        try:
            return self.model(event.type, newest.version).model_validate(newest.data)
        except Exception as err:  # pragma: no cover - upcast already validated it
            raise PayloadError(str(err), event_id=event.id, model=event.type) from None


@dataclass
class Compatibility:
    """The result of :func:`compare_models`."""

    breaking: list[str] = field(default_factory=list)
    safe: list[str] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        """True when no change breaks consumers."""
        return not self.breaking

    def __repr__(self) -> str:
        lines = [f"compatible: {self.compatible}"]
        lines += [f"  BREAKING  {b}" for b in self.breaking]
        lines += [f"  safe      {s}" for s in self.safe]
        return "\n".join(lines)


def _type_name(info: FieldInfo) -> str:
    ann = info.annotation
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")


def compare_models(old: type[BaseModel], new: type[BaseModel]) -> Compatibility:
    """Compare two versions of a payload model.

    Breaking: a removed field (old readers expect it), a changed type, a new required
    field or one that became required (old events lack it). Safe: a new optional
    field, a required field that became optional.

        >>> class V1(BaseModel):
        ...     name: str
        >>> class V2(BaseModel):
        ...     name: str
        ...     email: str
        >>> compare_models(V1, V2).breaking
        ["new required field 'email'"]
    """
    result = Compatibility()
    before, after = old.model_fields, new.model_fields
    for name, info in before.items():
        if name not in after:
            result.breaking.append(f"removed field {name!r}")
            continue
        now = after[name]
        if _type_name(info) != _type_name(now):
            result.breaking.append(
                f"field {name!r} changed type {_type_name(info)} -> {_type_name(now)}"
            )
        if not info.is_required() and now.is_required():
            result.breaking.append(f"field {name!r} became required")
        elif info.is_required() and not now.is_required():
            result.safe.append(f"field {name!r} became optional")
    for name, info in after.items():
        if name in before:
            continue
        if info.is_required():
            result.breaking.append(f"new required field {name!r}")
        else:
            result.safe.append(f"new optional field {name!r}")
    return result
