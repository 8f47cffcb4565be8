"""Mutation testing (mutmut 3) of the code where a silent bug costs most; prints a JSON summary.

    python scripts/mutation.py                 # run every configured module, smallest first
    python scripts/mutation.py dedup signing   # only modules whose name contains a word
    python scripts/mutation.py --report        # no run: summarise what mutants/ holds
    python scripts/mutation.py --survivors wire  # re-run only the survivors (after new tests)
    MUTATION_MAX_CHILDREN=1 nice -n 10 python scripts/mutation.py rules  # one mutant at a time

The modules and the test selection are ``[tool.mutmut]`` in pyproject.toml; mutmut runs each
mutant against only the tests that called the mutated function. Results are kept in
``mutants/`` between runs: a re-run tests only the mutants not killed yet (``--all``: every
one again), and mutmut forgets the results of functions whose code changed. Mutants judged
equivalent are listed, each with its reason, in the table of docs/testing.md; they leave the
score's denominator. Per package: mutants, killed (a test failed, or it hung and timed out),
survived (no test failed, or no test reached it), not_checked (not run yet), equivalent, and
score = killed / (checked - equivalent).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests", "suspicious"}
# Packages that are reported as one (the rest: one line per module).
GROUPS = ("collector.sla", "collector.rules")
EQUIVALENT_ROW = re.compile(r"^\|\s*`([\w.ǁ]+__mutmut_\d+)`\s*\|")


def max_children() -> int:
    """Mutants tested at once: ``$MUTATION_MAX_CHILDREN`` (1 on a shared machine), else the CPUs."""
    return int(os.environ.get("MUTATION_MAX_CHILDREN") or os.cpu_count() or 1)


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    modules: list[tuple[int, str]] = []
    for pattern in config["only_mutate"]:
        for path in sorted(ROOT.glob(pattern)):
            if path.name != "__init__.py":
                size = len(path.read_text().splitlines())
                modules.append((size, ".".join(path.relative_to(ROOT).with_suffix("").parts)))
    return [name for _, name in sorted(modules)]


def equivalent() -> set[str]:
    text = (ROOT / "docs" / "testing.md").read_text()
    return {m.group(1) for line in text.splitlines() if (m := EQUIVALENT_ROW.match(line))}


def package_of(mutant: str) -> str:
    module = mutant.split(".x", 1)[0]
    for group in GROUPS:
        if module.startswith(group + "."):
            return group
    return module


def results() -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    found: dict[str, str] = {}
    for meta in sorted((ROOT / "mutants").glob("**/*.py.meta")):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            found[name] = status_by_exit_code[code]
    return found


def summary(statuses: dict[str, str], equivalents: set[str]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, status in statuses.items():
        row = counts[package_of(name)]
        row["mutants"] += 1
        if name in equivalents:
            row["equivalent"] += 1
        elif status in KILLED:
            row["killed"] += 1
        elif status in SURVIVED:
            row["survived"] += 1
        else:
            row["not_checked"] += 1
    packages: dict[str, Any] = {}
    for package in sorted(counts):
        row = counts[package]
        judged = row["killed"] + row["survived"]
        packages[package] = {
            "mutants": row["mutants"],
            "killed": row["killed"],
            "survived": row["survived"],
            "not_checked": row["not_checked"],
            "equivalent": row["equivalent"],
            "score": round(row["killed"] / judged, 3) if judged else None,
        }
    total = {k: sum(p[k] for p in packages.values()) for k in ("mutants", "killed", "survived")}
    return {"tool": "mutmut", "packages": packages, "total": total}


def rerun_survivors(words: list[str], jobs: int) -> int:
    """Run mutmut again on the survivors of the modules matching ``words`` (all: none given)."""
    equivalents = equivalent()
    names = sorted(
        name
        for name, status in results().items()
        if status in SURVIVED
        and name not in equivalents
        and (not words or any(w in name.split(".x", 1)[0] for w in words))
    )
    if names:
        mutmut = Path(sys.executable).with_name("mutmut")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        print(f"mutation: {len(names)} survivors again", file=sys.stderr, flush=True)
        command = [str(mutmut), "run", "--max-children", str(jobs), *names]
        done = subprocess.run(command, check=False, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        if done.returncode != 0:
            print(f"mutmut failed ({done.returncode})", file=sys.stderr)
            return done.returncode
    print(json.dumps(summary(results(), equivalents), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("words", nargs="*", help="only modules whose dotted name contains one")
    parser.add_argument("--report", action="store_true", help="summarise mutants/ without a run")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="re-run only the mutants that survived (not the equivalent ones)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=max_children(),
        help="mutants tested at once (default: $MUTATION_MAX_CHILDREN, else the CPU count)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="run every mutant again, the killed ones too (after tests were removed or weakened)",
    )
    args = parser.parse_args(argv)
    if args.survivors:
        return rerun_survivors(args.words, args.jobs)
    if not args.report:
        modules = configured_modules()
        if args.words:
            modules = [m for m in modules if any(w in m for w in args.words)]
        mutmut = Path(sys.executable).with_name("mutmut")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        known = results()  # empty before the first run: mutmut then generates every mutant
        for module in modules:  # smallest first: early figures for the cheap modules
            names = [n for n in known if n.split(".x", 1)[0] == module]
            if known and not names:
                print(f"mutation: {module} has no mutants", file=sys.stderr, flush=True)
                continue  # constants only; mutmut refuses a filter that matches nothing
            # mutmut re-runs every mutant it is given by name: give it only those not killed
            # yet (mutmut itself forgets the results of functions whose code changed)
            equivalents = equivalent()
            todo = (
                names
                if args.all
                else [n for n in names if known[n] not in KILLED and n not in equivalents]
            )
            if known and not todo:
                print(f"mutation: {module}: every mutant killed already", file=sys.stderr)
                continue
            print(f"mutation: {module} ({len(todo) or 'all'})", file=sys.stderr, flush=True)
            command = [str(mutmut), "run", "--max-children", str(args.jobs)]
            command += todo if known else [f"{module}.*"]
            done = subprocess.run(
                command, check=False, cwd=ROOT, env=env, stdout=subprocess.DEVNULL
            )
            if done.returncode != 0:
                print(f"mutmut failed on {module} ({done.returncode})", file=sys.stderr)
                return done.returncode
    print(json.dumps(summary(results(), equivalent()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
