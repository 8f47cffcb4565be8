"""The wheel is a working install on its own (issue 10's acceptance test).

Builds the wheel from this checkout, installs it non-editable into a fresh virtual environment
outside the checkout, and from another working directory runs ``fleetdesk rules check``,
``fleetdesk sla deadlines`` and ``fleetdesk replay`` on the presets the wheel carries. Also
checks that ``pyproject.toml`` lists every package folder: its package list is explicit (the
presets' package-dir mapping rules out ``packages.find``), so a new package would otherwise be
left out of the wheel silently.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
# What the build reads: pyproject.toml names README.md; the rest are the packages and presets.
SOURCES = ("pyproject.toml", "README.md", "agent", "collector", "rules")


def _package_folders() -> set[str]:
    """Every folder under agent/ and collector/ holding Python code, as a dotted name."""
    found = set()
    for top in ("agent", "collector"):
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add(".".join(path.parent.relative_to(ROOT).parts))
    return found


def test_pyproject_lists_every_package_folder() -> None:
    listed = set(SETUPTOOLS["packages"])
    missing = _package_folders() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    for name in sorted(listed - {"collector.presets"}):
        folder = ROOT.joinpath(*name.split("."))
        assert (folder / "__init__.py").is_file(), f"{name} is listed but {folder} is no package"


def test_the_presets_are_the_rules_folder_and_nothing_shadows_them() -> None:
    assert SETUPTOOLS["package-dir"] == {"collector.presets": "rules"}
    assert SETUPTOOLS["package-data"]["collector.presets"] == ["**/*.yaml"]
    for kind in ("calendars", "policies", "rules.d", "snmp"):
        assert list((ROOT / "rules" / kind).glob("*.yaml")), f"rules/{kind}/ has no presets"
    # A module or folder of that name in the checkout would shadow the installed data package.
    assert not (ROOT / "collector" / "presets.py").exists()
    assert not (ROOT / "collector" / "presets").exists()


# --------------------------------------------------------------------------- the installed wheel


class Installed(NamedTuple):
    venv: Path
    bin: Path
    workdir: Path  # outside the checkout and the venv: where the commands run
    env: dict[str, str]


def _run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, *, stderr: bool = False
) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + (done.stderr if stderr else "")


def _can_build_offline() -> bool:
    """The running interpreter has what pyproject's [build-system] asks for (setuptools>=77,
    which has bdist_wheel built in)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    return int(version("setuptools").split(".")[0]) >= 77


def _build_wheel(work: Path) -> Path:
    # The build runs on a copy: setuptools writes build/ and *.egg-info into the source tree,
    # and a stale build/lib would put files into the wheel that the checkout no longer has.
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    dist = work / "dist"
    argv = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(src)]
    # Without build isolation when this interpreter can build it (no download at all); else
    # pip fetches setuptools from the configured index into an isolated build environment.
    if _can_build_offline():
        argv.insert(4, "--no-build-isolation")
    output = _run(argv, cwd=work, stderr=True)
    # No deprecation banner of our own making (project.license as a table, license classifiers).
    banners = [line for line in output.splitlines() if "Deprecat" in line and "licen" in line]
    assert not banners, banners
    wheels = list(dist.glob("fleetdesk-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _dependency_paths() -> list[Path]:
    """The site-packages of the interpreter running the tests, which holds the collector's
    dependencies, after checking that they cannot supply fleetdesk's own code."""
    paths = []
    for key in ("purelib", "platlib"):
        path = Path(sysconfig.get_paths()[key]).resolve()
        if path in paths:
            continue
        assert path != ROOT, "the checkout itself is a site-packages folder"
        for package in ("agent", "collector"):
            assert not (path / package).exists(), f"{path} has a copy of {package}/"
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    assert ROOT not in work.resolve().parents, "the temporary folder is inside the checkout"
    wheel = _build_wheel(work)
    venv = work / "venv"
    # A fresh venv (no --system-site-packages); pip installs into it from outside (--python).
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    _run([*pip, "--no-deps", "--no-index", str(wheel)], cwd=work)
    # The collector's dependencies (pysnmp, cryptography, SQLAlchemy, ...) come from the test
    # interpreter's site-packages through a .pth file instead of a second download of all of
    # them on every run: this test is about what the wheel carries, and --no-deps plus the
    # checks in _dependency_paths keep fleetdesk's code and presets coming from the wheel alone.
    # (Lines of a .pth only extend sys.path: the editable install's finder there stays off.)
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            work,
        ).strip()
    )
    lines = "".join(f"{path}\n" for path in _dependency_paths())
    (site / "zz-fleetdesk-test-dependencies.pth").write_text(lines, encoding="utf-8")
    workdir = work / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FLEETDESK_"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(venv, venv / "bin", workdir, env)


