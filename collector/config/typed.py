"""Typed config files: YAML (``yamlfile``) validated by pydantic models, errors as ConfigError.

``validate(model, root, context)`` turns the composed YAML into plain values, remembering the line
of every key, and maps the first pydantic error back to that line:
``collector.yaml:12: mqtt.keepalive_s: Input should be greater than or equal to 5``. Messages are
pydantic's own or the validators' (never the rejected value of a secret: no ``input`` is shown).

The annotated types below are the vocabulary of the config models: YAML has fewer types than
Python, so numbers are strict (no ``"5"`` for 5, no ``true`` for 1), text accepts numbers
(``version: 3``), durations take ``30s``/``5m`` as well as seconds, relative paths are relative
to the config file (``context["base_dir"]``), and a ``Section`` is a frozen mapping without
unknown keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, NamedTuple, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core.core_schema import CoreSchema

from collector.config.durations import parse_seconds
from collector.config.errors import ConfigError
from collector.config.yamlfile import Node

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


def as_text(value: object) -> object:
    """Numbers are text too in a config (``version: 3``, ``community: 12345``); bools are not."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _seconds(value: object) -> object:
    """A duration (``90s``, ``5m``, ``1h30m``) or a plain number of seconds."""
    return parse_seconds(value) if isinstance(value, str | bool) else value


