"""The ``edalab`` command: the course's NATS server and the exercises, from a terminal.

``edalab --help`` lists every command with its one-line summary; both come from
:data:`COMMANDS`, the one place a command is described (each command's own ``--help``
starts with the same line).

The state file (pid, URL, store directory, log file) lives in
``$EDALAB_STATE_DIR`` or ``~/.local/state/edalab``. Every URL the command prints has
its password or token masked; a bad URL or an unreachable server is one line on
stderr (exit code 2), not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors

from .._confidential import mask_url, redact
from .._discovery import env_credentials, running_server
from .._errors import EdalabError
from .._processes import pid_alive, stop_pid
from .._server import NatsServer
from .._state import (
    ServerState,
    read_cluster_state,
    read_state,
    remove_cluster_state,
    save_cluster_state,
    state_dir,
)
from .._urls import probe, server_address

#: Every command and its one-line summary: ``edalab --help`` and each ``--help`` read this.
#: What ``add_subparsers()`` returns (argparse names its class only privately).
Subcommands = Any

COMMANDS = {
    "server": "manage the shared nats-server",
    "server start": "one server for all notebooks (--config class/accounts.conf: the class's)",
    "server ensure": "NATS_URL if it answers (in class mode, only it), else start or reuse one",
    "server status": "is the recorded server alive?",
    "server stop": "stop the recorded server (its store is kept)",
    "server url": "print the server's URL (for NATS_URL=...)",
    "cluster": "manage a local JetStream cluster",
    "cluster start": "start N routed nodes; ready once a leader is elected",
    "cluster status": "which nodes are alive",
    "cluster stop": "stop every node",
    "reset": "delete the course's streams, consumers and buckets",
    "progress": "run the exercise checkers: a table, and what its states mean",
    "class": "one server for a whole class: accounts, progress",
    "class init": "write accounts, credentials and deployment values for a class",
    "class progress": "students x exercises (and hints), from their reports",
}


def _overview() -> str:
    """The command list of ``edalab --help``: every command that runs something."""
    leaves = [c for c in COMMANDS if not any(o.startswith(c + " ") for o in COMMANDS)]
    width = max(len(f"edalab {c}") for c in leaves) + 2
    lines = [f"  {'edalab ' + c:<{width}}{COMMANDS[c]}" for c in leaves]
    return (
        "Run the course's NATS server (or a local cluster), reset what the course created,\n"
        "check which exercises pass, and run a class.\n\n" + "\n".join(lines) + "\n\n"
        "State (pid, URL, store, log) is kept in $EDALAB_STATE_DIR or ~/.local/state/edalab.\n"
    )


def _server_start(args: argparse.Namespace) -> int:
    config = _extra_config(args)
    klass = _class_dir(args)
    digest = hashlib.sha256(config.encode()).hexdigest() if config else ""
    state = read_state()
    if state is not None and state.alive():
        if digest and state.config_sha256 != digest:
            raise EdalabError(_not_the_class(state, args.config))
        print(f"edalab server already running: {mask_url(state.url)} (pid {state.pid})")
        return _class_ready(klass, state.url)
    store = Path(args.store) if args.store else state_dir() / "store"
    host, port = "127.0.0.1", args.port
    if klass is not None:  # where the class's env files send students
        host, port = _class_address(klass, args.port)
    srv = NatsServer(
        port=port,
        host=host,
        store_dir=store,
        run_dir=state_dir(),
        name="edalab",
        detach=True,
        sync_interval=args.sync_interval,
        config=config,
    )
    srv.start()
    pid = srv.release()
    ServerState(
        pid=pid,
        url=srv.url,
        monitor_url=srv.monitor_url,
        store_dir=str(store),
        log_file=str(srv.log_file),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config_file=str(Path(args.config).resolve()) if config else "",
        config_sha256=digest,
    ).save()
    print(f"edalab server started: {mask_url(srv.url)} (pid {pid}, store {store})")
    print(f"monitoring: {srv.monitor_url}   log: {srv.log_file}")
    return _class_ready(klass, srv.url)


def _extra_config(args: argparse.Namespace) -> str:
    """The text of ``--config FILE`` (e.g. a class's accounts.conf), or nothing."""
    path = getattr(args, "config", None)
    if not path:
        return ""
    try:
        return Path(path).read_text()
    except OSError as err:
        raise EdalabError(f"cannot read --config {path}: {err.strerror or err}") from None


def _class_dir(args: argparse.Namespace) -> Path | None:
    """The class directory when ``--config`` is a class's file (``class.json`` beside it)."""
    path = getattr(args, "config", None)
    if path and (Path(path).parent / "class.json").is_file():
        return Path(path).parent
    return None


def _class_address(klass: Path, port: int) -> tuple[str, int]:
    """Where a class server listens: the class URL's port, on every interface unless the
    class URL is this machine's loopback."""
    from edalab.course.classroom import roster

    info = roster(klass)
    host = str(info.get("host", "127.0.0.1"))
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return ("127.0.0.1" if loopback else "0.0.0.0"), port or int(info.get("port", 4222))


def _not_the_class(state: ServerState, config: str) -> str:
    """Why a running server cannot serve as the class's (students could not log in)."""
    had = f"with {state.config_file}" if state.config_file else "without any accounts"
    return (
        f"an edalab server is already running at {mask_url(state.url)} (pid {state.pid}), "
        f"started {had}, not with {config}: the class's students could not log in to it. "
        "Stop it with `edalab server stop`, then run this command again"
    )


def _class_ready(klass: Path | None, url: str) -> int:
    """For a class server: create the instructor's progress stream, say where to look."""
    if klass is None:
        return 0
    from edalab.course.classroom import ensure_progress_stream, load_env_file, roster

    env = load_env_file(klass / "instructor.env")
    creds = {"user": env["NATS_USER"], "password": env["NATS_PASSWORD"]}
    asyncio.run(_with_js(url, ensure_progress_stream, **creds))
    print(f"the class in {klass}/: students connect to {mask_url(str(roster(klass)['url']))}")
    print(f"their reports are kept from now on; watch: edalab class progress --dir {klass}")
    return 0


def _server_status(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("no edalab server recorded (start one with `edalab server start`)")
        return 1
    if not state.alive():
        print(
            f"the recorded edalab server (pid {state.pid}, {mask_url(state.url)}) is gone; "
            f"run `edalab server start` to start a new one (state file: {state.path})"
        )
        return 1
    print(f"running: {mask_url(state.url)} (pid {state.pid}, since {state.started_at})")
    print(f"store: {state.store_dir}   monitoring: {state.monitor_url}   log: {state.log_file}")
    return 0


def _server_stop(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("no edalab server recorded; nothing to stop")
        return 0
    gone = stop_pid(state.pid) if state.alive() else True
    if not gone:
        print(f"edalab server (pid {state.pid}) did not exit", file=sys.stderr)
        return 1
    state.path.unlink(missing_ok=True)
    print(f"edalab server stopped (pid {state.pid}); store kept at {state.store_dir}")
    return 0


def _server_ensure(args: argparse.Namespace) -> int:
    found = running_server()
    if found is not None and found.source == "NATS_URL":
        print(f"using NATS_URL={mask_url(found.url)}")
        return 0
    return _server_start(args)  # says "already running" when the edalab server is up


def _server_url(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None or not state.alive():
        print("no running edalab server", file=sys.stderr)
        return 1
    print(mask_url(state.url))  # the edalab server's own URL carries no credentials
    return 0


def _cluster_start(args: argparse.Namespace) -> int:
    from .._cluster import NatsCluster

    klass = _class_dir(args)
    if klass is not None:
        from edalab.course.classroom import roster

        raise EdalabError(
            f"a local cluster listens on loopback ports of its own, not at the class's URL "
            f"{mask_url(str(roster(klass)['url']))}: students could not reach it. Serve the "
            f"class with `edalab server start --config {args.config}`, or run a real cluster "
            "(Helm, with the class's helm-values.yaml)"
        )
    recorded = read_cluster_state()
    if recorded and all(pid_alive(n["pid"]) for n in recorded.values()):
        urls = ",".join(n["url"] for n in recorded.values())
        print(f"edalab cluster already running: {mask_url(urls)}")
        return 0
    base = state_dir() / "cluster"
    cluster = NatsCluster(args.nodes, base_dir=base, detach=True, config=_extra_config(args))
    cluster.start()
    leader = cluster.meta_leader()
    nodes = cluster.release()
    save_cluster_state(nodes)
    print(f"edalab cluster started: {len(nodes)} nodes, meta leader {leader}")
    for node, info in nodes.items():
        shown = f"{mask_url(info['url'])} (pid {info['pid']}, monitoring "
        print(f"  {node}: {shown}{mask_url(info['monitor_url'])})")
    print("NATS_URL=" + mask_url(",".join(n["url"] for n in nodes.values())))
    return 0


def _cluster_status(args: argparse.Namespace) -> int:
    nodes = read_cluster_state()
    if not nodes:
        print("no edalab cluster recorded (start one with `edalab cluster start`)")
        return 1
    ok = True
    for node, info in nodes.items():
        alive = pid_alive(info["pid"]) and probe(info["url"]) is None
        ok = ok and alive
        state = "running" if alive else "GONE"
        print(f"{node}: {state:7} {mask_url(info['url'])} (pid {info['pid']})")
    return 0 if ok else 1


def _cluster_stop(args: argparse.Namespace) -> int:
    nodes = read_cluster_state()
    if not nodes:
        print("no edalab cluster recorded; nothing to stop")
        return 0
    failed = [n for n, info in nodes.items() if not stop_pid(info["pid"])]
    if failed:
        print(f"nodes did not exit: {', '.join(failed)}", file=sys.stderr)
        return 1
    remove_cluster_state()
    print(f"edalab cluster stopped ({len(nodes)} nodes)")
    return 0


def _course_url(args: argparse.Namespace) -> str:
    """--url, else a reachable NATS_URL, else the recorded edalab server: never a new one."""
    if args.url:
        return str(args.url)
    found = running_server()
    if found is not None:
        return found.url
    raise EdalabError(
        "no server to work on: pass --url, set NATS_URL, or start one with `edalab server start`"
    )


async def _with_js(url: str, work: Callable[[Any], Awaitable[Any]], **creds: Any) -> Any:
    from .._connection import connect

    # By default a student's NATS_USER/NATS_PASSWORD, from the environment.
    nc = await connect(url, **(creds or env_credentials()))
    try:
        return await work(nc.jetstream())
    finally:
        await nc.close()


def _reset(args: argparse.Namespace) -> int:
    from edalab.course.workshop import course_state, reset

    url = _course_url(args)
    streams, buckets = asyncio.run(_with_js(url, course_state))
    if not streams and not buckets:
        print(f"nothing of the course's on {mask_url(url)}")
        return 0
    who = env_credentials().get("user", "")
    as_whom = f" as {who}" if who else ""
    print(
        f"on {mask_url(url)}{as_whom} this deletes streams {streams} "
        f"and key-value buckets {buckets}"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            print("refusing without confirmation: pass --yes", file=sys.stderr)
            return 1
        if input("delete them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    deleted = asyncio.run(_with_js(url, reset))
    print("deleted: " + ", ".join(deleted))
    return 0


def _progress(args: argparse.Namespace) -> int:
    from edalab.course.workshop import progress, progress_legend

    table = asyncio.run(_with_js(_course_url(args), progress))
    print(table)
    print()
    print(progress_legend())
    return 0


def _command(
    group: Subcommands,
    path: str,
    func: Callable[[argparse.Namespace], int] | None = None,
) -> argparse.ArgumentParser:
    """The subcommand ``path`` (``"server start"``), its summary from :data:`COMMANDS`;
    its ``--help`` starts with that summary (plain text)."""
    summary = COMMANDS[path]
    name = path.split()[-1]
    parser: argparse.ArgumentParser = group.add_parser(
        name, help=summary, description=summary[:1].upper() + summary[1:]
    )
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="JetStream store directory (kept between runs)")
    parser.add_argument("--port", type=int, default=0, help="client port (default: a free one)")
    parser.add_argument("--sync-interval", help="JetStream fsync interval, e.g. always")
    parser.add_argument("--config", help="extra server configuration, e.g. class/accounts.conf")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``edalab`` command (its help is plain text)."""
    parser = argparse.ArgumentParser(
        prog="edalab", description=_overview(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    server = _command(sub, "server")
    ssub = server.add_subparsers(dest="action", required=True, metavar="action")
    _server_options(_command(ssub, "server start", _server_start))
    _server_options(_command(ssub, "server ensure", _server_ensure))
    _command(ssub, "server status", _server_status)
    _command(ssub, "server stop", _server_stop)
    _command(ssub, "server url", _server_url)

    cluster = _command(sub, "cluster")
    csub = cluster.add_subparsers(dest="action", required=True, metavar="action")
    cstart = _command(csub, "cluster start", _cluster_start)
    cstart.add_argument("--nodes", type=int, default=3, help="how many nodes (default: 3)")
    cstart.add_argument("--config", help="extra configuration for every node (class accounts)")
    _command(csub, "cluster status", _cluster_status)
    _command(csub, "cluster stop", _cluster_stop)

    reset = _command(sub, "reset", _reset)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument("--url", help="server to reset (default: NATS_URL or the edalab server)")
    prog = _command(sub, "progress", _progress)
    prog.add_argument("--url", help="server to check (default: NATS_URL or the edalab server)")
    _add_class_commands(sub)
    return parser


def _class_init(args: argparse.Namespace) -> int:
    from edalab.course.classroom import Classroom

    out = Path(args.out)
    room = Classroom.generate(args.students)
    room.write(out, url=args.url)
    print(f"class of {args.students} written to {out}/ (credentials are mode 0600):")
    port = server_address(args.url.split(",")[0])[1]
    print(f"students connect to {mask_url(args.url)} (port {port} recorded in {out}/class.json)")
    print(f"  accounts.conf      the accounts: edalab server start --config {out}/accounts.conf")
    print("  nats-server.conf   for Docker Compose: docker compose --profile class up -d")
    print(f"  helm-values.yaml   for Helm: helm install class nats/nats -f {out}/helm-values.yaml")
    print(f"  students/*.env     hand one to each student: set -a; . {out}/students/s01.env")
    print(f"  instructor.env     yours: `edalab class progress --dir {out} --serve 8080`")
    print("                     (Docker, Helm: run it once before students check; it creates")
    print("                     the stream their reports go to, as `server start` does)")
    return 0


def _instructor(args: argparse.Namespace) -> tuple[str, dict[str, Any], list[str]]:
    from edalab.course.classroom import load_env_file, roster

    info = roster(args.dir)
    env = load_env_file(Path(args.dir) / "instructor.env")
    url = args.url or os.environ.get("NATS_URL") or env.get("NATS_URL") or str(info["url"])
    creds: dict[str, Any] = {"user": env["NATS_USER"], "password": env["NATS_PASSWORD"]}
    return url, creds, list(info["students"])


def _class_progress(args: argparse.Namespace) -> int:
    from edalab.course.classroom import TABLE_KEY, ClassWatcher, serve_progress
    from edalab.course.exercises import EXERCISES

    from .._connection import connect

    url, creds, students = _instructor(args)

    async def watch() -> int:
        nc = await connect(url, **creds)
        try:
            watcher = ClassWatcher(nc.jetstream(), students, sorted(EXERCISES))
            await watcher.start()
            await nc.flush()
            if args.serve is None and not args.watch:
                await _settle(watcher)
                print(watcher.progress().table())
                print(TABLE_KEY)
                return 0
            if args.serve is not None:
                server = serve_progress(watcher, args.serve)
                print(f"live class progress: http://127.0.0.1:{server.server_port}/", flush=True)
            deadline = asyncio.get_running_loop().time() + (args.for_seconds or 1e9)
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                watcher.changed.clear()
                if args.watch:
                    table = watcher.progress().table()
                    print(f"\033[2J\033[H{table}\n{TABLE_KEY}", flush=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher.changed.wait(), timeout=left)
            return 0
        finally:
            await nc.close()

    return asyncio.run(watch())


async def _settle(watcher: Any) -> None:
    """Let the ordered consumer replay what the stream holds now (bounded)."""
    from edalab.course.classroom import PROGRESS_STREAM

    from .._waiting import wait_for

    info = await watcher.js.stream_info(PROGRESS_STREAM)
    want = info.state.messages

    async def caught_up() -> bool:
        return bool(watcher.reports >= want)

    await wait_for(caught_up, timeout=10, what="the class progress stream to replay")


def _add_class_commands(sub: Subcommands) -> None:
    klass = _command(sub, "class")
    ksub = klass.add_subparsers(dest="action", required=True, metavar="action")
    init = _command(ksub, "class init", _class_init)
    init.add_argument("--students", type=int, required=True, help="how many students")
    init.add_argument("--out", default="class", help="directory to write (default: class/)")
    init.add_argument("--url", default="nats://127.0.0.1:4222", help="the URL students connect to")
    kprog = _command(ksub, "class progress", _class_progress)
    kprog.add_argument("--dir", default="class", help="the class directory (default: class/)")
    kprog.add_argument("--url", help="server (default: NATS_URL, else the class's URL)")
    kprog.add_argument("--watch", action="store_true", help="redraw on every new report")
    kprog.add_argument("--serve", type=int, metavar="PORT", help="serve a live web page")
    kprog.add_argument("--for-seconds", type=float, help="stop watching after this long")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Errors the user can fix (a bad URL, no server, refused credentials, a connection
    lost) are one line on stderr, with any secret masked, and exit code 2.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except EdalabError as err:
        print(f"edalab: {redact(str(err))}", file=sys.stderr)
    except (OSError, TimeoutError, nats.errors.Error) as err:
        print(f"edalab: {type(err).__name__}: {redact(str(err))}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
