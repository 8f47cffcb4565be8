"""The device inventory: what each device is, where it sits and which contract covers it.

A CSV file with a header row (the columns of ``COLUMNS``, in any order, plus an optional
``labels`` column of ``key=value;key=value``) or a YAML file with a ``devices`` list of the same
fields. See ``docs/inventory.md``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from agent import wire
from collector.rules.faults import Criticality
from collector.rules.inputs import Maintenance

COLUMNS: Final = (
    "device",
    "tenant",
    "model",
    "class",
    "site",
    "parent",
    "criticality",
    "customer",
    "policy",
    "warranty_start",
    "warranty_months",
    "interval_s",
)
OPTIONAL_COLUMNS: Final = ("labels",)
DEFAULT_INTERVAL_S: Final = 60
UNASSIGNED: Final = "unassigned"  # the class and customer of devices not in the inventory


class InventoryError(ValueError):
    """An invalid inventory file, reported as ``file:line: key: reason`` in one line."""

    def __init__(self, file: str, line: int | None, key: str, reason: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {key}: {reason}")
        self.file, self.line, self.key, self.reason = file, line, key, reason


@dataclass(frozen=True, slots=True)
class Device:
    device: str
    tenant: str = ""
    model: str = ""
    cls: str = UNASSIGNED  # the inventory's ``class`` column
    site: str | None = None
    parent: str | None = None
    criticality: Criticality = Criticality.COMMON
    customer: str = UNASSIGNED
    policy: str = ""
    warranty_start: date | None = None
    warranty_months: int | None = None
    interval_s: int = DEFAULT_INTERVAL_S
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    assigned: bool = True  # False: announced itself, not in the inventory


@dataclass(frozen=True, slots=True)
class Inventory:
    devices: Mapping[str, Device]
    source: str = "<memory>"
    maintenance: tuple[Maintenance, ...] = ()  # windows announced in the inventory (YAML)
    sites: Mapping[str, tuple[str, ...]] = field(init=False)
    children: Mapping[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        sites: dict[str, list[str]] = {}
        children: dict[str, list[str]] = {}
        for dev in self.devices.values():
            if dev.site:
                sites.setdefault(dev.site, []).append(dev.device)
            if dev.parent:
                children.setdefault(dev.parent, []).append(dev.device)
        object.__setattr__(self, "sites", {k: tuple(v) for k, v in sites.items()})
        object.__setattr__(self, "children", {k: tuple(v) for k, v in children.items()})

    def get(self, device: str) -> Device | None:
        return self.devices.get(device)

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices.values())

    def __len__(self) -> int:
        return len(self.devices)

    def policies(self) -> set[str]:
        return {dev.policy for dev in self.devices.values()}


def unassigned(device: str, policy: str, *, model: str = "", tenant: str = "") -> Device:
    """A device that announced itself but is not in the inventory: monitored all the same."""
    return Device(device=device, tenant=tenant, model=model, policy=policy, assigned=False)


# --------------------------------------------------------------------------- loading


def load_inventory(path: str | Path) -> Inventory:
    """Read a CSV or YAML inventory; raises InventoryError naming file, line, key and reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(str(path), None, "file", f"cannot read: {exc}") from None
    if path.suffix.lower() in {".yaml", ".yml"}:
        return parse_yaml_inventory(text, str(path))
    return parse_csv_inventory(text, str(path))


def parse_csv_inventory(text: str, source: str = "<csv>") -> Inventory:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InventoryError(source, 1, "header", f"missing column(s): {', '.join(missing)}")
    unknown = [h for h in header if h not in COLUMNS and h not in OPTIONAL_COLUMNS]
    if unknown:
        raise InventoryError(source, 1, "header", f"unknown column(s): {', '.join(unknown)}")
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, Any]]] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise InventoryError(source, line, "row", "more fields than the header has")
        if not any((v or "").strip() for v in row.values()):
            continue
        fields: dict[str, Any] = {k: (v or "").strip() for k, v in row.items()}
        fields["labels"] = _csv_labels(fields.get("labels", ""), source, line)
        rows.append((line, fields))
    return _build(rows, source)


