"""The live view in a real browser: JupyterLab in headless Chromium opens a notebook, opens
``view(js, "VIEWDEMO")``, then runs a cell that publishes and one that consumes with a nak;
the picture in the view's output changes (the stream's last sequence, the consumer's
delivered position, a redelivery counted) while the view's own cell is never run again.

Skipped without Chromium (see tests/chromium.py). Leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import (
    ARTIFACTS,
    _serve,
    open_notebook,
    run_cell,
    wait_for_output,
)
from tests.chromium import launch, require_browser

CELLS = [
    # 0: a server, a stream, a pull consumer
    "from edalab import connect, ensure_server\n"
    "from edalab.course import fresh_stream, view\n"
    "server = ensure_server()\n"
    "nc = await connect(server)\n"
    "js = nc.jetstream()\n"
    'await fresh_stream(js, "VIEWDEMO", ["viewdemo.>"])\n'
    'sub = await js.pull_subscribe("viewdemo.>", durable="worker", stream="VIEWDEMO")\n'
    '"ready"',
    # 1: the view, opened once
    'board = await view(js, "VIEWDEMO")\nboard',
    # 2: publish three
    'for i in range(3):\n    await js.publish("viewdemo.placed", str(i).encode())\n"published"',
    # 3: take all three, nak the first, ack the rest, take the first again (left unacked)
    "first, *rest = await sub.fetch(3, timeout=5)\n"
    "await first.nak()\n"
    "for msg in rest:\n"
    "    await msg.ack_sync()\n"
    "(again,) = await sub.fetch(1, timeout=5)\n"
    'f"delivered {again.metadata.num_delivered} times"',
    # 4: stop it
    'board.close()\n"closed"',
]


@pytest.fixture
def view_lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab serving a small notebook that opens a view and then works the stream."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"view-{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(CELLS)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    yield from _serve(tmp_path, {"view.ipynb": json.loads(json.dumps(nb))})


def _shown(page: Any, key: str) -> str | None:
    """The ``data-value`` of the live picture's part ``key`` (None when not drawn)."""
    value: str | None = page.evaluate(
        """key => {
            const el = document.querySelector(`.edalab-view [data-key="${key}"]`);
            return el ? el.getAttribute('data-value') : null;
        }""",
        key,
    )
    return value


def _wait_shown(page: Any, key: str, part: str, timeout: float = 15_000) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(
            """([key, part]) => {
                const el = document.querySelector(`.edalab-view [data-key="${key}"]`);
                return el !== null && (el.getAttribute('data-value') || '').includes(part);
            }""",
            arg=[key, part],
            timeout=timeout,
        )
    except PlaywrightTimeoutError:
        pytest.fail(
            f"the live picture never showed {part!r} at {key!r}; it shows {_shown(page, key)!r}"
        )


def _start(page: Any, cell: Any) -> None:
    """Run the first cell; again if the kernel was still connecting (as a person would)."""
    for _ in range(3):
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+Enter")
        try:
            cell.locator(".jp-InputPrompt:not(:has-text('[ ]'))").wait_for(timeout=15_000)
            return
        except Exception:  # playwright's TimeoutError: not started, try again
            page.keyboard.press("Escape")
    pytest.fail("the first cell never started")


def test_the_view_moves_while_other_cells_run(view_lab: str) -> None:
    """Publish, then consume with a nak: the picture follows without its cell running again."""
    require_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, view_lab, "view.ipynb")
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            _start(page, cells.nth(0))
            wait_for_output(page, cells.nth(0), "ready", after="[ ]:", timeout=90_000)
            run_cell(page, cells.nth(1))
            page.wait_for_selector(
                ".edalab-view svg", timeout=30_000
            )  # the widget, not the SVG fallback
            assert page.locator(".jp-RenderedSVG").count() == 0, (
                "the static SVG shows, not the widget"
            )
            _wait_shown(page, "status", "live")
            _wait_shown(page, "stream", "last_seq 0")
            view_prompt = cells.nth(1).locator(".jp-InputPrompt").inner_text()

            run_cell(page, cells.nth(2), "published")
            _wait_shown(page, "stream", "last_seq 3")
            _wait_shown(page, "worker:pending", "num_pending 3")
            assert _shown(page, "worker:delivered") is None, "nothing delivered yet"

            run_cell(page, cells.nth(3), "delivered 2 times")
            _wait_shown(page, "worker:delivered", "3")
            _wait_shown(page, "worker:redelivered", "num_redelivered 1")
            _wait_shown(page, "worker:redelivered", "deliveries 4")
            _wait_shown(page, "worker:in_flight", "0-3")  # seq 1 out again, 2 and 3 acked
            assert cells.nth(1).locator(".jp-InputPrompt").inner_text() == view_prompt

            run_cell(page, cells.nth(4), "closed")
            _wait_shown(page, "status", "closed")
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-view.png"), full_page=False)
            browser.close()
