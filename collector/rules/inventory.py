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
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node, parse_yaml
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


InventoryError = ConfigError  # the old name: ``file:line: key: reason`` in one line


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
    """Read a CSV or YAML inventory; raises ConfigError naming file, line, key and reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "file", f"cannot read: {exc}", None) from None
    if path.suffix.lower() in {".yaml", ".yml"}:
        return parse_yaml_inventory(text, str(path))
    return parse_csv_inventory(text, str(path))


def parse_csv_inventory(text: str, source: str = "<csv>") -> Inventory:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ConfigError(source, "header", f"missing column(s): {', '.join(missing)}", 1)
    unknown = [h for h in header if h not in COLUMNS and h not in OPTIONAL_COLUMNS]
    if unknown:
        raise ConfigError(source, "header", f"unknown column(s): {', '.join(unknown)}", 1)
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, Any]]] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise ConfigError(source, "row", "more fields than the header has", line)
        if not any((v or "").strip() for v in row.values()):
            continue
        fields: dict[str, Any] = {k: (v or "").strip() for k, v in row.items()}
        fields["labels"] = _csv_labels(fields.get("labels", ""), source, line)
        rows.append((line, fields))
    return _build(rows, source)


def parse_yaml_inventory(text: str, source: str = "<yaml>") -> Inventory:
    root = parse_yaml(text, source)
    top = root.mapping(frozenset({"devices", "maintenance"}))
    if "devices" not in top:
        raise ConfigError(source, "devices", "expected a top-level 'devices' list", root.line)
    rows: list[tuple[int, dict[str, Any]]] = []
    lines: dict[int, int] = {}
    allowed = frozenset((*COLUMNS, *OPTIONAL_COLUMNS))
    for index, entry in enumerate(top["devices"].items(), start=1):
        key = f"devices[{index}]"
        raw = _yaml_mapping(entry, key)
        unknown = [k for k in raw if k not in allowed]
        if unknown:
            raise ConfigError(source, key, f"unknown key {unknown[0]!r}", raw[unknown[0]].line)
        fields: dict[str, Any] = {}
        for name in COLUMNS:
            value = raw[name].value if name in raw else None
            fields[name] = "" if value is None else str(value)
        labels = raw["labels"].value if "labels" in raw else None
        labels = labels or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ConfigError(source, f"{key}.labels", "mapping of strings", entry.line)
        fields["labels"] = labels
        rows.append((index, fields))
        lines[index] = entry.line
    inventory = _build(rows, source, lines=lines)
    windows = tuple(
        _window(node, f"maintenance[{i}]", inventory)
        for i, node in enumerate(_yaml_items(top.get("maintenance")), start=1)
    )
    return replace(inventory, maintenance=windows)


def _yaml_mapping(node: Node, key: str) -> dict[str, Node]:
    if not isinstance(node.value, dict):
        raise ConfigError(node.source, key, "expected a mapping", node.line)
    return node.mapping()


def _yaml_items(node: Node | None) -> list[Node]:
    return [] if node is None or node.is_null() else node.items()


def _window(node: Node, key: str, inventory: Inventory) -> Maintenance:
    """``{device: ID | site: NAME, start: ISO 8601, end: ISO 8601}``."""
    source, line = node.source, node.line
    raw = node.value
    if not isinstance(raw, dict) or set(raw) - {"device", "site", "start", "end"}:
        raise ConfigError(source, key, "expected {device or site, start, end}", line)
    times = []
    for part in ("start", "end"):
        value = raw.get(part)
        parsed = wire.parse_ts(value.isoformat() if isinstance(value, datetime) else value)
        if isinstance(parsed, wire.DecodeError):
            raise ConfigError(source, f"{key}.{part}", parsed.detail, line)
        times.append(parsed)
    device, site = raw.get("device"), raw.get("site")
    if device is not None and str(device) not in inventory.devices:
        raise ConfigError(source, f"{key}.device", f"unknown device {device!r}", line)
    if site is not None and str(site) not in inventory.sites:
        raise ConfigError(source, f"{key}.site", f"unknown site {site!r}", line)
    try:
        return Maintenance(
            times[0],
            times[1],
            device=None if device is None else str(device),
            site=None if site is None else str(site),
        )
    except ValueError as exc:
        raise ConfigError(source, key, str(exc), line) from None


def _csv_labels(text: str, source: str, line: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not wire.valid_name(key.strip()):
            raise ConfigError(source, "labels", f"expected key=value;...: {part!r}", line)
        labels[key.strip()] = value.strip()
    return labels


def _build(
    rows: Iterable[tuple[int, dict[str, Any]]],
    source: str,
    *,
    lines: Mapping[int, int] | None = None,
) -> Inventory:
    """Devices from ``(row, fields)``: a CSV row is its line; a YAML row is its index in the
    ``devices`` list (``lines`` gives its line)."""
    devices: dict[str, Device] = {}
    rows_of: dict[str, int] = {}

    def fail(row: int, key: str, reason: str) -> ConfigError:
        if lines is not None:
            return ConfigError(source, f"devices[{row}].{key}", reason, lines.get(row))
        return ConfigError(source, key, reason, row)

    for line, f in rows:
        device = _device(f, line, fail)
        if device.device in devices:
            raise fail(line, "device", f"duplicate device {device.device!r}")
        devices[device.device] = device
        rows_of[device.device] = line
    for dev in devices.values():
        if dev.parent is not None and dev.parent not in devices:
            raise fail(rows_of[dev.device], "parent", f"unknown device {dev.parent!r}")
    for dev in devices.values():  # a parent chain must end
        seen = {dev.device}
        cursor = dev.parent
        while cursor is not None:
            if cursor in seen:
                raise fail(rows_of[dev.device], "parent", f"parent cycle through {cursor!r}")
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
