"""Strict reading of rule, policy and calendar YAML files, with the line of every key.

``parse_yaml(text, source)`` composes the YAML into ``Node`` views that remember where each
value starts, so that a loader can say ``policies/x.yaml:12: levels.A.targets: unknown key``.
Loaders walk the tree with ``Node.mapping`` / ``Node.items`` / ``Node.text`` and raise
``ConfigError`` (one line: file, line, key, problem) for anything unexpected.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from collector.config.errors import ConfigError

E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class Node:
    """One YAML value, with its dotted key path and 1-based line for error messages."""

    source: str
    key: str
    raw: yaml.Node

    @property
    def line(self) -> int:
        return int(self.raw.start_mark.line) + 1

    def error(self, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key, problem, self.line)

    def _child_key(self, name: str | int) -> str:
        if isinstance(name, int):
            return f"{self.key}[{name}]"
        return f"{self.key}.{name}" if self.key else name

    @property
    def value(self) -> object:
        """The plain Python value (scalars are resolved like yaml.safe_load does)."""
        try:
            return yaml.SafeLoader("").construct_object(self.raw, deep=True)
        except (yaml.YAMLError, ValueError) as exc:  # e.g. a date like 2026-02-30
            raise self.error(f"bad value {self.source_text()!r}: {exc}") from None

    def source_text(self) -> str:
        """The value as written (scalars), for messages."""
        return str(self.raw.value) if isinstance(self.raw, yaml.ScalarNode) else self.raw.tag

    def is_null(self) -> bool:
        return isinstance(self.raw, yaml.ScalarNode) and self.raw.tag.endswith(":null")

    def mapping(self, allowed: frozenset[str] | None = None) -> dict[str, Node]:
        """The keys of a mapping; unknown keys (when ``allowed`` is given) are an error."""
        if not isinstance(self.raw, yaml.MappingNode):
            raise self.error("expected a mapping")
        out: dict[str, Node] = {}
        for key_node, value_node in self.raw.value:
            key = yaml.SafeLoader("").construct_object(key_node)
            name = str(key)
            child = Node(self.source, self._child_key(name), value_node)
            if name in out:
                raise Node(self.source, child.key, key_node).error("key given twice")
            if allowed is not None and name not in allowed:
                known = ", ".join(sorted(allowed))
                raise Node(self.source, child.key, key_node).error(
                    f"unknown key (expected one of: {known})"
                )
            out[name] = child
        return out

    def items(self) -> list[Node]:
        """The elements of a sequence."""
        if not isinstance(self.raw, yaml.SequenceNode):
            raise self.error("expected a list")
        return [Node(self.source, self._child_key(i), n) for i, n in enumerate(self.raw.value)]

    def text(self) -> str:
        """A non-empty string (numbers are accepted and turned into text)."""
        if not isinstance(self.raw, yaml.ScalarNode) or self.is_null():
            raise self.error("expected a string")
        value = self.value
        if isinstance(value, bool):
            raise self.error(f"expected a string, got {value!r}")
        text = str(value).strip()
        if not text:
            raise self.error("must not be empty")
        return text

    def number(self) -> float:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"expected a number, got {value!r}")
        return float(value)

    def integer(self) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a whole number, got {value!r}")
        return value

    def boolean(self) -> bool:
        value = self.value
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {value!r}")
        return value

    def choice(self, kind: type[E], what: str) -> E:
        """A string that must be one of an enum's values."""
        text = self.text()
        try:
            return kind(text)
        except ValueError:
            known = ", ".join(str(member.value) for member in kind)
            raise self.error(f"unknown {what} {text!r} (expected one of: {known})") from None

    def require(self, keys: dict[str, Node], *names: str) -> None:
        """Raise for the first of ``names`` missing from this mapping's ``keys``."""
        for name in names:
            if name not in keys:
                raise self.error(f"missing key {name!r}")

    def texts(self) -> list[str]:
        """A string or a list of strings."""
        if isinstance(self.raw, yaml.SequenceNode):
            return [item.text() for item in self.items()]
        return [self.text()]

    def walk_texts(self) -> Iterator[tuple[Node, str]]:
        """Each string of a string-or-list value with the node holding it."""
        if isinstance(self.raw, yaml.SequenceNode):
            for item in self.items():
                yield item, item.text()
        else:
            yield self, self.text()


def parse_yaml(text: str, source: str) -> Node:
    """The document's root node; a YAML syntax error becomes a one-line ConfigError."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = int(mark.line) + 1 if mark is not None else None
        raise ConfigError(source, "", f"not valid YAML: {exc.problem}", line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML: {exc}") from None
    if root is None:
        raise ConfigError(source, "", "file is empty", 1)
    return Node(source, "", root)


def read_yaml(path: Path) -> Node:
    """Read and compose a YAML file; unreadable files become ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    return parse_yaml(text, str(path))
