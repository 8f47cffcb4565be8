"""TLS with a test CA and per-device client certificates against a real Mosquitto: the
device with a certificate from the CA reports; one with a certificate from another CA is
refused by the broker and keeps its reports in its spool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import wire
from tests.support.agent import (
    AgentProcess,
    Sink,
    agent_config,
    spool_pending,
    wait_until,
)
from tests.support.mosquitto import Broker, TlsFiles
from tests.support.pki import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    cert, key = pki.issue("broker", server=True)
    files = TlsFiles(cafile=pki.ca_cert, certfile=cert, keyfile=key, require_certificate=True)
    broker = Broker(tmp_path / "mosquitto", tls=files).start()
    yield broker
    broker.stop()


def tls_section(ca: Path, cert: Path, key: Path) -> str:
    return f'[broker.tls]\nca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'


def test_client_certificates_from_the_ca_are_accepted_others_refused(
    tmp_path: Path, pki: Pki, tls_broker: Broker, agents: list[AgentProcess]
) -> None:
    assert tls_broker.url.startswith("mqtts://")
    sink = Sink(tls_broker, tls=(pki.ca_cert, *pki.issue("sink"))).start()
    try:
        good_cert, good_key = pki.issue("gw-good")
        good = AgentProcess.start(
            agent_config(
                tmp_path,
                tls_broker.url,
                device="gw-good",
                tls=tls_section(pki.ca_cert, good_cert, good_key),
                name="good.toml",
            ),
            "good",
        )
        rogue = Pki.create(tmp_path / "rogue-pki", "rogue-ca")
        bad_cert, bad_key = rogue.issue("gw-bad")
        bad = AgentProcess.start(
            agent_config(
                tmp_path,
                tls_broker.url,
                device="gw-bad",
                # It trusts the real broker; the broker does not trust its certificate.
                tls=tls_section(pki.ca_cert, bad_cert, bad_key),
                name="bad.toml",
            ),
            "bad",
        )
        agents.extend([good, bad])
        wait_until(lambda: len(sink.of(wire.Telemetry, "gw-good")) >= 3, what="TLS reports")
        wait_until(lambda: bad.text().count("retry in") >= 3, what="refused attempts")
        wait_until(lambda: spool_pending(tmp_path / "gw-bad" / "spool.db") >= 3)
        good.stop()
        bad.stop()
    finally:
        sink.stop()

    assert sink.of(wire.Birth, "gw-good")
    assert not [m for _, m in sink.messages if getattr(m, "device", None) == "gw-bad"]
    # Each refusal is logged with paho's reason (a TLS alert, an EOF or a reset: it depends
    # on when the broker's alert overtakes the CONNECT).
    assert bad.text().count("retry in") >= 3
    assert "connected to" not in bad.text()
