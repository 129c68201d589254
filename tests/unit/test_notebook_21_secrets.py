"""Notebook 21's stored outputs show no seed and no password (lesson 21)."""

from __future__ import annotations

import json
import re
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "21_many_teams.ipynb"
#: An nkey seed: S, the key type, then base32 (58 characters in all).
SEED = re.compile(r"S[OAUNCPX][A-Z2-7]{50,}")
PASSWORDS = ("ann-pw", "amy-pw", "bob-pw", "auth-pw")


def _outputs() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    parts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            parts += out.get("text", [])
            parts += out.get("data", {}).get("text/plain", [])
            parts += [out.get("evalue", ""), *out.get("traceback", [])]
    return "".join(parts)


def test_outputs_hold_no_seed_and_no_password() -> None:
    """Seeds, signing keys and the lesson's passwords never reach a stored output."""
    shown = _outputs()
    assert "seed hidden" in shown  # the outputs were read: an NKey's repr is among them
    assert not SEED.findall(shown)
    assert not [p for p in PASSWORDS if p in shown]
