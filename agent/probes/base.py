"""What every probe shares: its result types, the reasons a probe can be unavailable, and a
guarded way to run a helper program.

A probe is a small object with a ``name`` and ``collect(now)``; it reads files under the host
root (``/`` unless configured) or runs a program, and returns a :class:`Reading` or an
:class:`Unavailable` with a named reason. Missing hardware or tools are never an exception.
"""

from __future__ import annotations

import enum
import shutil
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol

from agent.wire import MetricValue


class Reason(enum.StrEnum):
    """Why a probe has nothing to report this time."""

    NO_PROGRAM = "no_program"  # the helper program (mmcli, ping, ...) is not installed
    NO_DEVICE = "no_device"  # the hardware (modem, serial port, sensor) is not there
    NO_DATA = "no_data"  # the source exists but says nothing usable
    PERMISSION = "permission"  # the agent may not read the source
    TIMEOUT = "timeout"  # the helper did not answer in time
    FAILED = "failed"  # the helper ran and reported failure
    ERROR = "error"  # the probe itself failed unexpectedly (a bug: see the log)


class SlotRecord:
    """Field-wise ``==`` and a ``repr`` over ``__slots__`` for the mutable probe classes (what
    ``@dataclass`` gave them, without importing ``dataclasses``). ``_hidden`` leaves fields out
    of the ``repr``. Defining ``__eq__`` makes instances unhashable, as before."""

    __slots__ = ()
    _hidden: ClassVar[tuple[str, ...]] = ()
    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as with @dataclass

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        shown = (f"{n}={getattr(self, n)!r}" for n in names if n not in self._hidden)
        return f"{type(self).__qualname__}({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names: tuple[str, ...] = self.__slots__
        return all(getattr(self, n) == getattr(other, n) for n in names)


class ProbeEvent(NamedTuple):
    name: str
    data: dict[str, Any] = {}  # noqa: RUF012 (shared default: never mutated)


class Reading(NamedTuple):
    metrics: dict[str, MetricValue]
    events: tuple[ProbeEvent, ...] = ()


class Unavailable(NamedTuple):
    reason: Reason
    detail: str = ""


ProbeResult = Reading | Unavailable


class Probe(Protocol):
    @property
    def name(self) -> str: ...

    def collect(self, now: float) -> ProbeResult:
        """Measure once; ``now`` is a monotonic time in seconds for rate calculations."""
        ...


class Completed(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_program(argv: tuple[str, ...] | list[str], timeout: float) -> Completed | Unavailable:
    """Run a helper program with a timeout; a missing program or a hang is a named reason."""
    import subprocess  # only probes that run programs pay for it (memory on small gateways)

    program = shutil.which(argv[0])
    if program is None:
        return Unavailable(Reason.NO_PROGRAM, f"{argv[0]} is not installed")
    try:
        done = subprocess.run(
            [program, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Unavailable(Reason.TIMEOUT, f"{argv[0]} gave no answer in {timeout:g}s")
    except PermissionError:
        return Unavailable(Reason.PERMISSION, f"may not run {program}")
    except OSError as exc:
        return Unavailable(Reason.FAILED, f"{argv[0]}: {exc.strerror}")
    return Completed(done.returncode, done.stdout, done.stderr)


def read_text(path: Path) -> str | None:
    """A small file's text, or None when it is missing or unreadable."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def host_path(root: Path, absolute: str) -> Path:
    """``/proc/stat`` under the configured host root."""
    return root / absolute.lstrip("/")
