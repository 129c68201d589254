"""Headless Chromium for the real-browser tests (Debian's, driven by Playwright).

No browser download: Playwright drives ``/usr/bin/chromium``. A test that needs it calls
:func:`require_browser`, which skips when Chromium or Playwright is missing, unless
``EDALAB_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No background traffic: this machine's network is closed, and nothing may leave it.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> str:
    """The Chromium executable, or skip (fail under ``EDALAB_REQUIRE_BROWSER=1``)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed"
    else:
        if CHROMIUM:
            return CHROMIUM
        reason = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("EDALAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required but {reason}")
    pytest.skip(reason)


def launch(playwright: Any) -> Any:
    """Start headless Chromium from a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=require_browser(), args=FLAGS)
