"""The course book (`make book`): built offline from the committed notebooks, read in Chromium.

The book is built once per module with the `book` extra's venv (``.venv-book``, which
``make test`` creates), inside a network namespace without network when ``unshare -n``
works here (root on Linux), so the build is proven offline. The browser test uses Debian's
``chromium`` through Playwright, like tests/browser/test_browser.py: skipped when it is missing,
unless ``EDALAB_REQUIRE_BROWSER=1`` (CI), and every request that leaves ``file://`` fails.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from edalab.course.manifest import LESSONS
from edalab.course.primer import EVENT_PATH, GLOSSARY
from tests.chromium import launch, require_browser

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402

BOOK_PYTHON = Path(os.environ.get("EDALAB_BOOK_PYTHON", ROOT / ".venv-book" / "bin" / "python"))
REQUIRED = os.environ.get("EDALAB_REQUIRE_BROWSER") == "1"


def _offline_prefix() -> list[str]:
    """``unshare -n`` (a namespace with no network) when this machine allows it, else nothing."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book built into a temporary dist/book, with no network when that can be arranged."""
    if not BOOK_PYTHON.exists():
        reason = f"{BOOK_PYTHON} is missing (make book-install creates it)"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("book")
    done = subprocess.run(
        [*_offline_prefix(), str(BOOK_PYTHON), str(ROOT / "tools" / "build_book.py"),
         str(base / "book"), "--work", str(base / "work")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return base / "book"


class _Page(HTMLParser):
    """The links, image sources and element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (class, href)
        self.images: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append((a.get("class", ""), a["href"]))
        if tag == "img":
            self.images.append(a.get("src", ""))


def _page(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text())
    return parser


def _internal(href: str) -> bool:
    return not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", href)


def _stored_charts(notebook: str) -> int:
    """How many image outputs (charts, pictures) the committed notebook holds."""
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    return sum(
        bool({"image/png", "image/svg+xml"} & set(out.get("data", {})))
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
    )


def test_every_manifest_lesson_is_a_page_in_course_order_with_previous_and_next(
    book: Path,
) -> None:
    """The landing page maps every lesson; each lesson links back and on in manifest order."""
    landing = [href for _, href in _page(book / "intro.html").links]
    order = ["setup.html"] + [f"{x.notebook}.html" for x in LESSONS] + ["glossary.html"]
    for x in LESSONS:
        assert f"{x.notebook}.html" in landing, f"the landing page does not link {x.notebook}"
    for i, page in enumerate(order[1:], start=1):
        links = _page(book / page).links
        prev = [h for c, h in links if "left-prev" in c]
        nxt = [h for c, h in links if "right-next" in c]
        assert prev == [order[i - 1]], (page, prev)
        assert nxt == ([order[i + 1]] if i + 1 < len(order) else []), (page, nxt)


def test_each_lesson_page_shows_its_stored_charts_and_a_binder_link(book: Path) -> None:
    """Every image output of a notebook is an image file of its page; the page launches it."""
    for x in LESSONS:
        page = _page(book / f"{x.notebook}.html")
        local = [src for src in page.images if _internal(src)]
        assert len(local) == _stored_charts(x.notebook), (x.notebook, local)
        assert all((book / unquote(src)).is_file() for src in local), x.notebook
        assert build_book.binder_url(x.notebook) in [h for _, h in page.links], x.notebook


def test_setup_page_is_the_readmes_setup_and_the_readme_badge_launches_the_same_repo(
    book: Path,
) -> None:
    """setup.html holds the README's setup sections; README's badge uses the book's repo."""
    text = (book / "setup.html").read_text()
    for section in build_book.SETUP_SECTIONS:
        assert section in text, section
    readme = (ROOT / "README.md").read_text()
    assert f"({build_book.binder_url('00_start_here')})" in readme


def test_glossary_page_holds_notebook_00s_picture_and_every_term(book: Path) -> None:
    """glossary.html shows the picture of an event's path and each term of the glossary."""
    page = _page(book / "glossary.html")
    text = (book / "glossary.html").read_text()
    for term in GLOSSARY:
        assert html.escape(term.term.strip("`").split("`")[0], quote=False) in text, term
    pictures = [src for src in page.images if src.endswith(EVENT_PATH.name)]
    assert pictures and all((book / unquote(src)).is_file() for src in pictures), page.images


def test_builder_refuses_a_manifest_lesson_without_its_notebook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lesson in the manifest whose notebook is missing stops the build and is named."""
    ghost = build_book.Lesson("99", "ghost", "Ghost", "nothing")
    monkeypatch.setattr(build_book, "LESSONS", (*LESSONS, ghost))
    with pytest.raises(build_book.BookError, match="99_ghost"):
        build_book.lessons()


def _check_links(book: Path, page: Path) -> list[str]:
    """The internal links of ``page`` whose file or anchor does not exist."""
    broken = []
    for _, href in _page(page).links:
        if not _internal(href):
            continue
        parts = urlsplit(href)
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not target.is_file() or (parts.fragment and parts.fragment not in _page(target).ids):
            broken.append(href)
    return broken


def test_every_page_renders_in_chromium_with_its_charts_and_no_broken_link(book: Path) -> None:
    """Headless Chromium opens each page offline: a heading, every chart decoded, links whole."""
    require_browser()
    from playwright.sync_api import sync_playwright

    pages = ["intro.html", "setup.html"] + [f"{x.notebook}.html" for x in LESSONS]
    pages += ["glossary.html"]
    outside: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context()

        def refuse(route: Any) -> None:
            outside.append(route.request.url)
            route.abort()

        context.route(re.compile(r"^(?!file:).*"), refuse)
        page = context.new_page()
        try:
            for name in pages:
                page.goto((book / name).as_uri(), wait_until="load")
                heading = page.locator("article h1").first.inner_text()
                assert heading.strip(), f"{name}: no heading rendered"
                images = page.evaluate(
                    """() => [...document.querySelectorAll('article img')]
                        .filter(i => !/^[a-z]+:\\/\\//.test(i.getAttribute('src')) ||
                                     i.src.startsWith('file:'))
                        .map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"""
                )
                assert all(ok for _, ok in images), f"{name}: images not loaded: {images}"
                if name.endswith(".html") and name[:2].isdigit():
                    want = _stored_charts(name.removesuffix(".html"))
                    assert len(images) == want, f"{name}: {len(images)} images, want {want}"
                assert not (broken := _check_links(book, book / name)), f"{name}: {broken}"
        finally:
            browser.close()
    lessons_outside = [u for u in outside if "mybinder.org/badge" not in u]
    assert not lessons_outside, f"pages asked the network for: {lessons_outside}"
