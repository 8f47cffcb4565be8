"""TLS and credentials against a real Mosquitto; shared subscriptions split the load."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from collector.config.collector import parse_config
from collector.service import app
from tests.support.collector import Publisher, collector_yaml, eventually, running, telemetry
from tests.support.mosquitto import Broker, TlsFiles
from tests.support.services import require_program


def _certificates(folder: Path) -> TlsFiles:
    openssl = require_program("openssl")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=fleetdesk test CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=fleetdesk-collector",
    )
    run(
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "1",
    )
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key", False)


async def test_tls_with_password_connects_and_a_wrong_password_is_refused(tmp_path: Path) -> None:
    tls = await asyncio.to_thread(_certificates, tmp_path / "certs")
    passwords = tmp_path / "passwd"
    await asyncio.to_thread(
        subprocess.run,
        [require_program("mosquitto_passwd"), "-c", "-b", str(passwords), "collector", "s3cret"],
        check=True,
        capture_output=True,
    )
    passwords.chmod(0o600)
    broker = Broker(
        workdir=tmp_path / "mosquitto",
        tls=tls,
        extra_conf=f"allow_anonymous false\npassword_file {passwords}\n",
    ).start()
    try:

        def config(password: str) -> str:
            return collector_yaml(tmp_path, broker).replace(
                f"mqtt://127.0.0.1:{broker.port}",
                f"mqtts://127.0.0.1:{broker.port}\n  username: collector\n"
                f"  password: {password}\n  tls:\n    ca_file: {tls.cafile}",
            )

        good = parse_config(config("s3cret"), tmp_path / "good.yaml")
        assert good.mqtt.tls is not None and "s3cret" not in repr(good)
        async with running(good) as service:
            assert service.intake.connected
        bad = parse_config(config("wrong"), tmp_path / "bad.yaml")
        stop = asyncio.Event()
        ready: asyncio.Future[app.Service] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(app.run(bad, stop, on_ready=ready.set_result))
        service = await ready
        value = service.metrics.registry.get_sample_value
        await eventually(lambda: value("collector_mqtt_connects_total", {"result": "refused"}))
        assert not service.intake.connected
        stop.set()
        await task
    finally:
        broker.stop()


async def test_shared_subscription_splits_messages_between_collectors(
    tmp_path: Path, broker: Broker
) -> None:
    def config(name: str) -> str:
        text = collector_yaml(tmp_path / name, broker, client_id=name)
        return text.replace("mqtt:\n", "mqtt:\n  shared_group: pool\n")

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a = parse_config(config("a"), tmp_path / "a" / "c.yaml")
    cfg_b = parse_config(config("b"), tmp_path / "b" / "c.yaml")
    pub = Publisher(broker)
    async with running(cfg_a) as a, running(cfg_b) as b:
        topic = "fleet/v1/acme/d{}/telemetry"
        await asyncio.to_thread(
            pub.many, [(topic.format(i % 10), telemetry(f"d{i % 10}", i)) for i in range(100)]
        )

        def accepted(s: app.Service) -> float:
            value = s.metrics.registry.get_sample_value
            return value("collector_messages_total", {"outcome": "accepted"}) or 0.0

        await eventually(lambda: accepted(a) + accepted(b) == 100)
        assert accepted(a) > 0 and accepted(b) > 0  # each got a share, none got both
    pub.close()


async def test_tls_with_a_client_certificate(tmp_path: Path) -> None:
    files = await asyncio.to_thread(_certificates, tmp_path / "certs")
    tls = TlsFiles(files.cafile, files.certfile, files.keyfile, require_certificate=True)
    broker = Broker(workdir=tmp_path / "mosquitto", tls=tls).start()
    try:
        certs = tmp_path / "certs"
        text = collector_yaml(tmp_path, broker).replace(
            f"mqtt://127.0.0.1:{broker.port}",
            f"mqtts://127.0.0.1:{broker.port}\n  tls:\n    ca_file: {certs / 'ca.pem'}\n"
            f"    cert_file: {certs / 'client.pem'}\n    key_file: {certs / 'client.key'}",
        )
        cfg = parse_config(text, tmp_path / "c.yaml")
        async with running(cfg) as service:
            assert service.intake.connected
    finally:
        broker.stop()
