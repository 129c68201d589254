"""Print pyproject's dependency floors as exact pins, one per line (for `make compat`).

Every requirement of ``[project].dependencies`` and of the given extras must state a
floor (``>=X``); the compatibility venv installs exactly ``name==X`` for each, so CI
runs the unit tests on the oldest versions the project claims to support.

    python tools/floors.py test     # nats-py==2.16 ... pytest-asyncio==0.26 ...
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FLOOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)$")


def floors(extras: list[str]) -> list[str]:
    """``name==floor`` for the core dependencies and the named extras, in file order."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    pins = []
    for requirement in requirements:
        match = _FLOOR.match(requirement.split(";")[0])
        assert match, requirement
        name, spec = match.groups()
        floor = re.search(r">=\s*([^,\s]+)", spec) or re.search(r"==\s*([^,\s]+)", spec)
        if not floor:
            raise SystemExit(f"pyproject.toml: {requirement!r} states no floor (>=X)")
        pins.append(f"{name}=={floor.group(1)}")
    return pins


if __name__ == "__main__":
    print("\n".join(floors(sys.argv[1:])))
