"""Write student copies of the notebooks (see edalab.course.workshop.student_copy).

python tools/make_student.py [--force] [OUTDIR]     (default: dist/student/)

A copy that already holds a learner's work (an answer, an edited or added cell) is
left as it is, and named; --force writes over it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edalab.course.workshop import write_student_copies

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default=str(ROOT / "dist" / "student"))
    parser.add_argument("--force", action="store_true", help="write over learners' work too")
    args = parser.parse_args(argv)
    target = Path(args.outdir)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    written, kept = write_student_copies(notebooks, target, force=args.force)
    print(f"wrote {len(written)} student notebooks to {target}")
    for path, work in kept.items():
        print(f"kept {path.name}: it holds your work ({', '.join(work)})")
    if kept:
        print(
            "(to get fresh copies of those, move them away or run "
            "`python tools/make_student.py --force`)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
