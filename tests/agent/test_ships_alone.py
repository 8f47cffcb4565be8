"""The agent ships alone to gateways: it imports nothing but itself, paho-mqtt and the stdlib."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import agent

ROOT = Path(__file__).resolve().parents[2]


def test_every_agent_module_imports_only_the_stdlib_and_paho() -> None:
    modules = ["agent", *(m.name for m in pkgutil.walk_packages(agent.__path__, "agent."))]
    assert "agent.runner" in modules and "agent.probes.cellular" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    # A fresh interpreter, so that nothing the test run imported counts.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    roots = set(json.loads(done.stdout))
    foreign = roots - set(sys.stdlib_module_names) - {"agent", "paho", "__main__"}
    # Editable installs add their finder module; it is not a dependency of the agent.
    foreign = {r for r in foreign if not r.startswith(("__editable__", "_distutils_hack"))}
    assert foreign == set(), f"the agent imports more than paho-mqtt and the stdlib: {foreign}"


def test_the_agent_does_not_import_dataclasses_or_inspect() -> None:
    # dataclasses pulls in inspect, ast, dis and tokenize: 0.9 MB of a gateway's memory. The
    # agent's value classes are NamedTuples and its probes plain classes with __slots__.
    modules = ["agent", *(m.name for m in pkgutil.walk_packages(agent.__path__, "agent."))]
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(['dataclasses' in sys.modules, 'inspect' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [False, False], "an agent module imports dataclasses/inspect"
