"""The wire protocol: round trips, every reject reason, and a decoder that never raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import wire
from agent.wire import DecodeError, Kind, RejectReason

T0 = datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=UTC)
TOPIC = "fleet/v1/acme/wr5120-0001/telemetry"


def telemetry_body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "v": 1,
        "device": "wr5120-0001",
        "boot": "b1",
        "seq": 7,
        "ts": "2026-11-28T01:02:03.456Z",
        "metrics": {"cpu_pct": 12.5, "serial_up": True, "if_wan_up": 1, "operator": "CMCC"},
        "labels": {"site": "pump-3"},
    }
    body.update(over)
    return body


def reason(topic: str, payload: bytes | str) -> RejectReason:
    result = wire.decode(topic, payload)
    assert isinstance(result, DecodeError), result
    return result.reason


def test_telemetry_decodes_to_typed_message() -> None:
    msg = wire.decode(TOPIC, json.dumps(telemetry_body()))
    assert msg == wire.Telemetry(
        device="wr5120-0001",
        boot="b1",
        seq=7,
        ts=T0,
        metrics={"cpu_pct": 12.5, "serial_up": True, "if_wan_up": 1, "operator": "CMCC"},
        labels={"site": "pump-3"},
    )


@pytest.mark.parametrize(
    "message",
    [
        wire.Telemetry("d1", "b", 0, T0, {"cpu_pct": 1.5, "uptime_s": 3}, {"k": "v"}),
        wire.State("d1", wire.DeviceState.DYING_GASP, T0),
        wire.Event("d1", "b", 3, T0, "link_down", {"iface": "wwan0"}),
        wire.Birth("d1", "b", T0, "WR5120", "SN1", "1.2.3", "0.1.0", 60, ("system",), {}),
        wire.Command("d1", "c-1", "set_interval", {"interval_s": 30}, T0),
        wire.Reply("d1", "c-1", False, T0, None, "unknown command"),
    ],
)
def test_every_kind_round_trips(message: wire.Message) -> None:
    kind = {
        wire.Telemetry: Kind.TELEMETRY,
        wire.State: Kind.STATE,
        wire.Event: Kind.EVENT,
        wire.Birth: Kind.BIRTH,
        wire.Command: Kind.COMMAND,
        wire.Reply: Kind.REPLY,
    }[type(message)]
    assert wire.decode(wire.topic("acme", "d1", kind), wire.encode(message)) == message


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        ("other/v1/a/d/telemetry", "{}", RejectReason.BAD_TOPIC),
        ("fleet/v1/a/d/unknown", "{}", RejectReason.BAD_TOPIC),
        ("fleet/v1/a/bad id/telemetry", "{}", RejectReason.BAD_TOPIC),
        (TOPIC, b"x" * (wire.MAX_PAYLOAD_BYTES + 1), RejectReason.TOO_LARGE),
        (TOPIC, b"{not json", RejectReason.BAD_JSON),
        (TOPIC, b"\xff\xfe", RejectReason.BAD_JSON),
        (TOPIC, b"[1,2]", RejectReason.NOT_OBJECT),
        (TOPIC, json.dumps(telemetry_body(v=2)), RejectReason.BAD_VERSION),
        (TOPIC, json.dumps(telemetry_body(v=True)), RejectReason.BAD_VERSION),
        (TOPIC, json.dumps({"v": 1, "device": "wr5120-0001"}), RejectReason.MISSING_FIELD),
        (TOPIC, json.dumps(telemetry_body(seq=-1)), RejectReason.BAD_FIELD),
        (TOPIC, json.dumps(telemetry_body(seq=True)), RejectReason.BAD_FIELD),
        (TOPIC, json.dumps(telemetry_body(ts="yesterday")), RejectReason.BAD_TIMESTAMP),
        (TOPIC, json.dumps(telemetry_body(ts="2026-11-28T01:02:03")), RejectReason.BAD_TIMESTAMP),
        (TOPIC, json.dumps(telemetry_body(device="other")), RejectReason.DEVICE_MISMATCH),
        (
            TOPIC,
            json.dumps(telemetry_body(metrics={f"m{i}": i for i in range(wire.MAX_METRICS + 1)})),
            RejectReason.TOO_MANY_METRICS,
        ),
        (TOPIC, json.dumps(telemetry_body(metrics={"m" * 65: 1})), RejectReason.NAME_TOO_LONG),
        (TOPIC, json.dumps(telemetry_body(metrics={"CPU %": 1})), RejectReason.BAD_NAME),
        (TOPIC, json.dumps(telemetry_body(metrics={"x": [1]})), RejectReason.BAD_FIELD),
        (TOPIC, json.dumps(telemetry_body(metrics={"x": "s" * 129})), RejectReason.BAD_FIELD),
        (
            TOPIC,
            '{"v":1,"device":"wr5120-0001","boot":"b","seq":1,'
            '"ts":"2026-11-28T01:02:03Z","metrics":{"x":NaN}}',
            RejectReason.BAD_FIELD,
        ),
        (
            "fleet/v1/a/d/state",
            '{"v":1,"device":"d","state":"asleep","ts":"2026-11-28T00:00:00Z"}',
            RejectReason.BAD_FIELD,
        ),
        ("fleet/v1/a/d/cmd", '{"v":1,"id":"1","cmd":"Reboot!"}', RejectReason.BAD_NAME),
    ],
)
def test_each_reject_reason(topic: str, payload: bytes | str, expected: RejectReason) -> None:
    assert reason(topic, payload) is expected


def test_metric_name_canonicalises_interface_names() -> None:
    assert wire.metric_name("br-lan.2") == "br_lan_2"
    assert wire.valid_name(f"if_{wire.metric_name('br-lan')}_up")


def test_encode_refuses_oversized_payload() -> None:
    big = wire.Event("d1", "b", 0, T0, "custom", {"blob": "x" * wire.MAX_PAYLOAD_BYTES})
    with pytest.raises(ValueError, match="exceeds"):
        wire.encode(big)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
topics = st.sampled_from([f"fleet/v1/t/d/{k.value}" for k in Kind]) | st.text(max_size=40)


@settings(max_examples=400)
@given(topic=topics, payload=st.binary(max_size=300))
def test_decoder_never_raises_on_random_bytes(topic: str, payload: bytes) -> None:
    result = wire.decode(topic, payload)
    assert isinstance(result, (DecodeError, *wire.Message.__args__))  # type: ignore[attr-defined]


@settings(max_examples=400)
@given(
    kind=st.sampled_from(list(Kind)),
    body=st.dictionaries(
        st.sampled_from(
            [
                "v",
                "device",
                "boot",
                "seq",
                "ts",
                "metrics",
                "labels",
                "state",
                "event",
                "data",
                "model",
                "serial",
                "firmware",
                "agent",
                "interval_s",
                "id",
                "cmd",
                "args",
                "ok",
                "result",
                "error",
                "probes",
            ]
        ),
        json_values,
    ),
)
def test_decoder_never_raises_on_structured_junk(kind: Kind, body: dict[str, object]) -> None:
    payload = json.dumps(body | {"v": 1, "device": "d"} if len(body) % 2 else body)
    result = wire.decode(f"fleet/v1/t/d/{kind.value}", payload)
    if not isinstance(result, DecodeError):
        # Whatever is accepted survives a round trip unchanged.
        assert wire.decode(f"fleet/v1/t/d/{kind.value}", wire.encode(result)) == result


metric_values = (
    st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=wire.MAX_STRING_LEN)
)


@given(
    seq=st.integers(0, wire.MAX_SEQ),
    metrics=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True), metric_values, max_size=30
    ),
    ts=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_valid_telemetry_round_trips(
    seq: int, metrics: dict[str, wire.MetricValue], ts: datetime
) -> None:
    ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    msg = wire.Telemetry("dev-1", "boot", seq, ts, metrics)
    assert wire.decode("fleet/v1/t/dev-1/telemetry", wire.encode(msg)) == msg


def test_name_cache_is_bounded_and_never_admits_bad_names() -> None:
    for i in range(wire._KNOWN_NAMES_MAX + 100):
        assert not isinstance(
            wire.decode(TOPIC, json.dumps(telemetry_body(metrics={f"m{i}": 1}))), DecodeError
        )
    assert len(wire._KNOWN_NAMES) <= wire._KNOWN_NAMES_MAX
    assert (
        reason(TOPIC, json.dumps(telemetry_body(metrics={"Bad-Name": 1}))) is RejectReason.BAD_NAME
    )
    assert "Bad-Name" not in wire._KNOWN_NAMES
