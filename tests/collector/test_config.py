"""Config and SNMP profile files: the example loads; a mistake is one line naming file and key."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collector.config.collector import ConfigError, load_config, parse_config
from collector.intake.snmp_profiles import ProfileError, load_profiles, parse_profile
from collector.preset_paths import default_rules_dir
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "collector.example.yaml"


def test_the_example_config_loads_into_typed_values() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.mqtt.port == 1883 and cfg.mqtt.protocol == "5"
    assert cfg.mqtt.session_expiry_s == 604800
    assert cfg.store.url.startswith("sqlite:///")
    assert cfg.intake.dead_letter_file == EXAMPLE.parent / "dead-letters.jsonl"
    assert [t.version for t in cfg.snmp.targets] == ["2c", "3"]
    assert cfg.snmp.traps is not None and cfg.snmp.traps.port == 1162
    assert cfg.mappings[0].metrics[0] == ("temp_c", ("sensors", "board_temp"))
    assert "change-me" not in repr(cfg)  # secrets stay out of reprs and logs


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("mqtt:\n  url: http://x:1\n", "mqtt.url"),
        ("mqtt:\n  protocol: '4'\n", "mqtt.protocol"),
        ("mqtt:\n  keepalive_s: 1\n", "mqtt.keepalive_s"),
        ("mqtt:\n  shared_group: 'a/b'\n", "mqtt.shared_group"),
        ("mqtt:\n  colour: blue\n", "mqtt.colour: unknown key"),
        ("store:\n  url: mysql://x\n", "store.url"),
        ("tsdb:\n  url: ftp://x\n", "tsdb.url"),
        ("tsdb:\n  max_buffer_lines: 0\n", "tsdb.max_buffer_lines"),
        ("http:\n  listen: nowhere\n", "http.listen"),
        ("intake:\n  dedup_window: 0\n", "intake.dedup_window"),
        ("mappings:\n  - {topic: 'a/#', metrics: {x: y}}\n", "mappings[0].topic"),
        ("mappings:\n  - {topic: 'a/+', metrics: {}}\n", "mappings[0].metrics"),
        ("mappings:\n  - {topic: 'a/+', metrics: {'Bad': y}}\n", "mappings[0].metrics.Bad"),
        ("snmp:\n  devices:\n    - {host: h}\n", "snmp.devices[0].device"),
        (
            "snmp:\n  devices:\n    - {device: d, host: h, version: '1'}\n",
            "snmp.devices[0].version",
        ),
        (
            "snmp:\n  devices:\n    - {device: d, host: h, version: '3', v3: {user: u,"
            " auth_key: short, priv_key: longenough}}\n",
            "snmp.devices[0].v3.auth_key",
        ),
        ("snmp:\n  traps:\n    listen: 1162\n", "snmp.traps.listen"),
        ("log_level: loud\n", "log_level"),
        ("intake:\n  dead_letter_topic: fleet/v1/dead\n", "intake.dead_letter_topic"),
        ("mqtt: [1, 2]\n", "mqtt: must be a mapping"),
        ("mqtt:\n  url: 'mqtt://x:1'\n  tenants: 5\n", "mqtt.tenants"),
        ("a: [\n", "line 2: invalid YAML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    file = tmp_path / "bad.yaml"
    with pytest.raises(ConfigError) as err:
        parse_config(text, file)
    message = str(err.value)
    assert message.startswith(f"{file}: ") and where in message and "\n" not in message


def test_shipped_snmp_profiles_load() -> None:
    profiles = load_profiles(default_rules_dir() / "snmp")
    assert {"router", "system", "host"} <= set(profiles)
    router = profiles["router"]
    metrics = router.metrics(
        {
            "1.3.6.1.2.1.1.3.0": 12345,
            "1.3.6.1.4.1.2021.11.11.0": 93,
            "1.3.6.1.4.1.2021.4.5.0": 1000,
            "1.3.6.1.4.1.2021.4.6.0": 250,
            "1.3.6.1.4.1.2021.10.1.5.1": None,  # noSuchObject: left out
        },
        {
            "1.3.6.1.2.1.31.1.1.1.1": {"1.3.6.1.2.1.31.1.1.1.1.3": "br-lan"},
            "1.3.6.1.2.1.2.2.1.8": {"1.3.6.1.2.1.2.2.1.8.3": 2},
            "1.3.6.1.2.1.31.1.1.1.6": {"1.3.6.1.2.1.31.1.1.1.6.3": 99},
        },
    )
    assert metrics == {
        "uptime_s": 123.45,
        "cpu_pct": 7.0,
        "mem_used_pct": 75.0,
        "if_br_lan_up": False,
        "if_br_lan_rx_bytes": 99.0,
    }


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("scalars: {}\n", "name: is required"),
        ("name: x\nscalars:\n  uptime_s: {oid: sysUpTime}\n", "scalars.uptime_s.oid"),
        ("name: x\nscalars:\n  Up: {oid: 1.3.6}\n", "scalars.Up"),
        ("name: x\nscalars:\n  up: {oid: 1.3.6, scal: 2}\n", "scalars.up.scal: unknown key"),
        ("name: x\ntables:\n  - {name: if, label: 1.3, columns: {up: {oid: x}}}\n", "up.oid"),
    ],
)
def test_bad_profile_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(text, tmp_path / "p.yaml")
    assert where in str(err.value) and str(tmp_path / "p.yaml") in str(err.value)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "collector", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_cli_check_and_errors(tmp_path: Path) -> None:
    assert _cli("--config", str(EXAMPLE), "--check").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("snmp:\n  devices:\n    - {device: d, host: h, profile: nope}\n")
    done = _cli("--config", str(bad), "--check")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unknown profile 'nope'" in done.stderr
    missing = _cli("--config", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_cli_http_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(
            f"mqtt:\n  url: mqtt://127.0.0.1:{free_port()}\nhttp:\n  listen: 127.0.0.1:{port}\n"
            f"store:\n  url: sqlite:///{tmp_path / 's.db'}\n"
        )
        done = _cli("--config", str(config))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"fleetdesk collector: http: cannot listen on 127.0.0.1:{port}"
    )
