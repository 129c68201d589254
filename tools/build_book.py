"""Build the course book: static HTML from the committed notebooks, in dist/book/ (`make book`).

Jupyter Book 1.x (Sphinx + MyST-NB) is the tool because it renders the notebooks' stored
outputs with every theme asset in its wheels: it builds with no network (tests/book/test_book.py
builds it; `unshare -n make book` works too), and with ``execute_notebooks: off`` it runs no
kernel and needs no server.

The lessons come from the course manifest (``edalab.course.manifest.LESSONS``), never from a
list here: a new lesson in the manifest with its notebook is a new page. The book has

- a landing page with the course map: each lesson, what it teaches, its exercise;
- the README's learner sections as the setup page (quick start, install, launch, servers,
  JupyterHub, workshops, class mode, troubleshooting);
- one page per lesson, in course order, with previous/next links (the theme's), a link
  that opens the lesson on Binder, and worked solutions folded away;
- a glossary page: the picture of an event's path and the glossary that notebook 00 shows,
  from the same source (``edalab.course.primer``).

    python tools/build_book.py dist/book            # needs the `book` extra (make book)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from edalab.course.manifest import LESSONS, PACE, Lesson  # noqa: E402
from edalab.course.primer import EVENT_PATH, glossary  # noqa: E402

# README sections (their `## ` headings) that make the setup page, in this order.
SETUP_SECTIONS = (
    "Quick start for learners",
    "Install",
    "Launch in one click",
    "How notebooks choose a server",
    "On a JupyterHub",
    "Workshops",
    "Class mode: one NATS deployment for the whole class",
    "Troubleshooting",
)
BINDER = "https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=lab/tree/notebooks/{file}"


class BookError(Exception):
    """The book cannot be built from what the repository holds (says what is missing)."""


def settings() -> dict[str, str]:
    """``[tool.edalab.book]`` of pyproject.toml: the repository and branch Binder launches."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    book: dict[str, str] = pyproject["tool"]["edalab"]["book"]
    return book


def binder_url(notebook: str) -> str:
    """The Binder link that opens ``notebook`` (a file stem) in JupyterLab."""
    return BINDER.format(**settings(), file=f"{notebook}.ipynb")


def lessons() -> list[Lesson]:
    """The manifest's lessons; every one must have its notebook, and no notebook is left out."""
    have = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    want = [x.notebook for x in LESSONS]
    if missing := [n for n in want if n not in have]:
        raise BookError(f"the manifest lists lessons without a notebook: {missing}")
    if extra := sorted(have - set(want)):
        raise BookError(f"notebooks not in the manifest (edalab/course/manifest.py): {extra}")
    return list(LESSONS)


