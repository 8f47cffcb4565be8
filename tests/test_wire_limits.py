"""The wire protocol at its limits: every refusal with its reason *and* its detail (what an
operator reads), each limit of docs/wire.md exactly at and one past its edge, the exact bytes
the encoder writes, and timestamps on a gateway whose local time is not UTC."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agent import wire
from agent.wire import DecodeError, Kind, RejectReason

T0 = datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=UTC)
TS = "2026-11-28T01:02:03.456Z"


def body_of(kind: Kind, **over: Any) -> dict[str, Any]:
    """A valid payload of ``kind`` for device d1, with ``over`` replaced (None: removed)."""
    bodies: dict[Kind, dict[str, Any]] = {
        Kind.TELEMETRY: {"device": "d1", "boot": "b1", "seq": 1, "ts": TS, "metrics": {"x": 1}},
        Kind.STATE: {"device": "d1", "state": "online", "ts": TS},
        Kind.EVENT: {"device": "d1", "boot": "b1", "seq": 1, "ts": TS, "event": "link_down"},
        Kind.BIRTH: {
            "device": "d1",
            "boot": "b1",
            "ts": TS,
            "model": "WR5120",
            "serial": "SN1",
            "firmware": "1.0",
            "agent": "0.1.0",
            "interval_s": 60,
        },
        Kind.COMMAND: {"id": "c1", "cmd": "reboot"},
        Kind.REPLY: {"device": "d1", "id": "c1", "ok": True, "ts": TS},
    }
    body = {"v": 1, **bodies[kind], **over}
    return {k: v for k, v in body.items() if v is not None}


def decode(
    kind: Kind, body: dict[str, Any] | str, device: str = "d1"
) -> wire.Message | DecodeError:
    """Decode ``body`` as published on ``device``'s topic of ``kind``."""
    payload = body if isinstance(body, str) else json.dumps(body)
    return wire.decode(wire.topic("acme", device, kind), payload)


def refusal(kind: Kind, **over: Any) -> tuple[RejectReason, str]:
    got = decode(kind, body_of(kind, **over))
    assert isinstance(got, DecodeError), got
    return got.reason, got.detail


def accepted(kind: Kind, **over: Any) -> Any:
    got = decode(kind, body_of(kind, **over), over.get("device", "d1"))
    assert not isinstance(got, DecodeError), got
    return got


ID64, ID65 = "d" * 64, "d" * 65
BAD_FIELD, BAD_NAME = RejectReason.BAD_FIELD, RejectReason.BAD_NAME
BAD_TS = RejectReason.BAD_TIMESTAMP


