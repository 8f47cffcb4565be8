"""The fleetdesk wire protocol, version 1: MQTT topics and JSON payloads.

Shared by the edge agent (which encodes) and the collector (which decodes). This module
uses only the standard library so that the agent can ship alone. ``decode`` never raises:
every malformed message comes back as a :class:`DecodeError` with a named reason.
See ``docs/wire.md`` for the specification.
"""

from __future__ import annotations

import enum
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

# NamedTuple, not dataclasses: importing dataclasses pulls in inspect/ast (0.9 MB on a gateway).

PROTOCOL_VERSION: Final = 1
TOPIC_PREFIX: Final = "fleet/v1"

# Limits: stated in docs/wire.md and enforced by decode (and by the encoders).
MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_ID_LEN: Final = 64
MAX_NAME_LEN: Final = 64
MAX_METRICS: Final = 256
MAX_LABELS: Final = 32
MAX_STRING_LEN: Final = 128
MAX_SEQ: Final = 2**63 - 1

_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]*")


class Kind(enum.StrEnum):
    """The last topic level(s) after ``fleet/v1/<tenant>/<device>/``."""

    BIRTH = "birth"
    STATE = "state"
    TELEMETRY = "telemetry"
    EVENT = "event"
    COMMAND = "cmd"
    REPLY = "cmd/reply"


