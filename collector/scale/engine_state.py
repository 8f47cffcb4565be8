"""The rules engine's saved state, one blob per partition (``rules_engine/p007``).

A collector's engine judges the devices of the partitions it owns; its exported state
(``collector.rules.snapshot.export_state``) is split by partition when saved, and the blobs of
the partitions it takes are merged when it starts, so a partition moves with its open faults,
holds and clocks, and no other partition's state comes along. Pure functions over the JSON-able
snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collector.scale.partitions import Partitioning

PREFIX = "rules_engine/p"


def state_name(part: int) -> str:
    return f"{PREFIX}{part:03d}"


def split(
    state: Mapping[str, Any], partitioning: Partitioning, parts: Iterable[int]
) -> dict[str, dict[str, Any]]:
    """``export_state`` output -> {state name: the blob of one partition}, for ``parts``."""
    out: dict[int, dict[str, Any]] = {
        p: {
            "version": state["version"],
            "now": state["now"],
            "devices": {},
            "sites": {},
            "sites_cleared": {},
            "maintenance": [],
        }
        for p in parts
    }
    for name, entry in state["devices"].items():
        part = partitioning.of_device(name)
        if part in out:
            out[part]["devices"][name] = entry
    for key in ("sites", "sites_cleared"):
        for site, value in state[key].items():
            part = partitioning.of_subject(site)
            if part in out:
                out[part][key][site] = value
    for window in state["maintenance"]:  # [id, start, end, device, site]
        part = partitioning.of_subject(window[3] or window[4] or "")
        for p in [part] if part is not None else list(out):  # unplaced: everyone keeps it
            if p in out:
                out[p]["maintenance"].append(window)
    return {state_name(p): blob for p, blob in out.items()}


def merge(blobs: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The blobs of several partitions as one engine state (None: none saved yet)."""
    found = [b for b in blobs if b]
    if not found:
        return None
    merged: dict[str, Any] = {
        "version": found[0]["version"],
        "now": max((b["now"] for b in found if b["now"] is not None), default=None),
        "devices": {},
        "sites": {},
        "sites_cleared": {},
        "maintenance": [],
    }
    seen: set[Any] = set()
    for blob in found:
        for key in ("devices", "sites", "sites_cleared"):
            merged[key].update(blob[key])
        for window in blob["maintenance"]:
            if window[0] not in seen:
                seen.add(window[0])
                merged["maintenance"].append(window)
    return merged
