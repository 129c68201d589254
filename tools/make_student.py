"""Write student copies of the notebooks to dist/student/ (see edalab.course.workshop.student_copy).

python tools/make_student.py [OUTDIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edalab.course.workshop import student_copy

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else ROOT / "dist" / "student"
    target.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in notebooks:
        copy = student_copy(json.loads(path.read_text()))
        (target / path.name).write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(notebooks)} student notebooks to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
