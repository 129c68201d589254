"""The course manifest is the one list of lessons: notebooks, README and tools follow it."""

from __future__ import annotations

import ast
from pathlib import Path

from edalab.course.exercises import EXERCISES
from edalab.course.manifest import LESSONS, course_map, course_streams

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "src" / "edalab"


def test_every_lesson_has_a_notebook_and_a_source_and_nothing_else_does() -> None:
    """notebooks/ and tools/notebooks/ hold exactly the manifest's lessons."""
    want = [x.notebook for x in LESSONS]
    assert [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))] == want
    assert [p.stem for p in sorted((ROOT / "tools/notebooks").glob("[0-9][0-9]_*.py"))] == want


def test_lesson_numbers_are_unique_and_in_order() -> None:
    """Numbers sort as the course reads."""
    numbers = [x.number for x in LESSONS]
    assert numbers == sorted(set(numbers))


def test_readme_shows_the_manifests_course_map() -> None:
    """The README's table is course_map(), not a hand-kept copy."""
    assert course_map() in (ROOT / "README.md").read_text()


def test_notebook_00_stores_the_manifests_course_map() -> None:
    """Notebook 00's stored map is today's (a new lesson means `make notebooks NB=00`)."""
    import json

    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    shown = [
        "".join(out["data"]["text/markdown"])
        for cell in nb["cells"]
        if "course_map()" in "".join(cell["source"])
        for out in cell.get("outputs", [])
        if "text/markdown" in out.get("data", {})
    ]
    assert shown == [course_map()], "rebuild notebook 00: make notebooks NB=00"


def test_each_exercise_is_checked_in_its_own_notebook() -> None:
    """A lesson with an exercise calls check("NN") with its own number."""
    for key, spec in EXERCISES.items():
        source = (ROOT / "tools/notebooks" / f"{spec.notebook}.py").read_text()
        assert f'check("{key}"' in source, spec.notebook


def test_each_stream_a_notebook_creates_is_in_the_manifest() -> None:
    """reset and progress know every stream the notebooks make (fresh_stream/ensure_stream)."""
    known = set(course_streams())
    for x in LESSONS:
        source = (ROOT / "tools/notebooks" / f"{x.notebook}.py").read_text()
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", ""))
                in {"fresh_stream", "ensure_stream"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                assert node.args[1].value in known, (x.notebook, node.args[1].value)
                assert node.args[1].value in x.streams, (x.notebook, node.args[1].value)


def test_the_library_does_not_import_the_course() -> None:
    """Layering: no module of the library imports edalab.course (the course uses the library)."""
    for path in LIBRARY.glob("*.py"):  # the course (and its CLI) lives in LIBRARY / "course"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith("edalab.course"), f"{path.name} imports {name}"


def test_learners_read_no_test_markers() -> None:
    """nbval's markers live in cell tags, not in the code a learner reads."""
    for path in sorted((ROOT / "tools/notebooks").glob("[0-9][0-9]_*.py")):
        assert "NBVAL_" not in path.read_text(), path.name


def test_no_notebook_ends_by_closing_its_connection() -> None:
    """After Run All, the exercise's check still has its connection (no final nc.close())."""
    for path in sorted((ROOT / "tools/notebooks").glob("[0-9][0-9]_*.py")):
        code = [c for c in path.read_text().split("# %%") if not c.startswith(" [markdown]")]
        assert "nc.close()" not in code[-1], path.name