@pytest.mark.parametrize(
    ("kind", "over", "expected"),
    [
        (Kind.TELEMETRY, {"v": 2}, (RejectReason.BAD_VERSION, "unsupported protocol version 2")),
        (Kind.TELEMETRY, {"boot": None}, (RejectReason.MISSING_FIELD, "missing field 'boot'")),
        (
            Kind.TELEMETRY,
            {"metrics": None},
            (RejectReason.MISSING_FIELD, "missing field 'metrics'"),
        ),
        (Kind.TELEMETRY, {"metrics": [1]}, (BAD_FIELD, "'metrics' must be an object")),
        (Kind.TELEMETRY, {"seq": -1}, (BAD_FIELD, f"'seq' must be an integer in 0..{2**63 - 1}")),
        (Kind.TELEMETRY, {"boot": ""}, (BAD_FIELD, "'boot' must be a string of 1..64 chars")),
        (Kind.TELEMETRY, {"boot": ID65}, (BAD_FIELD, "'boot' must be a string of 1..64 chars")),
        (Kind.EVENT, {"boot": ID65}, (BAD_FIELD, "'boot' must be a string of 1..64 chars")),
        (Kind.BIRTH, {"boot": ID65}, (BAD_FIELD, "'boot' must be a string of 1..64 chars")),
        (Kind.BIRTH, {"agent": ""}, (BAD_FIELD, "'agent' must be a string of 1..128 chars")),
        (Kind.TELEMETRY, {"device": ID65}, (BAD_FIELD, "'device' must be a string of 1..64 chars")),
        (Kind.TELEMETRY, {"device": "-d1"}, (BAD_FIELD, "invalid device id '-d1'")),
        (
            Kind.TELEMETRY,
            {"device": "d2"},
            (RejectReason.DEVICE_MISMATCH, "payload device 'd2' != topic device 'd1'"),
        ),
        (
            Kind.STATE,
            {"device": "d2"},
            (RejectReason.DEVICE_MISMATCH, "payload device 'd2' != topic device 'd1'"),
        ),
        (
            Kind.EVENT,
            {"device": "d2"},
            (RejectReason.DEVICE_MISMATCH, "payload device 'd2' != topic device 'd1'"),
        ),
        (
            Kind.BIRTH,
            {"device": "d2"},
            (RejectReason.DEVICE_MISMATCH, "payload device 'd2' != topic device 'd1'"),
        ),
        (Kind.STATE, {"state": "asleep"}, (BAD_FIELD, "unknown state 'asleep'")),
        (Kind.TELEMETRY, {"ts": 5}, (BAD_TS, "ts must be an RFC 3339 string")),
        (Kind.TELEMETRY, {"ts": "2026-11-28"}, (BAD_TS, "ts '2026-11-28' lacks a UTC offset")),
        (Kind.TELEMETRY, {"ts": "2026-11-2"}, (BAD_TS, "ts must be an RFC 3339 string")),
        (
            Kind.TELEMETRY,
            {"ts": "2026-11-28 01:02:03Z"},
            (BAD_TS, "ts '2026-11-28 01:02:03Z' lacks a UTC offset"),
        ),
        (Kind.TELEMETRY, {"ts": "yesterday!"}, (BAD_TS, "unparseable ts 'yesterday!'")),
        (Kind.EVENT, {"event": 5}, (BAD_NAME, "event name must be a string")),
        (Kind.EVENT, {"event": "Link"}, (BAD_NAME, "event name 'Link' is not [a-z][a-z0-9_]*")),
        (
            Kind.EVENT,
            {"event": "e" * 100},
            (RejectReason.NAME_TOO_LONG, f"event name {'e' * 80!r}... is too long"),
        ),
        (Kind.EVENT, {"data": [1]}, (BAD_FIELD, "'data' must be an object")),
        (Kind.BIRTH, {"probes": "system"}, (BAD_FIELD, "'probes' must be a list of strings")),
        (Kind.BIRTH, {"probes": ["system", 5]}, (BAD_FIELD, "'probes' must be a list of strings")),
        (
            Kind.TELEMETRY,
            {"metrics": {"CPU": 1}},
            (BAD_NAME, "metric name 'CPU' is not [a-z][a-z0-9_]*"),
        ),
        (
            Kind.TELEMETRY,
            {"metrics": {"x": [1]}},
            (BAD_FIELD, "metric 'x': number, bool or string"),
        ),
        (Kind.TELEMETRY, {"metrics": {"x": "s" * 129}}, (BAD_FIELD, "metric 'x': string too long")),
        (
            Kind.TELEMETRY,
            {"metrics": {f"m{i}": 1 for i in range(257)}},
            (RejectReason.TOO_MANY_METRICS, "257 metrics > 256"),
        ),
        (Kind.TELEMETRY, {"labels": [1]}, (BAD_FIELD, "'labels' must be an object")),
        (
            Kind.TELEMETRY,
            {"labels": {f"l{i}": "v" for i in range(33)}},
            (BAD_FIELD, "33 labels > 32"),
        ),
        (
            Kind.TELEMETRY,
            {"labels": {"Site": "x"}},
            (BAD_NAME, "label name 'Site' is not [a-z][a-z0-9_]*"),
        ),
        (
            Kind.TELEMETRY,
            {"labels": {"site": 5}},
            (BAD_FIELD, "label 'site' must be a short string"),
        ),
        (
            Kind.TELEMETRY,
            {"labels": {"site": "s" * 129}},
            (BAD_FIELD, "label 'site' must be a short string"),
        ),
        (Kind.BIRTH, {"interval_s": 0}, (BAD_FIELD, "'interval_s' must be an integer in 1..86400")),
        (
            Kind.BIRTH,
            {"interval_s": 86_401},
            (BAD_FIELD, "'interval_s' must be an integer in 1..86400"),
        ),
        (Kind.COMMAND, {"id": ID65}, (BAD_FIELD, "'id' must be a string of 1..64 chars")),
        (Kind.REPLY, {"id": ID65}, (BAD_FIELD, "'id' must be a string of 1..64 chars")),
        (
            Kind.COMMAND,
            {"cmd": "Reboot!"},
            (BAD_NAME, "command name 'Reboot!' is not [a-z][a-z0-9_]*"),
        ),
        (Kind.COMMAND, {"args": [1]}, (BAD_FIELD, "'args' must be an object")),
        (
            Kind.REPLY,
            {"device": "d2"},
            (RejectReason.DEVICE_MISMATCH, "payload device 'd2' != topic device 'd1'"),
        ),
        (Kind.REPLY, {"ok": "yes"}, (BAD_FIELD, "'ok' must be a boolean")),
        (Kind.REPLY, {"result": [1]}, (BAD_FIELD, "'result' must be an object")),
        (Kind.REPLY, {"error": 5}, (BAD_FIELD, "'error' must be a string")),
    ],
)
def test_each_refusal_names_its_reason_and_what_was_wrong(
    kind: Kind, over: dict[str, Any], expected: tuple[RejectReason, str]
) -> None:
    assert refusal(kind, **over) == expected


