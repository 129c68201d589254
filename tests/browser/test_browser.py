"""A learner's view: JupyterLab in headless Chromium runs notebook 00 through the UI, and
a student copy from an empty answer through a wrong one and a hint to a pass.

Uses Debian's ``chromium`` (no browser download) driven by the Python ``playwright``
package. Skipped when Chromium is missing, unless ``EDALAB_REQUIRE_BROWSER=1`` (set by
``.ci/run``, which installs Chromium). Leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edalab.testing import free_port
from tests.chromium import launch, require_browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "edalab-browser-test"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on a free port, serving a copy of notebook 00 with its outputs cleared."""
    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    yield from _serve(tmp_path, {"00_start_here.ipynb": nb})


@pytest.fixture
def student_lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab serving the student copy of notebook 02 (what `make student` writes)."""
    from edalab.course.workshop import student_copy

    nb = student_copy(json.loads((ROOT / "notebooks" / "02_subject_naming.ipynb").read_text()))
    yield from _serve(tmp_path, {"02_subject_naming.ipynb": nb})


def _serve(tmp_path: Path, notebooks: dict[str, Any]) -> Iterator[str]:
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    for name, nb in notebooks.items():
        (workdir / name).write_text(json.dumps(nb))
    # Every cell in the page, not only those scrolled into view (JupyterLab 4 windowing).
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = free_port()
    # The kernel's own embedded server, whatever the shell has set (a class env file too).
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_") and k != "EDALAB_CLASS"}
    env["EDALAB_STATE_DIR"] = str(tmp_path / "state")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "settings")
    env["PYTHONSTARTUP"] = str(ROOT / "src" / "edalab" / "course" / "startup.py")  # as make lab
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


def open_notebook(page: Any, lab: str, name: str) -> None:
    """Open notebook ``name`` in the JupyterLab at ``lab`` and wait until its kernel is idle."""
    page.goto(f"{lab}/lab/tree/{name}?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)


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


def write_cell(page: Any, cell: Any, source: str) -> None:
    """Put ``source`` in ``cell`` (a ``.jp-CodeCell`` locator) in place of what it holds.

    Select all, then paste-like input: typed key by key, each new line would also get the
    editor's automatic indentation on top of the source's own.
    """
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(source)


def run_cell(page: Any, cell: Any, shows: str = "", timeout: float = 60_000) -> str:
    """Run ``cell`` (Ctrl+Enter) and wait until it has run again and its output holds ``shows``.

    Returns the cell's output text.
    """
    before = cell.locator(".jp-InputPrompt").inner_text()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    return wait_for_output(page, cell, shows, after=before, timeout=timeout)


def wait_for_output(
    page: Any, cell: Any, shows: str, *, after: str | None = None, timeout: float = 60_000
) -> str:
    """Wait until ``cell`` has run (its prompt no longer ``after``) and its output holds ``shows``.

    Returns the cell's output text. A cell that never gets there fails the test with what
    it shows instead.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(
            """([cell, after, shows]) => {
                const prompt = cell.querySelector('.jp-InputPrompt').innerText;
                const output = cell.querySelector('.jp-OutputArea');
                return prompt !== after && /[0-9]/.test(prompt) && !prompt.includes('*')
                    && (output ? output.innerText : '').includes(shows);
            }""",
            arg=[cell.element_handle(), after, shows],
            timeout=timeout,
        )
    except PlaywrightTimeoutError:
        pytest.fail(
            f"the cell did not run and show {shows!r} within {timeout / 1000:.0f} s; it shows:\n"
            f"{cell.inner_text()[-2000:]}"
        )
    return str(cell.locator(".jp-OutputArea").inner_text())


def cells_with_errors(page: Any) -> list[int]:
    """Indices of the notebook's cells that show an error (or anything on stderr)."""
    found: list[int] = page.evaluate(
        """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].flatMap((cell, i) =>
            cell.querySelector(".jp-OutputArea-output[data-mime-type="
                + "'application/vnd.jupyter.stderr']") ? [i] : [])"""
    )
    return found


def test_start_here_runs_in_jupyterlab(lab: str) -> None:
    """Open 00_start_here, Run All Cells from the menu: the picture shows, a message arrives."""
    require_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, lab, "00_start_here.ipynb")
            run_all_cells(page)
            page.wait_for_selector(".jp-OutputArea-output:has-text('Hello, events!')",
                                   timeout=90_000)  # fmt: skip
            page.wait_for_selector(
                ".jp-OutputArea-output:has-text('the message was published before anyone')",
                timeout=60_000,
            )
            page.wait_for_selector(".jp-OutputArea-output:has-text('embedded')", timeout=10_000)
            picture = page.locator(".jp-RenderedSVG img").first  # the path of an event
            picture.wait_for(timeout=10_000)
            assert picture.evaluate("img => img.complete && img.naturalWidth > 0"), "no picture"
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