def parse_yaml_inventory(text: str, source: str = "<yaml>") -> Inventory:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InventoryError(source, line, "yaml", str(exc).splitlines()[0]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise InventoryError(source, None, "devices", "expected a top-level 'devices' list")
    for key in doc:
        if key not in ("devices", "maintenance"):
            raise InventoryError(source, None, str(key), "unknown key (devices, maintenance)")
    rows: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(doc["devices"], start=1):
        if not isinstance(entry, dict):
            raise InventoryError(source, None, f"devices[{index}]", "expected a mapping")
        unknown = [k for k in entry if k not in COLUMNS and k not in OPTIONAL_COLUMNS]
        if unknown:
            raise InventoryError(source, None, f"devices[{index}]", f"unknown key {unknown[0]!r}")
        fields = {k: "" if entry.get(k) is None else entry.get(k) for k in COLUMNS}
        labels = entry.get("labels") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InventoryError(source, None, f"devices[{index}].labels", "mapping of strings")
        fields["labels"] = labels
        rows.append((index, {k: v if isinstance(v, dict) else str(v) for k, v in fields.items()}))
    inventory = _build(rows, source, line_is_index=True)
    windows = tuple(
        _window(raw, f"maintenance[{i}]", source, inventory)
        for i, raw in enumerate(doc.get("maintenance") or [], start=1)
    )
    return replace(inventory, maintenance=windows)


def _window(raw: object, key: str, source: str, inventory: Inventory) -> Maintenance:
    """``{device: ID | site: NAME, start: ISO 8601, end: ISO 8601}``."""
    if not isinstance(raw, dict) or set(raw) - {"device", "site", "start", "end"}:
        raise InventoryError(source, None, key, "expected {device or site, start, end}")
    times = []
    for part in ("start", "end"):
        value = raw.get(part)
        parsed = wire.parse_ts(value.isoformat() if isinstance(value, datetime) else value)
        if isinstance(parsed, wire.DecodeError):
            raise InventoryError(source, None, f"{key}.{part}", parsed.detail)
        times.append(parsed)
    device, site = raw.get("device"), raw.get("site")
    if device is not None and str(device) not in inventory.devices:
        raise InventoryError(source, None, f"{key}.device", f"unknown device {device!r}")
    if site is not None and str(site) not in inventory.sites:
        raise InventoryError(source, None, f"{key}.site", f"unknown site {site!r}")
    try:
        return Maintenance(
            times[0],
            times[1],
            device=None if device is None else str(device),
            site=None if site is None else str(site),
        )
    except ValueError as exc:
        raise InventoryError(source, None, key, str(exc)) from None


def _csv_labels(text: str, source: str, line: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not wire.valid_name(key.strip()):
            raise InventoryError(source, line, "labels", f"expected key=value;...: {part!r}")
        labels[key.strip()] = value.strip()
    return labels


def _build(
    rows: Iterable[tuple[int, dict[str, Any]]], source: str, *, line_is_index: bool = False
) -> Inventory:
    devices: dict[str, Device] = {}
    lines: dict[str, int] = {}

    def fail(line: int, key: str, reason: str) -> InventoryError:
        if line_is_index:
            return InventoryError(source, None, f"devices[{line}].{key}", reason)
        return InventoryError(source, line, key, reason)

    for line, f in rows:
        device = _device(f, line, fail)
        if device.device in devices:
            raise fail(line, "device", f"duplicate device {device.device!r}")
        devices[device.device] = device
        lines[device.device] = line
    for dev in devices.values():
        if dev.parent is not None and dev.parent not in devices:
            raise fail(lines[dev.device], "parent", f"unknown device {dev.parent!r}")
    for dev in devices.values():  # a parent chain must end
        seen = {dev.device}
        cursor = dev.parent
        while cursor is not None:
            if cursor in seen:
                raise fail(lines[dev.device], "parent", f"parent cycle through {cursor!r}")
            seen.add(cursor)
            cursor = devices[cursor].parent
    return Inventory(devices=MappingProxyType(devices), source=source)


def _device(f: dict[str, Any], line: int, fail: Any) -> Device:
    device = f["device"]
    if not wire.valid_id(device):
        raise fail(line, "device", f"invalid device id {device!r}")
    tenant = f["tenant"]
    if tenant and not wire.valid_id(tenant):
        raise fail(line, "tenant", f"invalid tenant id {tenant!r}")
    if not f["class"]:
        raise fail(line, "class", "empty (router, dtu, cloudbox, gateway, ...)")
    try:
        criticality = Criticality(f["criticality"] or "common")
    except ValueError:
        raise fail(
            line, "criticality", f"must be common or uncommon: {f['criticality']!r}"
        ) from None
    if not f["policy"]:
        raise fail(line, "policy", "empty (a preset name or a policy file)")
    start: date | None = None
    if f["warranty_start"]:
        try:
            start = date.fromisoformat(f["warranty_start"])
        except ValueError:
            raise fail(line, "warranty_start", f"not a date: {f['warranty_start']!r}") from None
    months = (
        _int(f["warranty_months"], line, "warranty_months", fail, low=0)
        if f["warranty_months"]
        else None
    )
    interval = (
        _int(f["interval_s"], line, "interval_s", fail, low=1)
        if f["interval_s"]
        else DEFAULT_INTERVAL_S
    )
    parent = f["parent"] or None
    if parent == device:
        raise fail(line, "parent", "a device cannot be its own parent")
    return Device(
        device=device,
        tenant=tenant,
        model=f["model"],
        cls=f["class"],
        site=f["site"] or None,
        parent=parent,
        criticality=criticality,
        customer=f["customer"],
        policy=f["policy"],
        warranty_start=start,
        warranty_months=months,
        interval_s=interval,
        labels=MappingProxyType(dict(f.get("labels") or {})),
    )


def _int(text: str, line: int, key: str, fail: Any, *, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise fail(line, key, f"not an integer: {text!r}") from None
    if value < low:
        raise fail(line, key, f"must be at least {low}: {value}")
    return value