def test_a_non_finite_metric_after_an_integer_one_is_still_refused() -> None:
    payload = json.dumps(body_of(Kind.TELEMETRY, metrics={"a": 1, "b": True, "c": 0.5}))
    assert not isinstance(decode(Kind.TELEMETRY, payload), DecodeError)
    payload = payload.replace('"c": 0.5', '"c": NaN')
    assert decode(Kind.TELEMETRY, payload) == DecodeError(BAD_FIELD, "metric 'c' is not finite")


def test_every_limit_admits_a_value_exactly_at_it() -> None:
    wire._KNOWN_NAMES.clear()  # names seen before skip the checks: check these afresh
    assert wire.valid_name("m" * 64) and not wire.valid_name("m" * 65)
    msg = accepted(
        Kind.TELEMETRY,
        device=ID64,
        boot=ID64,
        seq=0,
        metrics={"m" * 64: "s" * 128, **{f"m{i}": i for i in range(255)}},
        labels={**{f"l{i}": "v" for i in range(31)}, "site": "s" * 128},
    )
    assert len(msg.metrics) == 256 and len(msg.labels) == 32
    assert accepted(Kind.EVENT, seq=0).seq == 0
    birth = accepted(Kind.BIRTH, model="", serial="", firmware="", agent="a" * 128)
    assert (birth.model, birth.serial, birth.firmware) == ("", "", "")
    assert [accepted(Kind.BIRTH, interval_s=s).interval_s for s in (1, 86_400)] == [1, 86_400]
    assert accepted(Kind.COMMAND, id=ID64).id == ID64
    assert accepted(Kind.REPLY, id=ID64).id == ID64


def test_a_command_may_leave_out_its_arguments_and_time() -> None:
    assert accepted(Kind.COMMAND) == wire.Command("d1", "c1", "reboot", {}, None)
    assert accepted(Kind.COMMAND, args={"n": 1}, ts=TS) == wire.Command(
        "d1", "c1", "reboot", {"n": 1}, T0
    )
    assert accepted(Kind.REPLY, error="busy").error == "busy"


def test_payloads_up_to_the_limit_are_read_and_must_be_utf8_json_objects() -> None:
    body = body_of(Kind.EVENT, data={"blob": ""})
    room = wire.MAX_PAYLOAD_BYTES - len(json.dumps(body))
    at_limit = json.dumps({**body, "data": {"blob": "x" * room}})
    assert len(at_limit) == wire.MAX_PAYLOAD_BYTES
    assert isinstance(decode(Kind.EVENT, at_limit), wire.Event)
    assert decode(Kind.EVENT, at_limit + " ") == DecodeError(
        RejectReason.TOO_LARGE, f"{wire.MAX_PAYLOAD_BYTES + 1} bytes > {wire.MAX_PAYLOAD_BYTES}"
    )
    assert decode(Kind.EVENT, "[1]") == DecodeError(
        RejectReason.NOT_OBJECT, "payload must be a JSON object"
    )
    assert decode(Kind.EVENT, "{not json") == DecodeError(
        RejectReason.BAD_JSON,
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )
    utf16 = json.dumps(body_of(Kind.EVENT)).encode("utf-16")  # with its byte-order mark
    got = wire.decode(wire.topic("acme", "d1", Kind.EVENT), utf16)
    assert isinstance(got, DecodeError) and got.reason is RejectReason.BAD_JSON


def test_a_command_without_its_topic_is_refused() -> None:
    payload = json.dumps(body_of(Kind.COMMAND))
    assert wire.decode_payload(payload, Kind.COMMAND) == DecodeError(
        RejectReason.BAD_TOPIC, "a command needs its topic"
    )


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-28T01:02:03.4567+05:30:00.123456",  # 40 characters: the longest admitted
        "2026-11-28T01:02:03.456789+05:30:00.00000",  # 41: refused before it is parsed
    ],
)
def test_a_timestamp_is_at_most_40_characters(ts: str) -> None:
    got = decode(Kind.TELEMETRY, body_of(Kind.TELEMETRY, ts=ts))
    if len(ts) == 40:
        assert isinstance(got, wire.Telemetry)
    else:
        assert got == DecodeError(BAD_TS, "ts must be an RFC 3339 string")


def test_optional_objects_may_be_left_out_or_null() -> None:
    assert accepted(Kind.EVENT).data == {}
    assert accepted(Kind.EVENT, data={"iface": "wwan0"}).data == {"iface": "wwan0"}
    assert decode(Kind.EVENT, json.dumps({**body_of(Kind.EVENT), "data": None})) == wire.Event(
        "d1", "b1", 1, T0, "link_down", {}
    )
    assert accepted(Kind.TELEMETRY).labels == {}


