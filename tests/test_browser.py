"""A learner's view: JupyterLab in headless Chromium runs notebook 00 through the UI.

Uses Debian's ``chromium`` (no browser download) driven by the Python ``playwright``
package. Skipped when Chromium is missing, unless ``EDALAB_REQUIRE_BROWSER=1`` (set by
``.ci/run``, which installs Chromium). Leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edalab.server import free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "edalab-browser-test"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _require_browser() -> str:
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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on a free port, serving a copy of notebook 00 with its outputs cleared."""
    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    (workdir / "00_start_here.ipynb").write_text(json.dumps(nb))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    env["EDALAB_STATE_DIR"] = str(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={workdir}",
         "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=(log_file := (tmp_path / "lab.log").open("w")),
    )  # fmt: skip
    log_file.close()  # the child has its own handle
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2):
                break
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = (tmp_path / "lab.log").read_text()[-2000:]
                pytest.fail(f"JupyterLab did not start:\n{log}")
            # Readiness is a port opening in another process: poll it, bounded above.
            proc_wait(proc, 0.2)
    try:
        yield base
    finally:
        request = urllib.request.Request(f"{base}/api/shutdown?token={TOKEN}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)


def proc_wait(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait for the process to exit, at most ``seconds`` (an early exit ends the wait)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=seconds)


def run_all_cells(page: Any) -> None:
    """Run > Run All Cells, as a person would; again if the notebook was not ready yet.

    Right after opening, the command can still be disabled while the kernel connects;
    a person would simply click again, so the test does too (three times at most).
    """
    started = ".jp-InputPrompt:has-text('[*]'), .jp-InputPrompt:has-text('[1]')"
    for _ in range(3):
        page.click(".jp-Notebook .jp-Cell")  # focus the notebook, as a click on it would
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click(".lm-Menu-item:has-text('Run All Cells')")
        try:
            page.wait_for_selector(started, timeout=15_000)
            return
        except Exception:  # playwright's TimeoutError: not started, try again
            page.keyboard.press("Escape")
    pytest.fail("Run All Cells never started the notebook")


def test_start_here_runs_in_jupyterlab(lab: str) -> None:
    """Open 00_start_here, Run All Cells from the menu, see the first message arrive."""
    executable = _require_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab}/lab/tree/00_start_here.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)  # fmt: skip
            run_all_cells(page)
            page.wait_for_selector(".jp-OutputArea-output:has-text('Hello, events!')",
                                   timeout=90_000)  # fmt: skip
            page.wait_for_selector(
                ".jp-OutputArea-output:has-text('the message was published before anyone')",
                timeout=60_000,
            )
            page.wait_for_selector(".jp-OutputArea-output:has-text('embedded')", timeout=10_000)
            no_news = page.locator(".jp-toast-button:has-text('No')")
            if no_news.count():
                no_news.first.click()
            page.locator(
                ".jp-OutputArea-output:has-text('Hello, events!')"
            ).scroll_into_view_if_needed()
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-00_start_here.png"), full_page=False)
            browser.close()
    assert (ARTIFACTS / "browser-00_start_here.png").stat().st_size > 10_000