def readme_sections(names: tuple[str, ...]) -> str:
    """The README's ``## name`` sections, in the order given; relative links point at GitHub."""
    text = (ROOT / "README.md").read_text()
    parts = re.split(r"(?m)^## ", text)[1:]
    found = {part.split("\n", 1)[0].strip(): "## " + part for part in parts}
    if missing := [n for n in names if n not in found]:
        raise BookError(f"README.md has no section(s) {missing} for the setup page")
    body = "\n".join(found[n].rstrip() + "\n" for n in names)
    blob = "https://github.com/{repository}/blob/{branch}/".format(**settings())

    def absolute(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return match.group(0)
        return f"[{label}]({blob}{target})"

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", absolute, body)


def landing_page(items: list[Lesson]) -> str:
    """The book's first page: what the course is, and the map of its lessons."""
    rows = ["| lesson | you learn | time | exercise |", "|---|---|---|---|"]
    for x in items:
        exercise = x.exercise or "—"
        link = f"[{x.number} · {x.title}]({x.notebook}.ipynb)"
        rows.append(f"| {link} | {x.teaches} | {PACE[x.number].minutes} min | {exercise} |")
    return "\n".join(
        [
            "# edalab: event-driven architecture on NATS JetStream",
            "",
            "A course in Jupyter notebooks: each lesson runs against a real `nats-server` with "
            "JetStream and shows what it teaches in cells that ran. This book shows every "
            "lesson with its stored outputs; to run one yourself, open it on Binder (the link "
            "at the top of each lesson) or install it as the [setup page](setup.md) says.",
            "",
            "## The course map",
            "",
            *rows,
            "",
            'Each lesson ends with a recap and an exercise; `await check("NN", js)` verifies '
            "your answer against the live server. The [glossary](glossary.md) explains the "
            "words the course uses, under a picture of an event's whole path.",
            "",
        ]
    )


def glossary_page() -> str:
    """The glossary page: the picture of an event's path, then the words the course uses."""
    return "\n".join(
        [
            "# Glossary",
            "",
            f"![The path of an event: publisher, subject, stream, consumer, ack or "
            f"redelivery]({EVENT_PATH.name})",
            "",
            "The words the course uses, in the order it meets them; the last column is the "
            "lesson that teaches each (notebook 00 shows the same table).",
            "",
            glossary(),
            "",
        ]
    )


def lesson_notebook(x: Lesson) -> dict[str, Any]:
    """The committed notebook with a launch link after its title cell, solutions folded."""
    nb: dict[str, Any] = json.loads((ROOT / "notebooks" / f"{x.notebook}.ipynb").read_text())
    launch = {
        "cell_type": "markdown",
        "metadata": {},
        "source": [
            f"[Launch this lesson on Binder]({binder_url(x.notebook)}) · "
            "[setup and other ways to run it](setup.md)"
        ],
    }
    nb["cells"].insert(1, launch)
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            cell["metadata"]["tags"] = [*tags, "hide-input"]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:  # IPython's Code also offers LaTeX; HTML is what a page
                data.pop("text/latex", None)  # shows, and LaTeX would pull MathJax off a CDN
            # A live widget (edalab.course.view) needs a kernel, and MyST-NB would load the
            # widget manager from a CDN: the page shows the output's static SVG instead.
            data.pop("application/vnd.jupyter.widget-view+json", None)
    return nb


def write_sources(src: Path, items: list[Lesson]) -> None:
    """Jupyter Book's input: config, table of contents, the pages."""
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    (src / "_config.yml").write_text(
        "\n".join(
            [
                "title: edalab course book",
                "author: the edalab authors",
                "only_build_toc_files: true",
                "execute:",
                "  execute_notebooks: 'off'",  # the committed, nbval-checked outputs
                # No dollarmath/amsmath: `$JS.API.>` and its kin are subjects, not LaTeX
                # (and math would make pages fetch MathJax from a CDN).
                "parse:",
                "  myst_enable_extensions:",
                "    - colon_fence",
                "    - deflist",
                "    - html_admonition",
                "    - html_image",
                "    - substitution",
                "    - tasklist",
                "html:",
                "  use_repository_button: false",
                "  use_issues_button: false",
                "  use_edit_page_button: false",
                "sphinx:",
                "  config:",
                "    html_show_copyright: false",
                "    html_show_sphinx: false",
                # A lesson may go from its `#` title to a `###`; that renders well. Every
                # other warning (a broken cross-reference, a missing file) fails the build.
                "    suppress_warnings: ['myst.header']",
                "",
            ]
        )
    )
    toc = ["format: jb-book", "root: intro", "chapters:", "- file: setup"]
    toc += [f"- file: {x.notebook}" for x in items]
    toc += ["- file: glossary"]
    (src / "_toc.yml").write_text("\n".join(toc) + "\n")
    (src / "intro.md").write_text(landing_page(items))
    (src / "setup.md").write_text("# Setup\n\n" + readme_sections(SETUP_SECTIONS))
    (src / "glossary.md").write_text(glossary_page())
    shutil.copy(EVENT_PATH, src / EVENT_PATH.name)
    for x in items:
        (src / f"{x.notebook}.ipynb").write_text(json.dumps(lesson_notebook(x), indent=1))


def build(out: Path, work: Path) -> Path:
    """Build the book into ``out`` (replaced); ``work`` holds the sources and Sphinx's cache."""
    items = lessons()
    src = work / "src"
    write_sources(src, items)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    if not jupyter_book.exists():
        raise BookError(f"{jupyter_book} is missing: install the `book` extra (make book)")
    done = subprocess.run(
        [str(jupyter_book), "build", str(src), "--path-output", str(work), "--warningiserror",
         "--keep-going", "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise BookError(f"jupyter-book failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(work / "_build" / "html", out)
    return out / "index.html"


def main() -> None:
    """Command line: ``build_book.py OUT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where the HTML goes (replaced)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "book")
    args = parser.parse_args()
    try:
        index = build(args.out.resolve(), args.work.resolve())
    except BookError as exc:
        raise SystemExit(f"book: {exc}") from None
    print(f"book: {len(LESSONS)} lessons -> {index}")


if __name__ == "__main__":
    main()
