"""The agent's TOML configuration: good files become frozen typed objects, every bad file is
one line naming file, line, key and reason (fixtures in fixtures/config/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig, BrokerUrl, ConfigError, ReachTarget, load, parse
from tests.support.agent import FIXTURES, REPO

BAD = sorted((FIXTURES / "config" / "bad").glob("*.toml"))
MINIMAL = '[device]\nid = "gw-1"\ntenant = "t"\n[broker]\nurl = "mqtt://127.0.0.1"\n'


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} needs an '# expect:' first line"
    return first.removeprefix("# expect: ")


def test_a_full_file_becomes_typed_frozen_objects() -> None:
    config = load(FIXTURES / "config" / "good-full.toml")
    assert config.interval_s == 2.5 and config.log_level == "debug"
    assert config.device.id == "wd150-0042" and config.device.labels["site"] == "pump-3"
    assert config.broker.urls == (
        BrokerUrl("broker-a.example", 8883, True),
        BrokerUrl("10.0.0.2", 1883, False),
    )
    assert config.broker.protocol == "5" and config.broker.reconnect_max_s == 120
    assert config.spool.max_bytes == 8 * 1024 * 1024 and config.spool.inflight == 300
    probes = config.probes
    assert probes.system is not None and probes.system.disk_path == "/overlay"
    assert probes.interfaces is not None and probes.interfaces.include == ("wwan*", "br-lan")
    assert probes.reachability is not None
    assert probes.reachability.targets == (
        ReachTarget("127_0_0_2", "127.0.0.2", None, "auto"),
        ReachTarget("broker_a_example_8883", "broker-a.example", 8883, "auto"),
        ReachTarget("dns", "127.0.0.53", 53, "tcp"),
    )
    assert probes.cellular is not None and probes.cellular.at_port == "/dev/ttyUSB2"
    assert probes.serial is not None and probes.serial.port == "/dev/ttyS1"
    assert [c.name for c in probes.exec] == ["vpn_up", "queue_depth"]
    with pytest.raises(AttributeError):  # frozen (a NamedTuple)
        config.interval_s = 1  # type: ignore[misc]
    # The password is there for the session but never in a repr (and so never in a log).
    assert config.broker.password == "s3cret-value"
    assert "s3cret" not in repr(config)


def test_defaults_of_a_minimal_file() -> None:
    config = parse(MINIMAL, "minimal.toml")
    assert isinstance(config, AgentConfig)
    assert config.interval_s == 10.0
    assert config.spool.path == Path(".fleetdesk-agent/spool.db")
    assert config.probes.system is not None and config.probes.interfaces is not None
    assert config.probes.cellular is None and config.probes.exec == ()


def test_the_example_config_is_valid() -> None:
    config = load(REPO / "deploy" / "agent.example.toml")
    assert config.broker.urls == (BrokerUrl("127.0.0.1", 1883, False),)
    assert not config.spool.path.is_absolute()  # `make agent` needs no root


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_each_bad_file_is_one_line_naming_file_key_and_reason(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expectation(path) in message


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load("/nonexistent/agent.toml")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_reports_a_bad_file_in_one_line_with_status_2() -> None:
    bad = FIXTURES / "config" / "bad" / "password-without-user.toml"
    done = run_cli("-m", "collector", "agent", "--config", str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"fleetdesk agent: {bad}:")
    assert "broker.username" in lines[0]
    assert "hunter2" not in done.stderr + done.stdout  # secrets are never echoed


def test_cli_check_accepts_a_good_file() -> None:
    good = FIXTURES / "config" / "good-full.toml"
    done = run_cli("-m", "agent.cli", "--config", str(good), "--check")
    assert done.returncode == 0, done.stderr
    assert "ok (device wd150-0042" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


def test_cli_missing_config_argument_is_status_2() -> None:
    done = run_cli("-m", "agent.cli")
    assert done.returncode == 2 and "--config" in done.stderr


def test_the_command_key_is_read_and_never_shown(tmp_path: Path) -> None:
    key = tmp_path / "command.key"
    key.write_text("  0123456789abcdef0123  \n")
    config = parse(f'{MINIMAL}[commands]\nkey_file = "{key}"\nping_targets = ["10.0.0.1"]\n')
    assert config.commands.key == b"0123456789abcdef0123"
    assert config.commands.ping_targets == ("10.0.0.1",)
    assert not config.commands.trust_broker_acl
    assert "0123456789abcdef" not in repr(config)
    key.write_text("too-short")
    with pytest.raises(ConfigError, match=r"commands\.key_file: the key is shorter than 16"):
        parse(f'{MINIMAL}[commands]\nkey_file = "{key}"\n')
    assert parse(MINIMAL).commands.key is None  # no table: every command is refused
