"""Probes: one small module each, listed in the explicit registry below.

Probe modules are imported only when configured: the agent's memory is part of its budget.
A probe is enabled by its table in the configuration (``[probes.system]``, ...; every
``[[probes.exec]]`` is one probe). Each entry turns its options into probe objects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.config_types import ProbesConfig
from agent.probes.base import Probe, ProbeEvent, ProbeResult, Reading, Reason, Unavailable

__all__ = ["REGISTRY", "Probe", "ProbeEvent", "ProbeResult", "Reading", "Reason", "Unavailable"]

Builder = Callable[[ProbesConfig, Path], list[Probe]]


def _system(c: ProbesConfig, root: Path) -> list[Probe]:
    if c.system is None:
        return []
    from agent.probes import system

    return [system.build(root, c.system.disk_path)]


def _interfaces(c: ProbesConfig, root: Path) -> list[Probe]:
    if c.interfaces is None:
        return []
    from agent.probes import interfaces

    return [interfaces.build(root, c.interfaces.include, c.interfaces.exclude)]


def _reachability(c: ProbesConfig, root: Path) -> list[Probe]:
    r = c.reachability
    if r is None:
        return []
    from agent.probes import reachability

    return [reachability.build(r.targets, r.count, r.timeout_s, root)]


def _cellular(c: ProbesConfig, root: Path) -> list[Probe]:
    m = c.cellular
    if m is None:
        return []
    from agent.probes import cellular

    return [cellular.build(m, root)]


def _serial(c: ProbesConfig, root: Path) -> list[Probe]:
    if c.serial is None:
        return []
    from agent.probes import serial

    return [serial.build(c.serial.port, root)]


def _exec(c: ProbesConfig, root: Path) -> list[Probe]:
    if not c.exec:
        return []
    from agent.probes import exec_check

    return [exec_check.build(e.name, e.command, e.timeout_s, root) for e in c.exec]


REGISTRY: tuple[tuple[str, Builder], ...] = (
    ("system", _system),
    ("interfaces", _interfaces),
    ("reachability", _reachability),
    ("cellular", _cellular),
    ("serial", _serial),
    ("exec", _exec),
)


def build_probes(config: ProbesConfig, root: Path) -> list[Probe]:
    return [probe for _, build in REGISTRY for probe in build(config, root)]
