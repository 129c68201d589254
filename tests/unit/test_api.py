"""The public API: ``edalab`` (plus ``edalab.testing`` and ``edalab.course``), the rest private.

Like httpx's ``tests/test_exported_members.py``: each public namespace's ``__all__`` is
exactly what it exports, in order; and the library's import graph has the shape the
README promises (no circle, no import of the course, one module that talks to nats-py
beyond its public client API).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest

import edalab
import edalab._errors

LIBRARY = Path(edalab.__file__).parent
PUBLIC = ["edalab", "edalab.testing", "edalab.course", "edalab.faststream"]
ADAPTER = "edalab._nats"


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def exported(module: ModuleType) -> list[str]:
    """The public names a module holds: not a submodule, not imported from elsewhere."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, ModuleType):
            continue
        origin = getattr(value, "__module__", None)
        if origin is None or origin == "edalab" or origin.startswith("edalab."):
            names.append(name)
    return sorted(names, key=_isort_key)


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_what_the_namespace_exports(name: str) -> None:
    """``__all__`` lists every public name, and only those, sorted as ruff sorts it."""
    if name == "edalab.faststream":  # an extra: the floors' venv (make compat) lacks it
        pytest.importorskip("faststream")
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=_isort_key)
    assert module.__all__ == exported(module)


def test_every_library_module_is_private() -> None:
    """Besides ``testing`` (the pytest plugin) and ``faststream`` (an extra), all are ``_name``."""
    public = {
        p.stem
        for p in LIBRARY.glob("*.py")
        if not p.stem.startswith("_") and p.stem not in ("testing", "faststream")
    }
    assert public == set()


def test_every_error_is_exported_and_derives_from_the_base() -> None:
    """Each exception class in edalab._errors is public and an EdalabError."""
    for name, obj in vars(edalab._errors).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, Exception)
            and obj.__module__ == "edalab._errors"
        ):
            assert issubclass(obj, edalab.EdalabError), name
            assert name in edalab.__all__, name


def test_what_needs_an_edalab_jetstream_says_so_in_its_signature() -> None:
    """mypy, not a runtime NotAnEdalabJetStream, catches a plain nats-py context."""
    from typing import get_type_hints

    needs = [
        edalab.publish_events,
        edalab.ingest_events,
        edalab.EventConsumer.create,
        edalab.EventConsumer.__init__,
        edalab.DeadLetters.__init__,
    ]
    for function in needs:
        assert get_type_hints(function, localns=vars(edalab))["js"] is edalab.JetStream, (
            function.__qualname__
        )
    assert get_type_hints(edalab.connect)["return"] is edalab.Connection
    assert get_type_hints(edalab.Connection.jetstream)["return"] is edalab.JetStream


# --- the import graph --------------------------------------------------------------------


def _library_modules() -> dict[str, ast.Module]:
    """Every module of the library (``src/edalab`` without the ``course`` subpackage)."""
    out = {}
    for path in sorted(LIBRARY.glob("*.py")):
        name = "edalab" if path.stem == "__init__" else f"edalab.{path.stem}"
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in ``tree``, at any depth (lazy ones count too)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: every library module sits in the edalab package
                module = "edalab" + (f".{module}" if module else "")
            found.append((module, [alias.name for alias in node.names]))
    return found


def _edges(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for target, names in _imports(tree):
            if target == "edalab":  # `from edalab import _x` is the module; a name is __init__
                subs = {f"edalab.{n}" for n in names if f"edalab.{n}" in modules}
                graph[name] |= subs or {"edalab"}
            elif target in modules:
                graph[name].add(target)
    return graph


def test_the_library_import_graph_has_no_cycle() -> None:
    """No module of the library imports one that (directly or not) imports it back."""
    graph = _edges(_library_modules())
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_the_library_does_not_import_the_course() -> None:
    """The course is built on the library, never the other way round."""
    for name, tree in _library_modules().items():
        for target, names in _imports(tree):
            assert not target.startswith("edalab.course"), name
            assert not (target == "edalab" and "course" in names), name


# What counts as "nats-py's public client API": the client and its values, used as
# documented (``nats.connect``; ``Client``, ``Msg``, ``Subscription``, ``JetStreamContext``
# and ``KeyValue`` as types and through their methods; the ``nats.js.api`` dataclasses;
# the exception classes of ``nats.errors`` and ``nats.js.errors``). Beyond it: subclassing
# a nats-py class, nats-py's module constants, and writing or reading JetStream's wire
# protocol by hand (a ``$JS.API`` subject, an ack body such as ``+TERM``, a ``Status``
# header). JetStream's documented headers (``Nats-Msg-Id``, ``Nats-Expected-Last-...``)
# and advisory subjects (``$JS.EVENT.ADVISORY...``) are the server's API for users.
# Only the adapter may do those.
_PUBLIC_NATS = {
    "nats": {"connect"},
    "nats.aio.client": {"Client"},
    "nats.aio.msg": {"Msg"},
    "nats.aio.subscription": {"Subscription"},
    "nats.js.client": {"JetStreamContext"},
    "nats.js.kv": {"KeyValue"},
}
_WIRE = ("$JS.API", "CONSUMER.MSG.NEXT", "$JS.ACK", "+TERM", "+ACK", "+NAK", "+WPI")


def _beyond_public_nats(tree: ast.Module) -> list[str]:
    """What in ``tree`` touches nats-py beyond its public client API (see above)."""
    found = []
    nats_names: set[str] = set()
    for target, names in _imports(tree):
        if target == "nats" or target.startswith("nats."):
            if target in ("nats.errors", "nats.js.errors", "nats.js.api") and not names:
                continue  # `import nats.errors` / `import nats.js.errors`: public classes
            if target == "nats.js.api":
                extra = [n for n in names if not n[0].isupper() or n.isupper()]
            elif target in ("nats.errors", "nats.js.errors") or (target == "nats" and not names):
                extra = []
            else:
                extra = [n for n in names if n not in _PUBLIC_NATS.get(target, set())]
            found += [f"from {target} import {n}" for n in extra]
            nats_names |= set(names)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                text = ast.unparse(base)
                if text in nats_names or text.startswith("nats."):
                    found.append(f"class {node.name}({text})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            if value == "Status" or any(wire in value for wire in _WIRE):
                found.append(repr(value))
    return found


def test_exactly_one_module_talks_to_nats_py_beyond_its_public_api() -> None:
    """The adapter subclasses nats-py and speaks JetStream's wire protocol; nothing else does."""
    beyond = {
        name: found
        for name, tree in _library_modules().items()
        if (found := _beyond_public_nats(tree))
    }
    assert list(beyond) == [ADAPTER], beyond


def test_the_readme_module_table_is_the_layout() -> None:
    """README's module table names every library module, and no module that is gone."""
    import re

    readme = (LIBRARY.parents[1] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `edalab.")]
    named = {m for row in rows for m in re.findall(r"`(edalab\.[a-z_]+)`", row.split("|")[1])}
    modules = {name for name in _library_modules() if name != "edalab"}
    assert named == modules
