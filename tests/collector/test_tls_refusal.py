"""The collector refuses a broker it cannot verify: a certificate for another host name, and
one from a CA it does not trust. The real Mosquitto asks for no client certificate and allows
anonymous clients, so only the collector's own checks can refuse; each refusal is a log line
naming the verification failure, counted as a connect error, and the collector never
reports itself connected."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from collector.config.collector import parse_config
from collector.service import app
from tests.support.collector import collector_yaml, eventually, running
from tests.support.mosquitto import Broker, TlsFiles
from tests.support.pki import Pki


def tls_config(tmp_path: Path, broker: Broker, ca: Path) -> str:
    return collector_yaml(tmp_path, broker).replace(
        f"mqtt://127.0.0.1:{broker.port}",
        f"mqtts://127.0.0.1:{broker.port}\n  tls:\n    ca_file: {ca}",
    )


async def refused(
    tmp_path: Path, broker: Broker, ca: Path, caplog: pytest.LogCaptureFixture
) -> str:
    cfg = parse_config(tls_config(tmp_path, broker, ca), tmp_path / "c.yaml")
    stop = asyncio.Event()
    ready: asyncio.Future[app.Service] = asyncio.get_running_loop().create_future()
    with caplog.at_level(logging.WARNING, logger="fleetdesk.collector.mqtt"):
        task = asyncio.create_task(app.run(cfg, stop, on_ready=ready.set_result))
        service = await ready
        value = service.metrics.registry.get_sample_value

        def settled() -> bool:  # two refusals, or (the bug) a connection
            errors = value("collector_mqtt_connects_total", {"result": "error"}) or 0
            return errors >= 2 or service.intake.connected

        await eventually(settled)
        assert not service.intake.connected
        assert not value("collector_mqtt_connects_total", {"result": "ok"})
        stop.set()
        await task
    lines = [r.getMessage() for r in caplog.records if "CERTIFICATE_VERIFY_FAILED" in r.message]
    assert lines, caplog.text
    assert lines[0].startswith(f"cannot connect to mqtt 127.0.0.1:{broker.port}: ")
    return lines[0]


async def test_a_broker_certificate_for_another_host_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = await asyncio.to_thread(Pki.create, tmp_path / "pki")
    cert = await asyncio.to_thread(
        pki.issue, "elsewhere", server=True, hosts="DNS:broker.elsewhere.invalid"
    )
    broker = Broker(tmp_path / "mosquitto", tls=TlsFiles(pki.ca_cert, *cert, False)).start()
    try:
        line = await refused(tmp_path, broker, pki.ca_cert, caplog)
        assert "mismatch" in line
    finally:
        broker.stop()


async def test_a_broker_certificate_from_an_unknown_ca_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = await asyncio.to_thread(Pki.create, tmp_path / "pki")
    rogue = await asyncio.to_thread(Pki.create, tmp_path / "rogue", "rogue-ca")
    cert = await asyncio.to_thread(rogue.issue, "broker", server=True)
    broker = Broker(tmp_path / "mosquitto", tls=TlsFiles(rogue.ca_cert, *cert, False)).start()
    try:
        line = await refused(tmp_path, broker, pki.ca_cert, caplog)
        assert "certificate verify failed" in line
    finally:
        broker.stop()


async def test_the_same_collector_connects_when_it_trusts_the_broker(tmp_path: Path) -> None:
    """The control: the refusals above come from the certificate, not the set-up."""
    pki = await asyncio.to_thread(Pki.create, tmp_path / "pki")
    cert = await asyncio.to_thread(pki.issue, "broker", server=True)
    broker = Broker(tmp_path / "mosquitto", tls=TlsFiles(pki.ca_cert, *cert, False)).start()
    try:
        cfg = parse_config(tls_config(tmp_path, broker, pki.ca_cert), tmp_path / "c.yaml")
        async with running(cfg) as service:
            assert service.intake.connected
    finally:
        broker.stop()
