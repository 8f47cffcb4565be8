"""Sink config files: good ones load into frozen objects, bad ones name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.config.durations import parse_seconds as parse_duration
from collector.config.errors import ConfigError
from collector.delivery.adapters import registry
from collector.delivery.adapters.jira import JiraAdapter
from collector.delivery.adapters.pagerduty import PagerDutyAdapter
from collector.delivery.adapters.servicenow import ServiceNowAdapter
from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.adapters.zammad import ZammadAdapter
from collector.delivery.sinks import SinkConfigError, load_sinks

GOOD = """
sinks:
  - name: desk
    type: webhook
    url: https://desk.example.com/hooks
    secret_env: DESK_SECRET
    dead_after: 12h
    backoff_base: 2s
    backoff_cap: 10m
  - name: jira
    type: jira
    url: https://example.atlassian.net
    service_desk_id: "1"
    request_type_id: "10"
    transitions: {resolved: 31}
    authorization_env: JIRA_AUTH
  - name: pager
    type: pagerduty
    routing_key_env: PD_KEY
"""
ENV = {"DESK_SECRET": "whsec_c2VjcmV0LWtleS0xMjM=", "JIRA_AUTH": "Basic eDp5", "PD_KEY": "rk"}


def test_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(GOOD)
    sinks = load_sinks(path, ENV)
    assert list(sinks) == ["desk", "jira", "pager"]
    desk = sinks["desk"]
    assert desk.adapter == WebhookAdapter("https://desk.example.com/hooks")
    assert desk.dead_after_s == 12 * 3600 and desk.backoff.base_s == 2 and desk.backoff.cap_s == 600
    assert desk.secrets == (ENV["DESK_SECRET"],)
    assert isinstance(sinks["jira"].adapter, JiraAdapter)
    assert sinks["jira"].adapter.transitions == {"resolved": "31"}
    assert sinks["jira"].headers == {"authorization": "Basic eDp5"}
    assert sinks["pager"].adapter == PagerDutyAdapter(
        "rk", "https://events.pagerduty.com/v2/enqueue"
    )


FLOW = "sinks:\n  - {name: a, type: webhook, url: https://x"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("sinks: 3", 1, "sinks: expected a list of sinks"),
        ("colour: red", 1, "colour: unknown key (expected one of: sinks)"),
        ("sinks:\n  - 3", 2, "sinks[0]: expected a mapping"),
        (
            "sinks:\n  - {name: a, type: fax, url: https://x}",
            2,
            "sinks[0].type: 'fax' is not one of the registered desk types: webhook, jira, "
            "zammad, servicenow, pagerduty",
        ),
        ("sinks:\n  - {name: a, type: webhook, url: ftp://x}", 2, "sinks[0].url: not an http(s)"),
        ("sinks:\n  - {type: webhook, url: https://x}", 2, "sinks[0].name: required text, missing"),
        (
            FLOW + ", secret_env: NOPE}",
            2,
            "sinks[0].secret_env: environment variable 'NOPE' is not set",
        ),
        (
            FLOW + ", secret_env: BAD}",
            2,
            "sinks[0].secret_env: webhook secret must be 'whsec_' followed by base64",
        ),
        (FLOW + ", dead_after: soon}", 2, "sinks[0].dead_after: bad duration 'soon'"),
        (
            "sinks:\n  - {name: a, type: webhook, url: https://x}\n"
            "  - {name: a, type: webhook, url: https://y}",
            3,
            "sinks[1].name: duplicate sink name 'a'",
        ),
        (
            "sinks:\n  - {name: a, type: jira, url: https://x}",
            2,
            "sinks[0].service_desk_id: required",
        ),
        (
            "sinks:\n  - name: a\n    type: webhook\n    url: https://x\n    project: OPS",
            5,
            "sinks[0].project: unknown key (expected one of: allow_http_loopback,",
        ),
        (
            "sinks:\n  - name: a\n    type: jira\n    url: https://x\n    service_desk_id: 1\n"
            "    request_type_id: 2\n    transitions: {resolve: 31}",
            7,
            "sinks[0].transitions.resolve: unknown key (expected one of: acknowledged,",
        ),
        ("sinks:\n  - {name: a, type: pagerduty}", 2, "sinks[0].routing_key_env: required for"),
        ("sinks:\n  - {name: a, type: zammad, url: https://x, group: g}", 2, "sinks[0].customer"),
        (
            "sinks:\n  - name: a\n    type: webhook\n    url: https://x\n    name: b",
            5,
            "sinks[0].name: key given twice",
        ),
    ],
)
def test_bad_file_names_file_line_key_and_value(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(text)
    with pytest.raises(SinkConfigError) as err:
        load_sinks(path, {"BAD": "not-a-secret!"})
    assert isinstance(err.value, ConfigError) and err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_secrets_never_appear_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(FLOW + ", secret_env: BAD}")
    with pytest.raises(ConfigError) as err:
        load_sinks(path, {"BAD": "whsec_!!leaked!!"})
    assert "leaked" not in str(err.value)
    path.write_text("sinks:\n  - {name: a, type: webhook, url: 'ftp://ops:hunter2@desk'}")
    with pytest.raises(ConfigError) as err:
        load_sinks(path, {})
    assert "hunter2" not in str(err.value) and "ftp://ops:***@desk" in str(err.value)


def test_every_desk_is_registered_and_builds_from_its_keys(tmp_path: Path) -> None:
    assert registry.names() == ("webhook", "jira", "zammad", "servicenow", "pagerduty")
    path = tmp_path / "sinks.yaml"
    path.write_text(
        "sinks:\n"
        "  - {name: z, type: zammad, url: https://z, group: Field, customer: noc@example.com}\n"
        "  - {name: s, type: servicenow, url: https://s}\n"
        "  - {name: j, type: jira, url: https://j, service_desk_id: 1, request_type_id: 2}\n"
    )
    sinks = load_sinks(path, {})
    assert sinks["z"].adapter == ZammadAdapter("https://z", "Field", "noc@example.com")
    assert sinks["s"].adapter == ServiceNowAdapter("https://s", None)
    assert sinks["j"].adapter == JiraAdapter("https://j", "1", "2", {})


def test_durations() -> None:
    assert parse_duration("1d2h3m4s") == 93784
    assert parse_duration("0.5s") == 0.5
    with pytest.raises(ValueError):
        parse_duration("")


def test_deliver_command_reports_bad_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text("sinks: nope")
    status = main(["deliver", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--sinks", str(path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"fleetdesk deliver: {path}:1: sinks: expected a list of sinks\n"


def test_shipped_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "sinks.example.yaml"
    env = {"FLEETDESK_DESK_SECRET": ENV["DESK_SECRET"], "FLEETDESK_PD_ROUTING_KEY": "rk"}
    assert list(load_sinks(example, env)) == ["desk", "pager"]
