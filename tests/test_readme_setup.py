"""The README's two set-up commands, as written, in a fresh copy with a fresh virtual environment.

The README's "Set-up" section gives two commands, ``make demo`` and ``make test``; this test
reads them from it (a changed README changes this test too) and runs them, in that order, in a
copy of the repository's files (``git ls-files``: tracked files and new ones that are not
ignored, what the next commit holds) with none of our virtual environments on the PATH: the
Makefile creates the copy's own ``.venv`` with pip (from PyPI; pip's cache may help) and
``make test`` uses the one ``make demo`` made, as for a reader who follows the README. Each
command must exit 0, and the set-up must print no deprecation banner (setuptools' about
``project.license``, pip's ``DEPRECATION:`` lines, Python's ``DeprecationWarning``).

What this test changes, and why, all outside the commands' text:

- ``PIP_VERBOSE=2`` (pip's own environment setting): the Makefile's ``pip install --quiet``
  hides the build backend's output, which is where setuptools prints its banners; one ``-v``
  more than the Makefile's ``-q`` shows them.
- ``make demo`` runs 300 s with 200 devices and the README says Ctrl-C stops it: it is stopped
  that way once its fleet runs and the fault script has played, by SIGINT to the demo process
  (Ctrl-C in a terminal interrupts make as well, which then says "Interrupt" and exits 2; here
  make passes on the demo's own exit status). The demo must print its summary and exit 0.
- ``make test`` runs the whole suite, this test included: inside this test that would be the
  suite again (and again). ``PYTEST_ADDOPTS`` (pytest's own environment setting) narrows its
  pytest step to ``NESTED_TESTS``; every other step of ``make test`` (system packages, venv,
  ruff, lint-imports, ruff format, mypy) runs as written. The whole suite is what CI's
  ``make test`` (``.ci/run``) runs, and CI's checkout makes its own fresh ``.venv`` too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = ["make demo", "make test"]  # the README's set-up commands, in its order
NESTED_TESTS = "tests/test_wire.py tests/test_module_size.py"  # fast, and no network port
NESTED = "FLEETDESK_SETUP_TEST_NESTED"  # set for the commands: this test does not run in itself
# a deprecation banner: setuptools' SetuptoolsDeprecationWarning, pip's "DEPRECATION: ...",
# Python's DeprecationWarning, "... is deprecated"
BANNER = re.compile(r"deprecat", re.IGNORECASE)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # a fresh .venv (pip), the demo, ruff, mypy
    pytest.mark.skipif(bool(os.environ.get(NESTED)), reason="run by this test's own make test"),
]


def setup_commands(readme: str) -> list[str]:
    """The indented command lines of the README's "Set-up" section."""
    section = readme[readme.index("## Set-up") : readme.index("\n## ", readme.index("## Set-up"))]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_the_readme_gives_the_set_up_commands_this_test_runs() -> None:
    assert setup_commands((REPO / "README.md").read_text()) == SETUP


def _copy_of_the_repository(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet in git
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name, follow_symlinks=False)


def _fresh_environment() -> dict[str, str]:
    """This environment without any virtual environment or import path of ours."""
    ours = {(REPO / ".venv" / "bin").resolve(), (Path(sys.prefix) / "bin").resolve()}
    if sys.prefix == sys.base_prefix:
        ours.discard((Path(sys.prefix) / "bin").resolve())  # not a venv: the system's Python
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p).resolve() not in ours]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PIP_VERBOSE"))}
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    return dict(env, PATH=os.pathsep.join(path), PIP_VERBOSE="2", **{NESTED: "1"})


class Output:
    """A command's stdout and stderr, read as it comes (a hung command cannot hang the test)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, list[str]()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(wanted in line for line in self.lines):
            assert self.proc.poll() is None or self.reader.is_alive(), self.text()[-5000:]
            assert time.monotonic() < deadline, f"no {wanted!r} after {timeout} s:\n{self.text()}"
            time.sleep(0.2)


def _start(command: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], Output]:
    proc = subprocess.Popen(
        shlex.split(command), cwd=cwd, env=env, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return proc, Output(proc)


def _finish(proc: subprocess.Popen[str], out: Output, timeout: float) -> str:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session this test started
        proc.wait()
        pytest.fail(f"still running after {timeout} s:\n{out.text()[-5000:]}")
    out.reader.join(30)
    return out.text()


def _demo_process(make_pid: int) -> int:
    """The ``fleetdesk demo`` process under make (make may run it through a shell)."""
    todo, seen = [make_pid], []
    while todo:
        parent = todo.pop()
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit():
                    continue
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                    continue
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"demo" in cmdline and any(part.endswith(b"fleetdesk") for part in cmdline):
                return int(entry.name)
            seen.append(int(entry.name))
            todo.append(int(entry.name))
    raise AssertionError(f"no fleetdesk demo process under make ({make_pid}): {seen}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_set_up_commands_run_as_written_in_a_fresh_copy(tmp_path: Path) -> None:
    copy = tmp_path / "checkout"
    copy.mkdir()
    _copy_of_the_repository(copy)
    assert not (copy / ".venv").exists()
    env = _fresh_environment()
    demo, test = setup_commands((REPO / "README.md").read_text())
    outputs = {}

    proc, out = _start(demo, copy, env)
    try:
        out.wait_for("agents powered on", timeout=600)  # after the fresh .venv's pip install
        out.wait_for("fault script:", timeout=60)
        time.sleep(5)  # a few of the script's steps, tickets and webhooks
        os.kill(_demo_process(proc.pid), signal.SIGINT)  # what Ctrl-C does to the demo
        outputs[demo] = _finish(proc, out, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, outputs[demo][-5000:]
    assert (copy / ".venv" / ".installed").exists()  # the demo made the copy's own .venv
    assert "interrupted: stopping" in outputs[demo]
    assert "tickets by policy and level" in outputs[demo]  # its summary

    proc, out = _start(test, copy, dict(env, PYTEST_ADDOPTS=NESTED_TESTS))
    outputs[test] = _finish(proc, out, timeout=600)
    assert proc.returncode == 0, outputs[test][-5000:]
    assert re.search(r"\d+ passed", outputs[test]), outputs[test][-3000:]

    for command, text in outputs.items():
        banners = [line for line in text.splitlines() if BANNER.search(line)]
        assert not banners, f"{command} printed deprecation banners:\n" + "\n".join(banners)
    shutil.rmtree(copy, ignore_errors=True)  # half a gigabyte of .venv; kept when it fails
