"""The README's 5-minute tour, run as written: every indented command of the tour section.

The commands are read from the README and must be exactly the ones listed in ``TOUR`` (so a
changed README changes this test too); each runs from a copy of the checkout's shipped files
(README, Makefile, deploy/, examples/, rules/, scripts/) with ``.venv/bin`` first on the PATH,
as after ``. .venv/bin/activate``, by ``bash -o pipefail`` when they use the shell (``|``,
``&&``, ``>``, ``$``); a line ending in ``\\`` continues on the next. ``NAME=VALUE`` (with or
without ``export``) is evaluated by bash, ``$(...)`` included, and must succeed; NAME then is
in the environment of the commands after it, as in the reader's shell. ``$`` lines must print
what the README shows (stdout and stderr, as a terminal shows them). Long-running
commands ("serve") must start and keep running (the collector must answer /healthz) until the
end of their section, then get SIGTERM. The one change to a command: ``make`` is told that
.venv is up to date (``-o .venv/.installed``) so that it never reinstalls the shared test
environment. The commands that talk to a broker need one on 127.0.0.1:1883, as the README
says: the test starts a Mosquitto there unless one is already listening. The board is a page
the README says to open in a browser and sign in to with the tour's token: the test posts that
token to the board's sign-in form and checks the board answers, while the collector runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.services import require_program, stop_process, wait_for_port

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# command as written, in order, and how it runs: once (exit 0), serve (keeps running),
# env (NAME=VALUE: the variable is set for the commands after it)
TOUR: list[tuple[str, str]] = [
    ("fleetdesk demo --devices 40 --duration 30 --summary summary.json", "once"),
    ("mkdir -p .fleetdesk-agent && openssl rand -hex 32 > .fleetdesk-agent/command.key", "once"),
    ("sed -i '/^# \\[commands\\]/,/^$/s/^# //' deploy/agent.example.toml", "once"),
    ("make agent", "serve"),
    ("mosquitto_sub -v -t 'fleet/v1/#'", "serve"),
    (
        "fleetdesk agent sign-command --config deploy/agent.example.toml --cmd ping "
        "| mosquitto_pub -t fleet/v1/demo/demo-gw-0001/cmd -s",
        "once",
    ),
    (".venv/bin/fleetdesk agent dying-gasp --config deploy/agent.example.toml", "once"),
    (
        "fleetdesk sla due --calendar cn-workdays --start 2026-10-01T03:00+08:00 --duration 45m",
        "once",
    ),
    (
        "fleetdesk sla deadlines --policy nanjing-instruments --level major "
        "--start 2026-10-01T03:00+08:00 --json",
        "once",
    ),
    (
        "fleetdesk sla classify --policy xian-integrator --kind device_offline --impact outage "
        "--scope site",
        "once",
    ),
    ("fleetdesk rules check rules", "once"),
    (
        ".venv/bin/fleetdesk replay --inventory examples/inventory.csv examples/pump-station.jsonl",
        "once",
    ),
    ("export FLEETDESK_DESK_SECRET=whsec_ZmxlZXRkZXNrLXRvdXItZGVzay1zZWNyZXQ=", "env"),
    ("fleetdesk collector --config examples/collector.yaml --check", "once"),
    ("fleetdesk collector --config examples/collector.yaml", "serve"),
    ("fleetdesk tickets list --db sqlite:///.fleetdesk-demo/state.db --all", "once"),
    ("fleetdesk tickets outbox --db sqlite:///.fleetdesk-demo/state.db", "once"),
    ("fleetdesk deliver --db sqlite:///state.db --sinks examples/sinks.yaml", "serve"),
    (
        "fleetdesk device add --tenant acme --id pump5-gw --passwd mosquitto.passwd "
        "--acl mosquitto.acl --out pump5-gw",
        "once",
    ),
    ("fleetdesk collector --config examples/collector.yaml", "serve"),
    ("TOKEN=$(fleetdesk token create --role operator --db sqlite:///state.db)", "env"),
    (
        'curl -fsS -H "Authorization: Bearer $TOKEN" '
        "'http://127.0.0.1:9108/api/v1/tickets?sla_status=warning'",
        "once",
    ),
]
HOW = dict(TOUR)
# what a long-running command's output must show (waited for) once started, and before its
# section ends
SHOWS_AT_START = {"mosquitto_sub -v -t 'fleet/v1/#'": ("fleet/v1/demo/demo-gw-0001/telemetry",)}
SHOWS_AT_END = {  # the signed ping obeyed: a refusal is a reply too, with "ok":false
    "mosquitto_sub -v -t 'fleet/v1/#'": ("fleet/v1/demo/demo-gw-0001/cmd/reply", '"pong":true')
}
COPIED = ("README.md", "Makefile", "pyproject.toml", "deploy", "examples", "rules", "scripts")


@dataclass
class Command:
    section: str
    text: str
    expected: list[str] = field(default_factory=list)  # what a `$` line's output must be


def tour_commands(readme: str) -> list[Command]:
    """Indented blocks of the tour: commands, or `$ command` lines each with its output."""
    tour = readme[readme.index("## 5-minute tour") : readme.index("## Documentation")]
    commands: list[Command] = []
    section, in_block, dollar, previous_blank = "", False, False, True
    for line in tour.splitlines():
        if line.startswith("### "):
            section = line[4:]
        if not line.strip():
            previous_blank = True
            continue
        if line.startswith("    ") and (in_block or previous_blank):
            if not in_block:
                in_block, dollar = True, line[4:].startswith("$ ")
            body = line[4:]
            if commands and commands[-1].text.endswith("\\") and in_block and not dollar:
                joined = f"{commands[-1].text[:-1].rstrip()} {body.strip()}"  # a `\` continuation
                commands[-1].text = re.split(r"\s{2,}#", joined)[0].rstrip()
            elif body.startswith("$ "):
                commands.append(Command(section, body[2:]))
            elif dollar:
                commands[-1].expected.append(body)
            else:
                commands.append(Command(section, re.split(r"\s{2,}#", body)[0].rstrip()))
        else:
            in_block = False
        previous_blank = False
    return commands


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def broker_1883(tmp_path: Path) -> Iterator[None]:
    if _listening(1883):  # the README's broker is there already
        yield
        return
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([require_program("mosquitto"), "-c", str(conf)])
    wait_for_port(1883)
    yield
    stop_process(proc)


def test_the_readme_lists_the_tour_this_test_runs() -> None:
    commands = tour_commands((REPO / "README.md").read_text())
    assert [c.text for c in commands] == [text for text, _ in TOUR], "README tour and TOUR differ"


def _argv(text: str) -> list[str]:
    """How a command runs: by a shell when it uses one (``|``, ``&&``, ``>``, ``$``), else as is."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    if "$" in text or any(token and set(token) <= set("();<>|&") for token in lexer):
        return ["bash", "-o", "pipefail", "-c", text]  # a failing stage fails it
    argv = shlex.split(text)
    if argv[0] == "make":
        argv[1:1] = ["-o", ".venv/.installed"]
    return argv


