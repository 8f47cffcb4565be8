"""Config and SNMP profile files: the example loads; a mistake is one line naming file, line and
key; the JSON Schema of the config is valid and accepts the example."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from collector.config.collector import json_schema, load_config, parse_config, reference
from collector.config.errors import ConfigError
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
        ("mqtt:\n  url: http://x:1\n", "2: mqtt.url: must be mqtt://"),
        ("mqtt:\n  url: mqtt://x:70000\n", "2: mqtt.url: port out of range"),
        ("mqtt:\n  protocol: '4'\n", "2: mqtt.protocol: Input should be '5' or '3.1.1'"),
        ("mqtt:\n  keepalive_s: 1\n", "2: mqtt.keepalive_s: Input should be greater than"),
        ("mqtt:\n  keepalive_s: 2.5s\n", "2: mqtt.keepalive_s: must be whole seconds"),
        ("mqtt:\n  shared_group: 'a/b'\n", "2: mqtt.shared_group: String should match"),
        ("mqtt:\n  colour: blue\n", "2: mqtt.colour: unknown key (expected one of: client_id,"),
        ("mqtt:\n  password_file: nope\n", "2: mqtt.password_file: cannot read"),
        ("mqtt:\n  url: mqtt://x:1\n  url: mqtt://y:1\n", "3: mqtt.url: key given twice"),
        ("store:\n  url: mysql://x\n", "2: store.url: must be sqlite:///PATH"),
        ("tsdb:\n  url: ftp://x\n", "2: tsdb.url: must be an http(s) URL"),
        ("tsdb:\n  max_buffer_lines: 0\n", "2: tsdb.max_buffer_lines: Input should be greater"),
        ("tsdb:\n  batch_size: '5'\n", "2: tsdb.batch_size: Input should be a valid integer"),
        ("http:\n  listen: nowhere\n", "2: http.listen: must be HOST:PORT"),
        ("intake:\n  dedup_window: 0\n", "2: intake.dedup_window"),
        ("intake:\n  ts_max_past_s: 3x\n", "2: intake.ts_max_past_s: bad duration '3x'"),
        ("mappings:\n  - {topic: 'a/#', metrics: {x: y}}\n", "2: mappings[0].topic: needs exactly"),
        ("mappings:\n  - {topic: 'a/+', metrics: {}}\n", "2: mappings[0].metrics: needs at least"),
        ("mappings:\n  - {topic: 'a/+'}\n", "2: mappings[0].metrics: is required"),
        (
            "mappings:\n  - topic: 'a/+'\n    metrics:\n      Bad: y\n",
            "4: mappings[0].metrics.Bad: String should match pattern",
        ),
        ("snmp:\n  devices:\n    - {host: h}\n", "3: snmp.devices[0].device: is required"),
        (
            "snmp:\n  devices:\n    - {device: d, host: h, version: '1'}\n",
            "3: snmp.devices[0].version: Input should be '2c' or '3'",
        ),
        (
            "snmp:\n  devices:\n    - {device: d, host: h, version: 3}\n",
            "3: snmp.devices[0].v3: is required for version 3",
        ),
        (
            "snmp:\n  devices:\n    - {device: d, host: h, version: '3', v3: {user: u,"
            " auth_key: short, priv_key: longenough}}\n",
            "3: snmp.devices[0].v3.auth_key: must be at least 8 characters",
        ),
        (
            "snmp:\n  devices:\n    - device: d\n      host: h\n      port: 0\n",
            "5: snmp.devices[0].port: Input should be greater than or equal to 1",
        ),
        ("snmp:\n  traps:\n    listen: 1162\n", "3: snmp.traps.listen: must be HOST:PORT"),
        ("snmp:\n  traps:\n    sources: {a: [1]}\n", "3: snmp.traps.sources.a: Input should"),
        ("tickets:\n  worker: 1\n", "2: tickets.worker: Input should be a valid boolean"),
        ("log_level: loud\n", "1: log_level: Input should be 'debug', 'info'"),
        ("intake:\n  dead_letter_topic: fleet/v1/dead\n", "2: intake.dead_letter_topic: must be"),
        ("mqtt: [1, 2]\n", "1: mqtt: expected a mapping"),
        ("mqtt:\n  url: 'mqtt://x:1'\n  tenants: 5\n", "3: mqtt.tenants: expected a list"),
        ("[1]\n", "1: expected a mapping"),
        ("a: [\n", "2: not valid YAML"),
    ],
)
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    file = tmp_path / "bad.yaml"
    with pytest.raises(ConfigError) as err:
        parse_config(text, file)
    message = str(err.value)
    assert message.startswith(f"{file}:{where}") and "\n" not in message
    assert err.value.source == str(file) and err.value.line == int(where.split(":", 1)[0])


@pytest.mark.parametrize(
    "text",
    [
        "mqtt:\n  url: mqtt://collector:hunter2-secret@x:1\n",
        "store:\n  url: mysql://fleet:hunter2-secret@db/fleet\n",
        "tsdb:\n  url: ftp://user:hunter2-secret@x\n",
        "snmp:\n  devices:\n    - {device: d, host: h, version: '3',"
        " v3: {user: u, auth_key: hunter2-secret, priv_key: short}}\n",
        "snmp:\n  devices:\n    - {device: d, host: h, community: [hunter2-secret]}\n",
    ],
)
def test_secrets_stay_out_of_error_messages(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "c.yaml")
    assert "hunter2" not in str(err.value)


def test_defaults_durations_and_relative_paths(tmp_path: Path) -> None:
    cfg = parse_config(
        "mqtt:\n  url: mqtts://broker.test\n  keepalive_s: 1m\n  username: ~\n"
        "snmp:\n  interval_s: 5m\n  traps:\nrules:\n  inventory: inv.csv\n",
        tmp_path / "c.yaml",
    )
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.keepalive_s) == ("broker.test", 8883, 60)
    assert cfg.mqtt.tls is not None and cfg.mqtt.username is None  # mqtts: TLS on by itself
    assert cfg.snmp.interval_s == 300.0 and cfg.snmp.traps is not None  # `traps:` alone listens
    assert (cfg.snmp.traps.host, cfg.snmp.traps.port) == ("127.0.0.1", 1162)
    assert cfg.rules.inventory == tmp_path / "inv.csv"
    assert cfg.store.url == f"sqlite:///{tmp_path / 'fleetdesk-collector.db'}"  # beside the file
    assert (cfg.http.host, cfg.http.port, cfg.source) == ("127.0.0.1", 9108, tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="frozen"):
        cfg.mqtt.keepalive_s = 5  # type: ignore[misc]


def test_the_schema_is_valid_json_schema_and_accepts_the_example() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(example)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**example, "colour": "blue"})
    assert schema["properties"]["mqtt"]["$ref"] == "#/$defs/MqttConfig"


def test_the_docs_reference_is_the_generated_one() -> None:
    docs = (ROOT / "docs" / "collector.md").read_text(encoding="utf-8")
    start = docs.index("<!-- generated: fleetdesk collector --reference -->\n")
    table = docs[docs.index("\n", start) + 1 : docs.index("<!-- end generated -->")]
    assert table == reference(), (
        "run: fleetdesk collector --reference, paste into docs/collector.md"
    )
    assert "| `snmp.devices[].v3.auth_key` | text | required |" in table


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
    with pytest.raises(ConfigError) as err:  # ProfileError is ConfigError
        parse_profile(text, tmp_path / "p.yaml")
    assert ProfileError is ConfigError and err.value.source == str(tmp_path / "p.yaml")
    assert where in str(err.value) and str(tmp_path / "p.yaml") in str(err.value)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "collector", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_cli_check_schema_and_errors(tmp_path: Path) -> None:
    assert _cli("--config", str(EXAMPLE), "--check").returncode == 0
    schema = _cli("--schema")
    assert schema.returncode == 0 and json.loads(schema.stdout) == json_schema()
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