def test_a_birth_carries_its_labels_both_ways() -> None:
    birth = wire.Birth("d1", "b1", T0, "WR5120", "SN1", "1.0", "0.1.0", 60, (), {"site": "p3"})
    payload = wire.encode(birth)
    assert json.loads(payload)["labels"] == {"site": "p3"}
    assert wire.decode(wire.topic("acme", "d1", Kind.BIRTH), payload) == birth


def test_a_reply_carries_its_result_and_leaves_out_what_it_lacks() -> None:
    reply = wire.Reply("d1", "c1", True, T0, {"interval_s": 30})
    payload = wire.encode(reply)
    assert json.loads(payload) == {
        "v": 1,
        "device": "d1",
        "id": "c1",
        "ok": True,
        "ts": TS,
        "result": {"interval_s": 30},
    }
    assert wire.decode(wire.topic("acme", "d1", Kind.REPLY), payload) == reply


def test_the_encoder_writes_compact_utf8_json() -> None:
    state = wire.State("d1", wire.DeviceState.ONLINE, T0)
    assert (
        wire.encode(state) == b'{"v":1,"device":"d1","state":"online","ts":"' + TS.encode() + b'"}'
    )
    event = wire.Event("d1", "b", 0, T0, "custom", {"site": "泵站"})
    assert "泵站".encode() in wire.encode(event)


def test_the_encoder_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        wire.encode(wire.Telemetry("d1", "b", 0, T0, {"x": float("nan")}))


def test_a_payload_of_exactly_the_limit_is_encoded_one_more_byte_is_not() -> None:
    empty = len(wire.encode(wire.Event("d1", "b", 0, T0, "custom", {"blob": ""})))
    fits = wire.Event("d1", "b", 0, T0, "custom", {"blob": "x" * (wire.MAX_PAYLOAD_BYTES - empty)})
    assert len(wire.encode(fits)) == wire.MAX_PAYLOAD_BYTES
    over = fits._replace(data={"blob": "x" * (wire.MAX_PAYLOAD_BYTES - empty + 1)})
    with pytest.raises(ValueError, match=f"payload of {wire.MAX_PAYLOAD_BYTES + 1} bytes exceeds"):
        wire.encode(over)


def test_subscriptions_cover_one_kind_or_everything_of_a_tenant() -> None:
    assert wire.subscription() == "fleet/v1/+/#"
    assert wire.subscription(tenant="acme") == "fleet/v1/acme/#"
    assert wire.subscription(Kind.TELEMETRY, "acme") == "fleet/v1/acme/+/telemetry"
    assert wire.subscription(Kind.REPLY) == "fleet/v1/+/+/cmd/reply"


@pytest.fixture
def shanghai_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC+8, as on a gateway set to China time."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    assert datetime(2026, 1, 1, tzinfo=UTC).astimezone().utcoffset() == timedelta(hours=8)
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("shanghai_local_time")
def test_timestamps_are_written_and_read_in_utc_whatever_the_local_time() -> None:
    local = T0.astimezone(timezone(timedelta(hours=8)))
    assert wire.format_ts(local) == TS
    parsed = wire.parse_ts("2026-11-28T09:02:03.456+08:00")
    assert isinstance(parsed, datetime)
    assert parsed == T0
    assert parsed.tzinfo is UTC


def test_a_naive_timestamp_cannot_be_written() -> None:
    with pytest.raises(ValueError, match=r"^timestamps must be timezone-aware$"):
        wire.format_ts(datetime(2026, 11, 28))


def test_a_topic_names_its_tenant_device_and_kind() -> None:
    assert wire.parse_topic("fleet/v1/acme/d1/cmd/reply") == wire.Topic("acme", "d1", Kind.REPLY)
    assert wire.valid_id(ID64) and not wire.valid_id(ID65)


@pytest.mark.parametrize(
    ("topic", "detail"),
    [
        ("other/v1/acme/d1/telemetry", "not under fleet/v1/<tenant>/<device>/"),
        ("fleet/v1/acme/d1", "not under fleet/v1/<tenant>/<device>/"),
        ("fleet/v1/bad tenant/d1/telemetry", "invalid tenant id 'bad tenant'"),
        (f"fleet/v1/acme/{'x' * 100}/telemetry", f"invalid device id {'x' * 80!r}"),
        (f"fleet/v1/acme/d1/{'k' * 100}", f"unknown message kind {'k' * 80!r}"),
    ],
)
def test_a_bad_topic_says_which_part_is_wrong(topic: str, detail: str) -> None:
    assert wire.parse_topic(topic) == DecodeError(RejectReason.BAD_TOPIC, detail)