def _run_once(cmd: Command, cwd: Path, env: dict[str, str]) -> str:
    argv = _argv(cmd.text)
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True, timeout=240, check=False,
        stderr=subprocess.STDOUT if cmd.expected else subprocess.PIPE,  # `$`: as a terminal shows
    )  # fmt: skip
    assert done.returncode == 0, f"{cmd.text}\n{done.stdout[-3000:]}\n{(done.stderr or '')[-3000:]}"
    if cmd.expected:
        assert done.stdout.splitlines() == cmd.expected, cmd.text
    return done.stdout


def _assign(cmd: Command, cwd: Path, env: dict[str, str]) -> str:
    """``[export ]NAME=VALUE`` as the reader's shell runs it; returns NAME's value.

    ``export`` is left out here because ``export NAME=$(cmd)`` succeeds even when ``cmd``
    fails; the assignment alone has the status of its ``$(...)``, so a failing command fails.
    """
    text = cmd.text.removeprefix("export ")
    name = text.partition("=")[0]
    assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), cmd.text
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f'{text} || exit; printf %s "${name}"'],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout, f"{cmd.text}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _signs_in_to_the_board(token: str) -> str:
    """What the README says to do in a browser: the board's sign-in form, then the board."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    form = urllib.parse.urlencode({"token": token}).encode()
    login = "http://127.0.0.1:9108/board/login"
    with opener.open(login, data=form, timeout=10) as reply:  # 303 to /board, with the cookie
        assert reply.status == 200 and reply.url.endswith("/board"), reply.url
        return reply.read().decode()


def _serve(cmd: Command, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = _argv(cmd.text)
    log = (cwd / f"serve-{len(list(cwd.glob('serve-*')))}.log").open("w")
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    proc.log = Path(log.name)  # type: ignore[attr-defined]
    return proc


def _wait_shows(proc: subprocess.Popen[str], wanted: tuple[str, ...]) -> None:
    log: Path = proc.log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while not all(s in log.read_text() for s in wanted):
        assert time.monotonic() < deadline, f"never showed {wanted}:\n{log.read_text()}"
        time.sleep(0.2)


def _stop(cmd: Command, proc: subprocess.Popen[str], *, check: bool = True) -> str:
    if check:
        _wait_shows(proc, SHOWS_AT_END.get(cmd.text, ()))
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of the process this test started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.log.read_text()  # type: ignore[attr-defined,no-any-return]


def test_every_tour_command_runs_as_written(tmp_path: Path, broker_1883: None) -> None:
    assert not _listening(9108), "the tour's collector needs 127.0.0.1:9108 free"
    require_program("curl")  # the API's section uses it; a missing program fails, never skips
    work = tmp_path / "checkout"
    work.mkdir()
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("*.db"))
        else:
            shutil.copy2(source, work / name)
    (work / ".venv").symlink_to(REPO / ".venv")
    venv_bin = REPO / ".venv" / "bin"
    env = dict(os.environ, PATH=f"{venv_bin}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    env.pop("FLEETDESK_DESK_SECRET", None)
    serving: list[tuple[Command, subprocess.Popen[str]]] = []
    outputs: dict[str, str] = {}
    section = ""
    commands = tour_commands((REPO / "README.md").read_text())
    try:
        for cmd in commands:
            if cmd.section != section:
                ending, serving, section = serving, [], cmd.section
                for done in ending:  # a command the tour runs twice: both outputs are kept
                    outputs[done[0].text] = outputs.get(done[0].text, "") + _stop(*done)
            how = HOW[cmd.text]
            if how == "env":
                name = cmd.text.removeprefix("export ").partition("=")[0]
                env[name] = _assign(cmd, work, env)
            elif how == "once":
                outputs[cmd.text] = _run_once(cmd, work, env)
            else:
                proc = _serve(cmd, work, env)
                serving.append((cmd, proc))
                if "collector --config" in cmd.text:
                    wait_for_port(9108, timeout=30)
                    with urllib.request.urlopen("http://127.0.0.1:9108/healthz", timeout=5) as r:
                        assert r.status == 200
                time.sleep(3)  # up and working (the agent reports, the worker polls)
                _wait_shows(proc, SHOWS_AT_START.get(cmd.text, ()))
                assert proc.poll() is None, f"{cmd.text} stopped:\n{proc.log.read_text()}"  # type: ignore[attr-defined]
        # the board, while the last section's collector runs: signed in with the tour's token
        assert "Faults" in _signs_in_to_the_board(env["TOKEN"])
    finally:
        for done in serving:
            outputs[done[0].text] = outputs.get(done[0].text, "") + _stop(*done, check=False)
    replay = outputs[
        ".venv/bin/fleetdesk replay --inventory examples/inventory.csv examples/pump-station.jsonl"
    ]
    assert replay == (REPO / "examples" / "pump-station.expected.jsonl").read_text()
    listing = outputs["fleetdesk tickets list --db sqlite:///.fleetdesk-demo/state.db --all"]
    number = listing.split()[0]  # and `tickets show` with a number from the list
    shown = _run_once(
        Command("", f"fleetdesk tickets show --db sqlite:///.fleetdesk-demo/state.db {number}"),
        work,
        env,
    )
    assert f'"number": "{number}"' in shown
    warning = outputs[next(text for text, _ in TOUR if text.startswith("curl "))]
    assert isinstance(json.loads(warning)["items"], list), warning  # the API's ticket page
    assert env["TOKEN"].startswith("fdt_")
    for text, out in outputs.items():
        assert "Traceback" not in out, f"{text}:\n{out}"
