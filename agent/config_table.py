"""Checking one TOML document: typed getters per table that refuse unknown keys.

A :class:`ConfigTable` remembers which keys were read, so ``done()`` can refuse the others (a
typo must not silently become a default); its errors name the dotted key and, when it can be
found, the line (:func:`line_of`).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from agent.config_types import ConfigError


class ConfigTable:
    """A TOML table being checked; remembers which keys were read to refuse unknown ones."""

    def __init__(self, data: dict[str, Any], path: str, ctx: ConfigText) -> None:
        self.data, self.path, self.ctx, self.seen = data, path, ctx, set[str]()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, reason: str) -> ConfigError:
        return self.ctx.error(self.key(name), reason)

    def missing(self, name: str) -> ConfigError:
        """A required key is absent: a near miss among the given keys is the likelier fault."""
        import difflib

        typo = difflib.get_close_matches(name, [k for k in self.data if k not in self.seen], 1)
        if typo:
            return self.fail(typo[0], f"unknown key (did you mean {name!r}?)")
        return self.fail(name, "is required")

    def raw(self, name: str) -> Any:
        self.seen.add(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return name in self.data

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            if required or default is None:
                raise self.missing(name)
            return default
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"must be a non-empty string, not {value!r}")
        return value

    def opt_str(self, name: str) -> str | None:
        self.seen.add(name)
        return self.string(name) if self.has(name) else None

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low:g} and {high:g}, not {value!r}")
        return float(value)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, not {value!r}")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low} and {high}, not {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {value!r}")
        return value

    def str_list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "must be a list of non-empty strings")
        return tuple(value)

    def table(self, name: str, *, required: bool = False) -> ConfigTable | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise self.missing(name)
            return None
        if not isinstance(value, dict):
            raise self.fail(name, "must be a table")
        return ConfigTable(value, self.key(name), self.ctx)

    def tables(self, name: str) -> list[ConfigTable]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(name, "must be an array of tables ([[...]])")
        return [ConfigTable(v, f"{self.key(name)}[{i}]", self.ctx) for i, v in enumerate(value)]

    def done(self) -> None:
        for name in self.data:
            if name not in self.seen:
                raise self.fail(name, "unknown key")


class ConfigText(NamedTuple):
    source: str
    text: str

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, key, reason, line_of(self.text, key))


def line_of(text: str, dotted: str) -> int | None:
    """Best-effort line of ``a.b[0].c``: where ``c`` is assigned under ``[a.b]``, else the
    header of the table the key names."""
    parts = [p.split("[")[0] for p in dotted.split(".")]
    table, leaf, whole = ".".join(parts[:-1]), parts[-1], ".".join(parts)
    current, header_line = "", None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
        if header:
            current = header.group(1).replace('"', "").replace(" ", "")
            if current == whole and header_line is None:
                header_line = number
        elif current == table and re.match(rf'"?{re.escape(leaf)}"?\s*=', stripped):
            return number
    return header_line
