"""Benchmark edalab against raw nats-py, FastStream (and the Go client), in one run, one server.

    python benchmarks/run.py --quick --json out.json          # about a minute
    python benchmarks/run.py --json results.json --plot results.png
    ../shared/reference/gobench/run .venv/bin/nats-server > go.txt
    python benchmarks/run.py --quick --go-reference go.txt    # adds edalab/Go

Starts an embedded nats-server (or uses --url), runs each scenario for raw nats-py
and for edalab (alternating, best of --rounds), and for three of them FastStream, plain
and with edalab's middlewares (when faststream is installed); prints messages per second
and the ratios edalab / raw, edalab / FastStream, FastStream+edalab / FastStream (and
edalab / Go with --go-reference), the machine's load
average before and after, and writes JSON (layout in benchmarks/README.md) and a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from nats.js.api import StorageType
from tqdm import tqdm

import edalab
from edalab import NatsServer
from edalab.course.bench import (
    SCENARIOS,
    Result,
    read_go_reference,
    run_all,
    scenario_sizes,
    summary,
)

#: Each scenario's target for edalab / raw nats-py.
TARGETS = {
    "sync publish": 0.95,
    "async publish": 0.95,
    "fast ingest": 0.95,
    "pull consume": 0.95,
    "batch consume": 0.95,
    "batch consume, ack all": 0.95,
    "encode+decode": 0.95,
    "bulk vs naive publish": 8,
    "batch vs naive consume": 5,
}
#: edalab must not be slower than FastStream doing the same job (issue 21).
FASTSTREAM_TARGET = 1.0
#: Targets for edalab / Go (issue 13), checked when --go-reference is given.
GO_TARGETS = {"fast ingest": 0.6, "batch consume, ack all": 0.4}


def checks(results: list[Result]) -> list[dict[str, object]]:
    """Every target, and whether this run met it."""
    out: list[dict[str, object]] = []
    for r in results:
        want = TARGETS[r.name]
        out.append({"scenario": r.name, "target": f"edalab/raw >= {want}", "met": r.ratio >= want})
        fs = r.faststream_ratio
        if fs is not None:
            target = f"edalab/FastStream >= {FASTSTREAM_TARGET}"
            out.append({"scenario": r.name, "target": target, "met": fs >= FASTSTREAM_TARGET})
        go = r.go_ratio
        if r.name in GO_TARGETS and go is not None:
            want = GO_TARGETS[r.name]
            out.append({"scenario": r.name, "target": f"edalab/Go >= {want}", "met": go >= want})
    return out


def plot(results: list[Result], path: Path) -> None:
    """Bar chart: raw vs edalab messages per second, one pair per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edalab.course.charts import plain_numbers

    fig, ax = plt.subplots(figsize=(10, 4.5))
    xs = range(len(results))
    ax.bar([x - 0.2 for x in xs], [r.raw_per_s for r in results], 0.4, label="raw nats-py")
    ax.bar([x + 0.2 for x in xs], [r.edalab_per_s for r in results], 0.4, label="edalab")
    ax.set_xticks(list(xs), [r.name for r in results], rotation=15)
    ax.set_ylabel("messages / s")
    ax.set_yscale("log")
    plain_numbers(ax)
    for x, r in zip(xs, results, strict=True):
        ax.annotate(f"{r.ratio:.2f}x", (x + 0.2, r.edalab_per_s), ha="center", va="bottom")
    ax.legend()
    ax.set_title("edalab vs raw nats-py (ratio = edalab / raw)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def measure(args: argparse.Namespace) -> list[Result]:
    """Start a server (unless --url), run every scenario, stop the server."""
    storage = StorageType(args.storage)
    server = None if args.url else await asyncio.to_thread(NatsServer().start)
    url = args.url or server.url
    names = args.only or [s.name for s in SCENARIOS]
    bar = tqdm(
        total=len(names) * args.rounds, desc="benchmarks", unit="round", disable=args.no_progress
    )

    def progress(text: str) -> None:
        bar.set_postfix_str(text)
        bar.update(1)

    try:
        return await run_all(
            url,
            quick=args.quick,
            rounds=args.rounds,
            storage=storage,
            progress=progress,
            scale=args.scale,
            only=args.only,
            go_reference=args.go,
            faststream=not args.no_faststream,
        )
    finally:
        bar.close()
        if server is not None:
            await asyncio.to_thread(server.stop)


def main(argv: list[str]) -> int:
    """Measure, print the table and the targets, write JSON and the plot."""
    args = parse(argv)
    if args.uvloop is None:  # default: use uvloop when it is installed
        args.uvloop = importlib.util.find_spec("uvloop") is not None
    if args.uvloop:
        import uvloop

        uvloop.install()
    args.go = read_go_reference(Path(args.go_reference).read_text()) if args.go_reference else None
    load_before = os.getloadavg()
    results = asyncio.run(measure(args))
    load_after = os.getloadavg()
    print(summary(results))
    met = checks(results)
    for c in met:
        print(f"{'met    ' if c['met'] else 'MISSED '} {c['scenario']}: {c['target']}")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    out = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": args.rounds,
        "storage": args.storage,
        "sizes": scenario_sizes(args.quick, args.scale),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "nats_py": importlib.metadata.version("nats-py"),
            "edalab": edalab.__version__,
            "faststream": _version("faststream"),
            "event_loop": "uvloop" if args.uvloop else "asyncio",
            "load_before": load_before,
            "load_after": load_after,
        },
        "go_reference": args.go,
        "results": [r.as_dict() for r in results],
        "targets": met,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per scenario")
    p.add_argument("--json", help="write results as JSON here")
    p.add_argument("--plot", help="write a PNG bar chart here")
    p.add_argument("--url", help="use this server instead of starting one")
    p.add_argument("--storage", choices=["file", "memory"], default="file")
    p.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run on uvloop (default: when installed)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-faststream",
        action="store_true",
        help="leave out the FastStream peer (it runs when faststream is installed)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size (smoke tests)")
    p.add_argument(
        "--go-reference",
        metavar="FILE",
        help="the Go reference's output (../shared/reference/gobench/run): adds edalab/Go",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