def test_a_student_answers_in_the_answer_cell_and_checks_twice(student_lab: str) -> None:
    """The student copy of 02: type into `# YOUR CODE HERE`, Run All, pass; check again, pass."""
    require_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    passed = ".jp-OutputArea-output:has-text('exercise 02 passed')"
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, student_lab, "02_subject_naming.ipynb")
            answer = page.locator(".jp-CodeCell:has-text('# YOUR CODE HERE')")
            answer.first.wait_for(timeout=60_000)
            assert answer.count() == 1, "the student copy has one answer cell"
            write_cell(page, answer, 'patterns = ["user.*.updated", "user.deleted"]')
            run_all_cells(page)
            page.wait_for_selector(passed, timeout=120_000)
            # The next attempt works too: nothing closed the connection the check uses.
            check_cell = page.locator(".jp-CodeCell").filter(has_text="await check(").last
            output = run_cell(page, check_cell, "exercise 02 passed")
            assert "Traceback" not in output
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-student-02.png"), full_page=False)
            browser.close()


def test_a_student_goes_from_not_yet_through_a_hint_to_a_pass(
    student_lab: str, tmp_path: Path
) -> None:
    """The student copy of 02 as a learner meets it, every verdict in the browser.

    Run All with the answer cell as shipped: the check says not yet, and no cell but
    those that teach an error shows one. A wrong answer (``user.>``, the usual first
    try): the check names what the server delivered and what the mailer did not want.
    ``hint("02")`` in a new cell: the first tier, only, recorded on this machine. The
    right answer: passed.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    from edalab.course.hints import HINTS
    from edalab.course.workshop import ANSWER_PROMPT, student_copy

    shipped = student_copy(json.loads((ROOT / "notebooks" / "02_subject_naming.ipynb").read_text()))
    teaching_errors = [
        i
        for i, cell in enumerate(shipped["cells"])
        if "raises-exception" in cell["metadata"].get("tags", [])
    ]
    [answer_at] = [i for i, c in enumerate(shipped["cells"]) if ANSWER_PROMPT in c["source"]]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, student_lab, "02_subject_naming.ipynb")
            answer = page.locator(".jp-Notebook .jp-Cell").nth(answer_at)  # what you type stays
            check_cell = page.locator(".jp-CodeCell").filter(has_text="await check(").last
            # 1. Run All, the answer cell as shipped.
            run_all_cells(page)
            first = wait_for_output(page, check_cell, "exercise 02 not yet")
            assert "Traceback" not in first and "Error" not in first, first
            page.locator(".jp-InputPrompt:has-text('*')").first.wait_for(
                state="detached", timeout=30_000
            )  # every cell has run
            errors = cells_with_errors(page)
            assert errors == teaching_errors, (
                f"errors in cells {errors}; only {teaching_errors} teach one: "
                + "\n".join(
                    page.locator(".jp-Notebook .jp-Cell").nth(i).inner_text()[-800:]
                    for i in sorted(set(errors) - set(teaching_errors))
                )
            )
            # 2. A wrong answer: what the server delivered, and what the mailer wants.
            write_cell(page, answer, 'patterns = ["user.>"]')
            run_cell(page, answer)
            wrong = " ".join(run_cell(page, check_cell, "subscribed to ['user.>']").split())
            assert "exercise 02 not yet" in wrong, wrong
            assert "the server delivered: user.profile.updated" in wrong, wrong
            assert (
                "not wanted user.created, user.profile.viewed, user.profile.photo.updated "
                "('>' matches one or more tokens"
            ) in wrong, wrong
            # 3. A hint, in a new cell under the check.
            check_cell.locator(".jp-InputPrompt").click()  # select the cell (command mode)
            page.keyboard.press("b")  # a new cell below
            page.keyboard.press("Enter")
            hint_cell = page.locator(".jp-Notebook .jp-Cell").nth(len(shipped["cells"]))
            write_cell(page, hint_cell, 'from edalab.course import hint\nhint("02")')
            shown = " ".join(run_cell(page, hint_cell, "hint 1 of 3").split())
            assert "1. a nudge: " + " ".join(HINTS["02"][0].split()) in shown, shown
            assert "2. the API to use" not in shown and "hint('02') again shows" in shown, shown
            journal = tmp_path / "state" / "hints.json"  # recorded, as a check is
            assert journal.exists(), "hint('02') left no record on this machine"
            assert json.loads(journal.read_text())["02"]["tier"] == 1, journal.read_text()
            # 4. The right answer.
            write_cell(page, answer, 'patterns = ["user.*.updated", "user.deleted"]')
            run_cell(page, answer)
            run_cell(page, check_cell, "exercise 02 passed")
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-student-02-path.png"), full_page=False)
            browser.close()
