"""SNMP polling profiles (``rules/snmp/*.yaml``): numeric OIDs -> canonical metric names.

Pure: parsing a profile and turning the values an agent returned into metrics are plain
functions over dicts of ``OID -> value``, tested without a network. Each profile has
``scalars`` (one GET for all of them) and ``tables`` (bulk walks of columns, one metric per
row named ``<table>_<row label>_<column>``, e.g. ``if_eth0_up``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import wire
from collector.config.errors import ConfigError
from collector.config.yamlfile import parse_yaml

_OID = re.compile(r"\d+(\.\d+)+")

# An invalid profile file: the one config error type (file, key, reason in one line).
ProfileError = ConfigError


@dataclass(frozen=True, slots=True)
class Scalar:
    metric: str
    oid: str = ""
    scale: float = 1.0
    subtract_from: float | None = None
    used_total: str = ""  # used_pct: 100 * (total - free) / total
    used_free: str = ""

    def oids(self) -> tuple[str, ...]:
        return (self.used_total, self.used_free) if self.used_total else (self.oid,)

    def value(self, got: dict[str, Any]) -> float | None:
        if self.used_total:
            total, free = _number(got.get(self.used_total)), _number(got.get(self.used_free))
            if total is None or free is None or total <= 0:
                return None
            return round(100.0 * (total - free) / total, 2)
        raw = _number(got.get(self.oid))
        if raw is None:
            return None
        value = raw * self.scale
        return self.subtract_from - value if self.subtract_from is not None else value


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    oid: str
    scale: float = 1.0
    equals: int | None = None  # a boolean metric: value == equals


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    label: str  # column whose value names the row
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    scalars: tuple[Scalar, ...]
    tables: tuple[Table, ...]

    def scalar_oids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o for s in self.scalars for o in s.oids()))

    def metrics(
        self, scalars: dict[str, Any], tables: dict[str, dict[str, Any]]
    ) -> dict[str, wire.MetricValue]:
        """Metrics from a GET (``OID -> value``) and walks (column OID -> {OID -> value})."""
        out: dict[str, wire.MetricValue] = {}
        for scalar in self.scalars:
            value = scalar.value(scalars)
            if value is not None:
                out[scalar.metric] = value
        for table in self.tables:
            labels = {
                oid[len(table.label) + 1 :]: str(v)
                for oid, v in tables.get(table.label, {}).items()
            }
            for column in table.columns:
                for oid, raw in tables.get(column.oid, {}).items():
                    label = labels.get(oid[len(column.oid) + 1 :])
                    number = _number(raw)
                    if label is None or number is None:
                        continue
                    name = f"{table.name}_{wire.metric_name(label)}_{column.name}"
                    if not wire.valid_name(name):
                        continue
                    if column.equals is not None:
                        out[name] = number == column.equals
                    else:
                        out[name] = number * column.scale
        return out


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _oid(file: Path, key: str, value: object) -> str:
    text = str(value).lstrip(".") if isinstance(value, str | int | float) else ""
    if not _OID.fullmatch(text):
        raise ProfileError(str(file), key, "must be a numeric OID like 1.3.6.1.2.1.1.3.0")
    return text


def _mapping(file: Path, key: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(str(file), key, "must be a mapping")
    return value


def _float(file: Path, key: str, value: object, default: float | None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(str(file), key, f"must be a number, not {value!r}")
    return float(value)


def _scalar(file: Path, metric: str, raw: object) -> Scalar:
    key = f"scalars.{metric}"
    if not wire.valid_name(metric):
        raise ProfileError(str(file), key, "metric name must be [a-z][a-z0-9_]*")
    body = _mapping(file, key, raw)
    unknown = set(body) - {"oid", "scale", "subtract_from", "used_pct"}
    if unknown:
        raise ProfileError(str(file), f"{key}.{sorted(unknown)[0]}", "unknown key")
    if "used_pct" in body:
        used = _mapping(file, f"{key}.used_pct", body["used_pct"])
        return Scalar(
            metric,
            used_total=_oid(file, f"{key}.used_pct.total", used.get("total")),
            used_free=_oid(file, f"{key}.used_pct.free", used.get("free")),
        )
    return Scalar(
        metric,
        oid=_oid(file, f"{key}.oid", body.get("oid")),
        scale=_float(file, f"{key}.scale", body.get("scale"), 1.0) or 1.0,
        subtract_from=_float(file, f"{key}.subtract_from", body.get("subtract_from"), None),
    )


def _table(file: Path, index: int, raw: object) -> Table:
    key = f"tables[{index}]"
    body = _mapping(file, key, raw)
    name = body.get("name")
    if not isinstance(name, str) or not wire.valid_name(name):
        raise ProfileError(str(file), f"{key}.name", "must be [a-z][a-z0-9_]*")
    columns = []
    for col_name, col_raw in _mapping(file, f"{key}.columns", body.get("columns")).items():
        col_key = f"{key}.columns.{col_name}"
        col = _mapping(file, col_key, col_raw)
        equals = col.get("equals")
        if equals is not None and (isinstance(equals, bool) or not isinstance(equals, int)):
            raise ProfileError(str(file), f"{col_key}.equals", "must be an integer")
        columns.append(
            Column(
                name=str(col_name),
                oid=_oid(file, f"{col_key}.oid", col.get("oid")),
                scale=_float(file, f"{col_key}.scale", col.get("scale"), 1.0) or 1.0,
                equals=equals,
            )
        )
    return Table(name, _oid(file, f"{key}.label", body.get("label")), tuple(columns))


def parse_profile(text: str, file: Path) -> Profile:
    data = parse_yaml(text, str(file)).value  # the one YAML reader: syntax errors name the line
    body = _mapping(file, "(top level)", data)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(str(file), "name", "is required")
    scalars = _mapping(file, "scalars", body.get("scalars") or {})
    tables = body.get("tables") or []
    if not isinstance(tables, list):
        raise ProfileError(str(file), "tables", "must be a list")
    return Profile(
        name=name,
        scalars=tuple(_scalar(file, str(m), raw) for m, raw in scalars.items()),
        tables=tuple(_table(file, i, raw) for i, raw in enumerate(tables)),
    )


def load_profiles(folder: Path) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for file in sorted(folder.glob("*.yaml")):
        profile = parse_profile(file.read_text(encoding="utf-8"), file)
        if profile.name in profiles:
            raise ProfileError(str(file), "name", f"profile {profile.name!r} is defined twice")
        profiles[profile.name] = profile
    return profiles
