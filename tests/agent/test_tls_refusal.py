"""The agent refuses a broker it cannot verify: a certificate for another host name, and one
from a CA it does not trust. The broker (real Mosquitto, TLS listener, no client certificates
asked) would accept the agent, so only the agent's own checks can refuse; each refusal is a
log line that names the verification failure, and the reports stay in the spool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import AgentProcess, agent_config, spool_pending, wait_until
from tests.support.mosquitto import Broker, TlsFiles
from tests.support.pki import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


def start_broker(folder: Path, ca: Pki, cert: tuple[Path, Path]) -> Broker:
    files = TlsFiles(ca.ca_cert, *cert, require_certificate=False)
    return Broker(folder, tls=files).start()


@pytest.fixture
def brokers() -> Iterator[list[Broker]]:
    started: list[Broker] = []
    yield started
    for broker in started:
        broker.stop()


def run_agent(tmp_path: Path, broker: Broker, trusted: Path, device: str) -> AgentProcess:
    section = f'[broker.tls]\nca_file = "{trusted}"\n'
    config = agent_config(tmp_path, broker.url, device=device, tls=section, name=f"{device}.toml")
    return AgentProcess.start(config, device)


def refused(agent: AgentProcess, tmp_path: Path, device: str, reason: str) -> str:
    def settled() -> bool:  # two refusals, or (the bug) a connection
        text = agent.text()
        return text.count("CERTIFICATE_VERIFY_FAILED") >= 2 or "connected to" in text

    wait_until(settled, what="refusals")
    assert "connected to" not in agent.text()
    wait_until(lambda: spool_pending(tmp_path / device / "spool.db") >= 2, what="spooled")
    agent.stop()
    text = agent.text()
    assert "connected to" not in text
    [line, *_] = [x for x in text.splitlines() if "CERTIFICATE_VERIFY_FAILED" in x]
    assert "retry in" in line and reason in line, line
    return line


def test_a_broker_certificate_for_another_host_is_refused(
    tmp_path: Path, pki: Pki, brokers: list[Broker], agents: list[AgentProcess]
) -> None:
    # Signed by the CA the agent trusts, but for a name that is not 127.0.0.1.
    cert = pki.issue("elsewhere", server=True, hosts="DNS:broker.elsewhere.invalid")
    broker = start_broker(tmp_path / "mosquitto", pki, cert)
    brokers.append(broker)
    agent = run_agent(tmp_path, broker, pki.ca_cert, "gw-host")
    agents.append(agent)
    refused(agent, tmp_path, "gw-host", "mismatch")


def test_a_broker_certificate_from_an_unknown_ca_is_refused(
    tmp_path: Path, pki: Pki, brokers: list[Broker], agents: list[AgentProcess]
) -> None:
    rogue = Pki.create(tmp_path / "rogue", "rogue-ca")
    cert = rogue.issue("broker", server=True)  # right host name, wrong CA
    broker = start_broker(tmp_path / "mosquitto", rogue, cert)
    brokers.append(broker)
    agent = run_agent(tmp_path, broker, pki.ca_cert, "gw-ca")
    agents.append(agent)
    refused(agent, tmp_path, "gw-ca", "certificate verify failed")


def test_the_same_agent_connects_when_it_trusts_the_broker(
    tmp_path: Path, pki: Pki, brokers: list[Broker], agents: list[AgentProcess]
) -> None:
    """The control: the refusals above come from the certificate, not the set-up."""
    broker = start_broker(tmp_path / "mosquitto", pki, pki.issue("broker", server=True))
    brokers.append(broker)
    agent = run_agent(tmp_path, broker, pki.ca_cert, "gw-ok")
    agents.append(agent)
    wait_until(lambda: "connected to" in agent.text(), what="TLS connection")
    agent.stop()
    assert "CERTIFICATE_VERIFY_FAILED" not in agent.text()