def _fleetdesk(inst: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(inst.bin / "fleetdesk"), *args],
        check=False,
        cwd=inst.workdir,
        env=inst.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_installed_package_is_the_wheel(installed: Installed) -> None:
    script = (
        "import json, sys, agent, collector\n"
        "from collector.preset_paths import default_rules_dir\n"
        "print(json.dumps({'agent': agent.__file__, 'collector': collector.__file__,\n"
        "    'presets': str(default_rules_dir()), 'path': sys.path}))\n"
    )
    found: dict[str, Any] = json.loads(
        _run([str(installed.bin / "python"), "-c", script], installed.workdir, installed.env)
    )
    venv = installed.venv.resolve()
    for key in ("agent", "collector", "presets"):
        assert venv in Path(found[key]).resolve().parents, f"{key} not from the wheel: {found}"
    assert Path(found["presets"]).name == "presets"
    assert not any(Path(p).resolve() == ROOT for p in found["path"] if p), found["path"]


def test_the_board_renders_from_the_wheel(installed: Installed) -> None:
    """Templates and the script are package data of collector.http.board: the installed
    board renders its sign-in page and serves its script without the checkout."""
    script = (
        "from starlette.applications import Starlette\n"
        "from starlette.testclient import TestClient\n"
        "import sqlalchemy as sa\n"
        "from collector.http.board import routes\n"
        "from collector.http.api.context import ApiContext\n"
        "from collector.metrics import Metrics\n"
        "ctx = ApiContext(db=sa.create_engine('sqlite://'), metrics=Metrics())\n"
        "client = TestClient(Starlette(routes=routes.board_routes(ctx)))\n"
        "page = client.get('/board/login')\n"
        "js = client.get('/board/static/board.js')\n"
        "print(page.status_code, 'API token' in page.text, js.status_code, routes.HERE)\n"
    )
    out = _run([str(installed.bin / "python"), "-W", "ignore", "-c", script], installed.workdir,
               installed.env).split()  # fmt: skip
    assert out[:3] == ["200", "True", "200"], out
    assert installed.venv.resolve() in Path(out[3]).resolve().parents, out


@pytest.mark.slow
def test_rules_check_defaults_to_the_shipped_presets(installed: Installed) -> None:
    done = _fleetdesk(installed, "rules", "check")
    assert done.returncode == 0, done.stderr
    presets = installed.venv.resolve() / "lib"
    line = done.stdout.strip()
    assert line.startswith(str(presets)) and "/collector/presets: " in line, line
    kinds = {"calendar": "calendars", "policy": "policies", "rule": "rules.d"}
    for kind, folder in kinds.items():
        count = len(list((ROOT / "rules" / folder).glob("*.yaml")))
        assert f"{count} {kind} file(s)" in line, line
    assert line.endswith(": ok"), line


@pytest.mark.slow
def test_sla_deadlines_from_a_shipped_policy(installed: Installed) -> None:
    args = ["--policy", "wthink", "--level", "urgent", "--start", "2026-03-02T10:00+08:00"]
    done = _fleetdesk(installed, "sla", "deadlines", *args, "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["policy"] == "wthink" and answer["level"] == "urgent"
    assert answer["start"] == "2026-03-02T10:00:00+08:00"
    assert answer["deadlines"], answer
    for deadline in answer["deadlines"].values():
        assert deadline > answer["start"], answer  # same offset: ISO text orders like time


@pytest.mark.slow
def test_replay_of_a_small_recording(installed: Installed) -> None:
    # pump3-gw's reports until its temperature fault cleared: the first of the example's faults.
    examples = ROOT / "examples"
    recording = installed.workdir / "pump3-gw.jsonl"
    lines = [
        line
        for line in (examples / "pump-station.jsonl").read_text(encoding="utf-8").splitlines()
        if '"pump3-gw"' in line and json.loads(line)["at"] <= "2026-11-25T02:16:00.000Z"
    ]
    recording.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The example's inventory cut to that device: the others would go silent and be faults.
    inventory = installed.workdir / "inventory.csv"
    rows = (examples / "inventory.csv").read_text(encoding="utf-8").splitlines()
    inventory.write_text(f"{rows[0]}\n{next(r for r in rows if r.startswith('pump3-gw,'))}\n")
    done = _fleetdesk(installed, "replay", "--inventory", inventory.name, recording.name)
    assert done.returncode == 0, done.stderr  # 1 would mean skipped lines
    expected = [
        line
        for line in (examples / "pump-station.expected.jsonl").read_text().splitlines()
        if '"pump3-gw"' in line and '"temperature_high"' in line
    ]
    assert [json.loads(x)["event"] for x in expected] == [
        "opened",
        "ticket_opened",
        "cleared",
        "resolved",
    ]
    assert done.stdout.splitlines() == expected
