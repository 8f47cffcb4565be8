"""The command gate on its own: time passed in, a table of commands and what it says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.command_auth import MAX_SEEN, CommandGate, canonical, make_command, signature
from agent.config_types import CommandsConfig

TOPIC = "fleet/v1/demo/demo-gw-0001/cmd"
KEY = b"0123456789abcdef0123"
NOW = datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=UTC)


def body(
    exp: timedelta | None = timedelta(minutes=5), key: bytes | None = KEY, **extra: Any
) -> dict[str, Any]:
    cmd = make_command("set_interval", {"interval_s": 30}, NOW, 300, "c-9") | extra
    if exp is None:
        del cmd["exp"]
    else:
        cmd["exp"] = (NOW + exp).isoformat()
    if key is not None:
        cmd["sig"] = signature(cmd, TOPIC, key)
    return cmd


def test_the_canonical_form_is_the_one_docs_wire_md_shows() -> None:
    cmd = make_command("set_interval", {"interval_s": 30}, NOW, 300, "c-9")
    assert canonical(cmd | {"sig": "ignored"}, TOPIC) == (
        b"fleet/v1/demo/demo-gw-0001/cmd\n"
        b'{"args":{"interval_s":30},"cmd":"set_interval","exp":"2026-11-28T01:07:03.456Z",'
        b'"id":"c-9","ts":"2026-11-28T01:02:03.456Z","v":1}'
    )


SIGNED = CommandsConfig(key=KEY)
ACL = CommandsConfig(trust_broker_acl=True)
CASES = [
    ("signed", SIGNED, body(), False, None),
    ("retained", SIGNED, body(), True, "retained"),
    ("unsigned", SIGNED, body(key=None), False, "unsigned"),
    ("no key", CommandsConfig(), body(), False, "unsigned"),
    ("forged", SIGNED, body(key=b"another-key-0123456"), False, "bad_signature"),
    ("sig not a string", SIGNED, body(key=None, sig=7), False, "bad_signature"),
    ("acl, unsigned", ACL, body(key=None), False, None),
    ("acl, retained", ACL, body(key=None), True, "retained"),
    ("no exp", SIGNED, body(exp=None), False, "no_expiry"),
    ("bad exp, acl", ACL, body(key=None) | {"exp": "soon"}, False, "bad_expiry"),
    ("just past, within skew", SIGNED, body(exp=timedelta(seconds=-59)), False, None),
    ("past", SIGNED, body(exp=timedelta(seconds=-61)), False, "expired"),
    ("max ttl + skew", SIGNED, body(exp=timedelta(seconds=3660)), False, None),
    ("too far ahead", SIGNED, body(exp=timedelta(seconds=3661)), False, "bad_expiry"),
]


@pytest.mark.parametrize(
    ("config", "cmd", "retained", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_what_the_gate_says(
    config: CommandsConfig, cmd: dict[str, Any], retained: bool, expected: str | None
) -> None:
    said = CommandGate(config).check(cmd, TOPIC, retained, NOW)
    assert (said if said is None else said.split(":")[0]) == expected, said


def test_ids_are_remembered_until_their_expiry_and_across_a_dump() -> None:
    gate = CommandGate(SIGNED)
    cmd = body()
    assert gate.check(cmd, TOPIC, False, NOW) is None
    said = gate.check(cmd, TOPIC, False, NOW + timedelta(minutes=1))
    assert said is not None and said.startswith("replayed")
    restarted = CommandGate(SIGNED)
    restarted.load(gate.dump())
    said = restarted.check(cmd, TOPIC, False, NOW + timedelta(minutes=2))
    assert said is not None and said.startswith("replayed")
    restarted.load("not json")  # a damaged value is ignored
    later = NOW + timedelta(minutes=5, seconds=61)  # past exp and skew: too late anyway
    said = restarted.check(cmd, TOPIC, False, later)
    assert said is not None and said.startswith("expired")
    assert json.loads(restarted.dump()) == {
        "c-9": pytest.approx((NOW + timedelta(minutes=6)).timestamp())
    }


def test_live_ids_are_bounded() -> None:
    gate = CommandGate(ACL)
    for n in range(MAX_SEEN):
        assert gate.check(body(key=None, id=f"c{n}"), TOPIC, False, NOW) is None
    said = gate.check(body(key=None, id="one-more"), TOPIC, False, NOW)
    assert said is not None and said.startswith("too_many")
    assert (
        gate.check(
            body(exp=timedelta(minutes=10), key=None, id="later"),
            TOPIC,
            False,
            NOW + timedelta(minutes=7),
        )
        is None
    )
