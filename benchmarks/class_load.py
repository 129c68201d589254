"""A class at full size on one server: N simulated students, each its own process.

    python benchmarks/class_load.py --students 40            # the README's figures
    python benchmarks/class_load.py --students 5 --json out.json

It writes a class (``edalab.course.classroom``), starts one embedded nats-server with
its accounts, and starts one process per student with that student's credentials
(``students/sNN.env``: NATS_URL, NATS_USER, NATS_PASSWORD, EDALAB_CLASS=1). Each
student does what the exercises do on the server: creates the course's streams in
its own account, publishes events tagged with its name, consumes and acknowledges
them, runs every server-side exercise check (each reports to the instructor), and
probes isolation (it must see no other student's events, and reading the class's
reports must be refused). The run prints:

    checks completed, p50/p99 check latency, server memory and CPU,
    unauthorized deliveries (must be 0), lost progress reports (must be 0)

Every wait is bounded (``--timeout``); the script exits non-zero when a student
failed, a delivery crossed accounts, or a report was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

STUDENT_EVENTS = 20


async def student(env_file: str) -> dict[str, Any]:
    """One student's session; returns its figures (run in the student's own process)."""
    from edalab import (
        Event,
        EventConsumer,
        PermissionDenied,
        connect,
        publish_events,
        subscribe_checked,
    )
    from edalab.course import fresh_stream
    from edalab.course.classroom import load_env_file
    from edalab.course.exercises import check

    os.environ.update(load_env_file(env_file))
    me = os.environ["NATS_USER"]
    nc = await connect()  # NATS_URL + NATS_USER/NATS_PASSWORD, as a student's notebook does
    js = nc.jetstream()
    out: dict[str, Any] = {"student": me, "latencies": [], "reports": 0, "report_errors": []}
    try:
        await fresh_stream(js, "ORDERS", ["order.>"])
        events = [
            Event.create("order.placed", {"student": me, "n": i}, id=f"{me}-{i}")
            for i in range(STUDENT_EVENTS)
        ]
        await publish_events(js, events)
        consumer = await EventConsumer.create(js, "ORDERS", "billing")
        seen = foreign = 0
        while seen < STUDENT_EVENTS:
            deliveries = await consumer.fetch(STUDENT_EVENTS, timeout=5)
            if not deliveries:
                break
            for d in deliveries:
                seen += 1
                foreign += d.event.data.get("student") != me
                await d.ack()
        out["consumed"], out["unauthorized"] = seen, foreign
        try:
            await subscribe_checked(nc, "class.report.>")
            out["reports_readable"] = True
        except PermissionDenied:
            out["reports_readable"] = False
        from edalab.course.exercises import EXERCISES

        for key in EXERCISES:
            if EXERCISES[key].needs:
                continue
            started = time.perf_counter()
            try:
                result = await check(key, js)
            except Exception as err:  # a checker that needs arguments: counted, not fatal
                out["report_errors"].append(f"{key}: {type(err).__name__}")
                continue
            out["latencies"].append(time.perf_counter() - started)
            if "not reported to the instructor" in result.message:
                out["report_errors"].append(f"{key}: {result.message}")
            else:
                out["reports"] += 1
        out["pairs"] = sorted(
            k
            for k in EXERCISES
            if not EXERCISES[k].needs
            and not any(e.startswith(f"{k}:") for e in out["report_errors"])
        )
    finally:
        await nc.close()
    return out


def varz(monitor_url: str) -> dict[str, Any]:
    """The server's /varz (memory in bytes, CPU percent)."""
    with urllib.request.urlopen(f"{monitor_url}/varz", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


async def instructor_count(url: str, env: dict[str, str]) -> dict[str, int]:
    """How many reports per student the instructor's stream holds (one per exercise)."""
    from edalab import connect
    from edalab.course.classroom import PROGRESS_STREAM, REPORT_PREFIX

    nc = await connect(url, user=env["NATS_USER"], password=env["NATS_PASSWORD"])
    try:
        info = await nc.jetstream().stream_info(
            PROGRESS_STREAM, subjects_filter=f"{REPORT_PREFIX}.>"
        )
    finally:
        await nc.close()
    counts: dict[str, int] = {}
    for subject in info.state.subjects or {}:
        student = subject.split(".")[2]
        counts[student] = counts.get(student, 0) + 1
    return counts


def run(students: int, timeout: float) -> dict[str, Any]:
    """Start the server and the students; collect and return the figures."""
    from edalab import NatsServer, connect
    from edalab.course.classroom import Classroom, ensure_progress_stream, load_env_file

    work = Path(tempfile.mkdtemp(prefix="edalab-class-"))
    room = Classroom.generate(students, bcrypt_rounds=6)
    with NatsServer(name="edalab-class", config=room.accounts_conf()) as srv:
        room.write(work, url=srv.url)
        teacher = load_env_file(work / "instructor.env")

        async def setup() -> None:
            nc = await connect(
                srv.url, user=teacher["NATS_USER"], password=teacher["NATS_PASSWORD"]
            )
            await ensure_progress_stream(nc.jetstream())
            await nc.close()

        asyncio.run(setup())
        before = varz(srv.monitor_url)
        started = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
        env["EDALAB_STATE_DIR"] = str(work / "state")
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--student-run",
                    str(work / "students" / f"{s.user}.env"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
            )
            for s in room.students
        ]
        peak_mem, cpu_samples = before["mem"], []
        while running := [p for p in procs if p.poll() is None]:
            if time.perf_counter() - started > timeout:
                for p in procs:
                    p.kill()
                raise SystemExit(f"class load: students still running after {timeout:g}s")
            v = varz(srv.monitor_url)
            peak_mem, _ = max(peak_mem, v["mem"]), cpu_samples.append(v["cpu"])
            with contextlib.suppress(subprocess.TimeoutExpired):
                running[0].wait(timeout=0.5)  # a student finishing, or the next sample
        elapsed = time.perf_counter() - started
        results, failures = [], []
        for s, p in zip(room.students, procs, strict=True):
            stdout, stderr = p.communicate()
            if p.returncode != 0:
                failures.append(f"{s.user}: exit {p.returncode}: {stderr.strip()[-300:]}")
                continue
            results.append(json.loads(stdout.strip().splitlines()[-1]))
        stored = asyncio.run(instructor_count(srv.url, teacher))
    latencies = sorted(x for r in results for x in r["latencies"])
    expected = {r["student"]: len(r["pairs"]) for r in results}
    lost = sum(max(0, n - stored.get(s, 0)) for s, n in expected.items())
    lost += sum(len([e for e in r["report_errors"] if "not reported" in e]) for r in results)
    return {
        "students": students,
        "failed_students": failures,
        "seconds": round(elapsed, 2),
        "checks_completed": len(latencies),
        "check_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "check_p99_ms": round(
            1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1
        )
        if latencies
        else None,
        "server_peak_mem_mib": round(peak_mem / 2**20, 1),
        "server_cpu_percent_mean": round(statistics.fmean(cpu_samples), 1) if cpu_samples else 0.0,
        "server_cpu_percent_max": max(cpu_samples, default=0.0),
        "events_consumed": sum(r["consumed"] for r in results),
        "unauthorized_deliveries": sum(r["unauthorized"] for r in results),
        "reports_readable_by_students": sum(bool(r["reports_readable"]) for r in results),
        "progress_reports_sent": sum(r["reports"] for r in results),
        "lost_progress_reports": lost,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=300, help="bound on the whole run (s)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--student-run", help=argparse.SUPPRESS)  # one student's process
    args = parser.parse_args(argv)
    if args.student_run:
        print(json.dumps(asyncio.run(student(args.student_run))))
        return 0
    figures = run(args.students, args.timeout)
    for key, value in figures.items():
        print(f"{key:32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = (
        not figures["failed_students"]
        and figures["unauthorized_deliveries"] == 0
        and figures["reports_readable_by_students"] == 0
        and figures["lost_progress_reports"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