class DeviceState(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    DYING_GASP = "dying_gasp"


class RejectReason(enum.StrEnum):
    """Why a message was refused; the collector counts rejects by these names."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    BAD_JSON = "bad_json"
    NOT_OBJECT = "not_object"
    BAD_VERSION = "bad_version"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_TIMESTAMP = "bad_timestamp"
    DEVICE_MISMATCH = "device_mismatch"
    TOO_MANY_METRICS = "too_many_metrics"
    NAME_TOO_LONG = "name_too_long"
    BAD_NAME = "bad_name"


class DecodeError(NamedTuple):
    reason: RejectReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


class Topic(NamedTuple):
    tenant: str
    device: str
    kind: Kind


MetricValue = float | int | bool | str


class Telemetry(NamedTuple):
    device: str
    boot: str
    seq: int
    ts: datetime
    metrics: dict[str, MetricValue]
    labels: dict[str, str] = {}  # noqa: RUF012 (shared default: never mutated)


class State(NamedTuple):
    device: str
    state: DeviceState
    ts: datetime


class Event(NamedTuple):
    device: str
    boot: str
    seq: int
    ts: datetime
    event: str
    data: dict[str, Any] = {}  # noqa: RUF012 (shared default: never mutated)


class Birth(NamedTuple):
    device: str
    boot: str
    ts: datetime
    model: str
    serial: str
    firmware: str
    agent: str
    interval_s: int
    probes: tuple[str, ...] = ()
    labels: dict[str, str] = {}  # noqa: RUF012 (shared default: never mutated)


class Command(NamedTuple):
    """A downlink command. ``device`` comes from the topic (commands do not repeat it)."""

    device: str
    id: str
    cmd: str
    args: dict[str, Any]
    ts: datetime | None = None


class Reply(NamedTuple):
    device: str
    id: str
    ok: bool
    ts: datetime
    result: dict[str, Any] | None = None
    error: str | None = None


Message = Telemetry | State | Event | Birth | Command | Reply


# --------------------------------------------------------------------------- topics


def topic(tenant: str, device: str, kind: Kind) -> str:
    return f"{TOPIC_PREFIX}/{tenant}/{device}/{kind.value}"


def subscription(kind: Kind | None = None, tenant: str = "+") -> str:
    """A subscription filter for one kind (or every kind) of message of a tenant (or all)."""
    if kind is None:
        return f"{TOPIC_PREFIX}/{tenant}/#"
    return f"{TOPIC_PREFIX}/{tenant}/+/{kind.value}"


def parse_topic(name: str) -> Topic | DecodeError:
    parts = name.split("/")
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX:
        return DecodeError(RejectReason.BAD_TOPIC, f"not under {TOPIC_PREFIX}/<tenant>/<device>/")
    tenant, device, rest = parts[2], parts[3], "/".join(parts[4:])
    for what, value in (("tenant", tenant), ("device", device)):
        if not valid_id(value):
            return DecodeError(RejectReason.BAD_TOPIC, f"invalid {what} id {value[:80]!r}")
    try:
        kind = Kind(rest)
    except ValueError:
        return DecodeError(RejectReason.BAD_TOPIC, f"unknown message kind {rest[:80]!r}")
    return Topic(tenant, device, kind)


def valid_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LEN and _ID_RE.fullmatch(value) is not None


def valid_name(value: str) -> bool:
    return 0 < len(value) <= MAX_NAME_LEN and _NAME_RE.fullmatch(value) is not None


def metric_name(text: str) -> str:
    """Canonical metric name part: lower case, anything outside ``[a-z0-9_]`` becomes ``_``.

    Used for interface names (``br-lan`` -> ``if_br_lan_up``).
    """
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


# --------------------------------------------------------------------------- time


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z`` suffix."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(value: object) -> datetime | DecodeError:
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return DecodeError(RejectReason.BAD_TIMESTAMP, "ts must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or "T" not in value.upper():
            return DecodeError(RejectReason.BAD_TIMESTAMP, f"ts {value!r} lacks a UTC offset")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return DecodeError(RejectReason.BAD_TIMESTAMP, f"unparseable ts {value!r}")


# --------------------------------------------------------------------------- encode


def _dump(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return data


def encode(msg: Message) -> bytes:
    """Encode a message to its JSON payload (raises ValueError past the limits)."""
    body: dict[str, Any] = {"v": PROTOCOL_VERSION}
    match msg:
        case Telemetry():
            body |= {
                "device": msg.device,
                "boot": msg.boot,
                "seq": msg.seq,
                "ts": format_ts(msg.ts),
                "metrics": msg.metrics,
                "labels": msg.labels,
            }
        case State():
            body |= {"device": msg.device, "state": msg.state.value, "ts": format_ts(msg.ts)}
        case Event():
            body |= {
                "device": msg.device,
                "boot": msg.boot,
                "seq": msg.seq,
                "ts": format_ts(msg.ts),
                "event": msg.event,
                "data": msg.data,
            }
        case Birth():
            body |= {
                "device": msg.device,
                "boot": msg.boot,
                "ts": format_ts(msg.ts),
                "model": msg.model,
                "serial": msg.serial,
                "firmware": msg.firmware,
                "agent": msg.agent,
                "interval_s": msg.interval_s,
                "probes": list(msg.probes),
                "labels": msg.labels,
            }
        case Command():
            body |= {"id": msg.id, "cmd": msg.cmd, "args": msg.args}
            if msg.ts is not None:
                body["ts"] = format_ts(msg.ts)
        case Reply():
            body |= {"device": msg.device, "id": msg.id, "ok": msg.ok, "ts": format_ts(msg.ts)}
            if msg.result is not None:
                body["result"] = msg.result
            if msg.error is not None:
                body["error"] = msg.error
    return _dump(body)


# --------------------------------------------------------------------------- decode


class _Reject(Exception):
    """Internal short-cut out of nested field checks; never escapes ``decode``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.error = DecodeError(reason, detail)


def _field(body: dict[str, Any], key: str) -> Any:
    try:
        return body[key]
    except KeyError:
        raise _Reject(RejectReason.MISSING_FIELD, f"missing field {key!r}") from None


def _str(
    body: dict[str, Any], key: str, limit: int = MAX_STRING_LEN, *, empty: bool = False
) -> str:
    value = _field(body, key)
    if not isinstance(value, str) or len(value) > limit or (not empty and not value):
        raise _Reject(RejectReason.BAD_FIELD, f"{key!r} must be a string of 1..{limit} chars")
    return value


def _int(body: dict[str, Any], key: str, low: int, high: int) -> int:
    value = _field(body, key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Reject(RejectReason.BAD_FIELD, f"{key!r} must be an integer in {low}..{high}")
    return value


def _ts(body: dict[str, Any], key: str = "ts") -> datetime:
    parsed = parse_ts(_field(body, key))
    if isinstance(parsed, DecodeError):
        raise _Reject(parsed.reason, parsed.detail)
    return parsed


def _device(body: dict[str, Any], expected: str | None) -> str:
    device = _str(body, "device", MAX_ID_LEN)
    if not valid_id(device):
        raise _Reject(RejectReason.BAD_FIELD, f"invalid device id {device!r}")
    if expected is not None and device != expected:
        raise _Reject(
            RejectReason.DEVICE_MISMATCH, f"payload device {device!r} != topic device {expected!r}"
        )
    return device


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Reject(RejectReason.BAD_NAME, f"{what} name must be a string")
    if len(value) > MAX_NAME_LEN:
        raise _Reject(RejectReason.NAME_TOO_LONG, f"{what} name {value[:80]!r}... is too long")
    if not valid_name(value):
        raise _Reject(RejectReason.BAD_NAME, f"{what} name {value!r} is not [a-z][a-z0-9_]*")
    return value


def _object(body: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = body.get(key) if not required else _field(body, key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _Reject(RejectReason.BAD_FIELD, f"{key!r} must be an object")
    return value


# Names seen valid before skip the pattern match: a fleet reuses a few hundred names, and the
# collector decodes every report. Bounded so that junk names cannot grow it without limit.
_KNOWN_NAMES: set[str] = set()
_KNOWN_NAMES_MAX: Final = 4096


def _known_name(name: object, what: str) -> None:
    if name in _KNOWN_NAMES:
        return
    checked = _name(name, what)
    if len(_KNOWN_NAMES) < _KNOWN_NAMES_MAX:
        _KNOWN_NAMES.add(checked)


def _metrics(body: dict[str, Any]) -> dict[str, MetricValue]:
    raw = _object(body, "metrics")
    if len(raw) > MAX_METRICS:
        raise _Reject(RejectReason.TOO_MANY_METRICS, f"{len(raw)} metrics > {MAX_METRICS}")
    known = _KNOWN_NAMES
    for name, value in raw.items():
        if name not in known:
            _known_name(name, "metric")
        kind = type(value)
        if kind is int or kind is bool:
            continue
        if kind is float:
            if not math.isfinite(value):
                raise _Reject(RejectReason.BAD_FIELD, f"metric {name!r} is not finite")
        elif kind is str:
            if len(value) > MAX_STRING_LEN:
                raise _Reject(RejectReason.BAD_FIELD, f"metric {name!r}: string too long")
        else:  # json.loads makes no subclasses, so exact types suffice
            raise _Reject(RejectReason.BAD_FIELD, f"metric {name!r}: number, bool or string")
    return raw


def _labels(body: dict[str, Any]) -> dict[str, str]:
    raw = _object(body, "labels", required=False)
    if len(raw) > MAX_LABELS:
        raise _Reject(RejectReason.BAD_FIELD, f"{len(raw)} labels > {MAX_LABELS}")
    for key, value in raw.items():
        _known_name(key, "label")
        if not isinstance(value, str) or len(value) > MAX_STRING_LEN:
            raise _Reject(RejectReason.BAD_FIELD, f"label {key!r} must be a short string")
    return raw


def _decode_body(body: dict[str, Any], kind: Kind, device: str | None) -> Message:
    version = body.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise _Reject(RejectReason.BAD_VERSION, f"unsupported protocol version {version!r}")
    if kind is Kind.TELEMETRY:
        return Telemetry(
            device=_device(body, device),
            boot=_str(body, "boot", MAX_ID_LEN),
            seq=_int(body, "seq", 0, MAX_SEQ),
            ts=_ts(body),
            metrics=_metrics(body),
            labels=_labels(body),
        )
    if kind is Kind.STATE:
        dev = _device(body, device)
        raw_state = _field(body, "state")
        try:
            state = DeviceState(raw_state)
        except (ValueError, TypeError):
            raise _Reject(RejectReason.BAD_FIELD, f"unknown state {raw_state!r}") from None
        return State(device=dev, state=state, ts=_ts(body))
    if kind is Kind.EVENT:
        return Event(
            device=_device(body, device),
            boot=_str(body, "boot", MAX_ID_LEN),
            seq=_int(body, "seq", 0, MAX_SEQ),
            ts=_ts(body),
            event=_name(_field(body, "event"), "event"),
            data=_object(body, "data", required=False),
        )
    if kind is Kind.BIRTH:
        probes = body.get("probes", [])
        if not isinstance(probes, list) or not all(isinstance(p, str) for p in probes):
            raise _Reject(RejectReason.BAD_FIELD, "'probes' must be a list of strings")
        return Birth(
            device=_device(body, device),
            boot=_str(body, "boot", MAX_ID_LEN),
            ts=_ts(body),
            model=_str(body, "model", empty=True),
            serial=_str(body, "serial", empty=True),
            firmware=_str(body, "firmware", empty=True),
            agent=_str(body, "agent"),
            interval_s=_int(body, "interval_s", 1, 86_400),
            probes=tuple(probes),
            labels=_labels(body),
        )
    if kind is Kind.COMMAND:
        if device is None:
            raise _Reject(RejectReason.BAD_TOPIC, "a command needs its topic")
        return Command(
            device=device,
            id=_str(body, "id", MAX_ID_LEN),
            cmd=_name(_field(body, "cmd"), "command"),
            args=_object(body, "args", required=False),
            ts=_ts(body) if "ts" in body else None,
        )
    ok = _field(body, "ok")
    if not isinstance(ok, bool):
        raise _Reject(RejectReason.BAD_FIELD, "'ok' must be a boolean")
    result = body.get("result")
    error = body.get("error")
    if result is not None and not isinstance(result, dict):
        raise _Reject(RejectReason.BAD_FIELD, "'result' must be an object")
    if error is not None and not isinstance(error, str):
        raise _Reject(RejectReason.BAD_FIELD, "'error' must be a string")
    return Reply(
        device=_device(body, device),
        id=_str(body, "id", MAX_ID_LEN),
        ok=ok,
        ts=_ts(body),
        result=result,
        error=error,
    )


def decode_payload(
    payload: bytes | str, kind: Kind, device: str | None = None
) -> Message | DecodeError:
    """Decode a payload of a known kind; ``device`` (from the topic) must match the payload's."""
    try:
        if len(payload) > MAX_PAYLOAD_BYTES:
            return DecodeError(
                RejectReason.TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}"
            )
        try:
            # Payloads are UTF-8 by the spec: decoding here skips json's encoding sniffing.
            body = json.loads(payload.decode() if isinstance(payload, bytes) else payload)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8
            return DecodeError(RejectReason.BAD_JSON, str(exc)[:120])
        if not isinstance(body, dict):
            return DecodeError(RejectReason.NOT_OBJECT, "payload must be a JSON object")
        return _decode_body(body, kind, device)
    except _Reject as reject:
        return reject.error


def decode(topic_name: str, payload: bytes | str) -> Message | DecodeError:
    """Decode an MQTT message by its topic. Never raises."""
    parsed = parse_topic(topic_name)
    if isinstance(parsed, DecodeError):
        return parsed
    return decode_payload(payload, parsed.kind, parsed.device)