def _whole_seconds(value: object) -> object:
    value = _seconds(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be whole seconds, not {value}")
        return int(value)
    return value


def _relative(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


Text = Annotated[
    str, BeforeValidator(as_text), StringConstraints(strip_whitespace=True, min_length=1)
]
Int = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]


class _OrDuration:
    """In the JSON Schema: the number (with its bounds) or a duration like ``90s``."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [handler(schema), {"type": "string", "pattern": _DURATION}]}


_DURATION = r"^(?:\d+(?:\.\d+)?[dhms])+$"
Seconds = Annotated[float, BeforeValidator(_seconds), _OrDuration()]
WholeSeconds = Annotated[int, BeforeValidator(_whole_seconds), _OrDuration()]
FilePath = Annotated[Path, BeforeValidator(as_text), AfterValidator(_relative)]


class HostPort(NamedTuple):
    host: str
    port: int


def parse_host_port(value: str) -> HostPort:
    """`HOST:PORT` (an IPv6 host in brackets); ValueError if it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, not {value!r}")
    return HostPort(host.strip("[]"), int(port))


def _host_port(value: object) -> object:
    value = as_text(value)
    if not isinstance(value, str):
        return value  # a (host, port) pair given in code
    return parse_host_port(value)


def listen_default(default: str) -> Any:
    """A `HOST:PORT` field's default, shown as written in the schema."""
    host, port = default.rsplit(":", 1)
    return Field(default=HostPort(host, int(port)), json_schema_extra={"default": default})


Listen = Annotated[HostPort, BeforeValidator(_host_port, json_schema_input_type=str)]


def _text_map(value: object) -> object:
    """A YAML mapping of text to text as (key, value) pairs; pairs given in code pass."""
    if isinstance(value, dict):
        return tuple(_TEXT_MAP.validate_python(value).items())
    return value


_TEXT_MAP = TypeAdapter(dict[Text, Text])
Pairs = Annotated[
    tuple[tuple[str, str], ...],
    BeforeValidator(_text_map, json_schema_input_type=dict[str, str]),
    Field(json_schema_extra={"default": {}}),
]


class Section(BaseModel):
    """A mapping of the file: frozen, no unknown keys, `null` means the default."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        defer_build=True,  # built on first use: commands that only import the module start fast
        use_attribute_docstrings=True,  # the field docs are the schema's descriptions
        field_title_generator=lambda name, _: name,
    )
    NULL_IS_EMPTY: ClassVar[frozenset[str]] = frozenset()  # keys where `null` means `{}`

    @model_validator(mode="before")
    @classmethod
    def _nulls_and_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = {
            k: ({} if v is None and k in cls.NULL_IS_EMPTY else v)
            for k, v in data.items()
            if v is not None or k in cls.NULL_IS_EMPTY
        }
        for name, field in cls.model_fields.items():  # sections left out still see the context
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, Section) and name not in out:
                out[name] = {}
        return out


def plain(root: Node) -> tuple[object, dict[Loc, int]]:
    """The YAML tree as plain values, and the line of every key (or list item) by its loc."""
    lines: dict[Loc, int] = {(): root.line}

    def walk(node: Node, loc: Loc) -> object:
        raw = node.raw
        if isinstance(raw, yaml.MappingNode):
            children = node.mapping()  # duplicate keys are an error here
            for (key_node, _), name in zip(raw.value, children, strict=True):
                lines[(*loc, name)] = int(key_node.start_mark.line) + 1
            return {name: walk(child, (*loc, name)) for name, child in children.items()}
        if isinstance(raw, yaml.SequenceNode):
            items = node.items()
            for i, item in enumerate(items):
                lines[(*loc, i)] = item.line
            return [walk(item, (*loc, i)) for i, item in enumerate(items)]
        return node.value

    return walk(root, ()), lines


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at ``loc`` (for "unknown key" messages)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    return sorted(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X``, ``X | None`` or ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _problem(error: Any, model: type[BaseModel], loc: Loc) -> str:
    kind, msg = error["type"], str(error["msg"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        known = ", ".join(_fields_at(model, loc[:-1]))
        return f"unknown key (expected one of: {known})" if known else "unknown key"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping"
    if kind in ("tuple_type", "list_type"):
        return "expected a list"
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def config_error(
    exc: ValidationError, model: type[BaseModel], source: str, lines: dict[Loc, int]
) -> ConfigError:
    """The first error of ``exc`` as a one-line ConfigError at the line of its key."""
    error = exc.errors(include_input=False, include_url=False)[0]
    loc: Loc = ()
    line = lines[()]
    for part in error["loc"]:  # pydantic adds parts of its own ("[key]", union members)
        if (*loc, part) in lines:
            loc = (*loc, part)
            line = lines[loc]
        elif isinstance(part, str) and part in _fields_at(model, loc):
            loc = (*loc, part)  # a key the file leaves out: the line of its parent
        else:
            break
    return ConfigError(source, _dotted(loc), _problem(error, model, loc), line)


def validate(model: type[M], root: Node, context: dict[str, Any]) -> M:
    """``root`` validated as ``model``; any problem is a ConfigError naming file, line and key."""
    data, lines = plain(root)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise config_error(exc, model, root.source, lines) from None


def markdown_reference(schema: dict[str, Any]) -> str:
    """A Markdown table of every key of ``schema``: dotted key, type, default, description."""
    defs = schema.get("$defs", {})
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]

    def section(prop: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        for option in (prop, *prop.get("anyOf", ()), prop.get("items", {})):
            if "$ref" in option:
                return defs[option["$ref"].rsplit("/", 1)[1]], "[]" if "items" in prop else ""
        return None, ""

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, prop in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            inner, suffix = section(prop)
            about = prop.get("description", "").replace("\n", " ").replace("|", "\\|")
            if inner is not None:
                if about:
                    rows.append(f"| `{key}{suffix}` | mapping | | {about} |")
                walk(inner, f"{key}{suffix}.")
                continue
            default = prop.get("default")
            if name in node.get("required", ()):
                shown = "required"
            elif default in (None, [], {}):
                shown = ""
            else:
                shown = f"`{default if isinstance(default, str) else json.dumps(default)}`"
            rows.append(f"| `{key}` | {_kind(prop)} | {shown} | {about} |")

    walk(schema, "")
    return "\n".join(rows) + "\n"


def _kind(prop: dict[str, Any]) -> str:
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    first = options[0]
    if len(options) == 2 and options[1].get("pattern") == _DURATION:
        return f"duration{_bounds(first)}"
    if "enum" in first:
        return " / ".join(f"`{v}`" for v in first["enum"])
    kind = str(first.get("type", "any"))
    if first.get("format") == "path":
        return "path"
    if kind == "array":
        return "list"
    if kind == "object":
        return "mapping"
    return {"string": "text", "boolean": "true / false"}.get(kind, kind) + _bounds(first)


def _bounds(prop: dict[str, Any]) -> str:
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is None and high is None:
        return ""
    return f" {low if low is not None else ''}..{high if high is not None else ''}"
