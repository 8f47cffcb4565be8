"""Sink config files: good ones load into frozen objects, bad ones name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.delivery.adapters.jira import JiraAdapter
from collector.delivery.adapters.pagerduty import PagerDutyAdapter
from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.sinks import SinkConfigError, load_sinks, parse_duration

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
    project: OPS
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
    assert desk.secret == ENV["DESK_SECRET"]
    assert isinstance(sinks["jira"].adapter, JiraAdapter)
    assert sinks["jira"].adapter.transitions == {"resolved": "31"}
    assert sinks["jira"].headers == {"authorization": "Basic eDp5"}
    assert sinks["pager"].adapter == PagerDutyAdapter(
        "rk", "https://events.pagerduty.com/v2/enqueue"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sinks: 3", "key 'sinks': expected a list of sinks"),
        ("sinks:\n  - {name: a, type: fax, url: https://x}", "sinks[0].type: 'fax' is not one of"),
        ("sinks:\n  - {name: a, type: webhook, url: ftp://x}", "sinks[0].url: not an http(s) URL"),
        ("sinks:\n  - {type: webhook, url: https://x}", "sinks[0].name: required text, got None"),
        (
            "sinks:\n  - {name: a, type: webhook, url: https://x, secret_env: NOPE}",
            "sinks[0].secret_env: environment variable 'NOPE' is not set",
        ),
        (
            "sinks:\n  - {name: a, type: webhook, url: https://x, secret_env: BAD}",
            "sinks[0].secret_env: webhook secret must be 'whsec_' followed by base64",
        ),
        (
            "sinks:\n  - {name: a, type: webhook, url: https://x, dead_after: soon}",
            "sinks[0].dead_after: bad duration 'soon'",
        ),
        (
            "sinks:\n  - {name: a, type: webhook, url: https://x}\n"
            "  - {name: a, type: webhook, url: https://y}",
            "sinks[1].name: duplicate sink name 'a'",
        ),
        ("sinks:\n  - {name: a, type: jira, url: https://x}", "sinks[0].project: required text"),
    ],
)
def test_bad_file_names_file_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(text)
    with pytest.raises(SinkConfigError) as err:
        load_sinks(path, {"BAD": "not-a-secret!"})
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


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
    assert err == f"fleetdesk deliver: {path}: key 'sinks': expected a list of sinks\n"


def test_shipped_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "sinks.example.yaml"
    env = {"FLEETDESK_DESK_SECRET": ENV["DESK_SECRET"], "FLEETDESK_PD_ROUTING_KEY": "rk"}
    assert list(load_sinks(example, env)) == ["desk", "pager"]
