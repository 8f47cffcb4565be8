"""Every rejection reason, produced by a real message through a real broker, is counted in
/metrics and written as a dead letter, and the collector keeps accepting good messages."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import httpx

from agent import wire
from tests.support.collector import (
    Publisher,
    ago,
    collector_yaml,
    dead_letters,
    eventually,
    make_config,
    running,
    telemetry,
)
from tests.support.mosquitto import Broker

T = "fleet/v1/acme/dev-1/telemetry"


def _body(**overrides: object) -> bytes:
    body: dict[str, object] = {
        "v": 1,
        "device": "dev-1",
        "boot": "b1",
        "seq": 1,
        "ts": wire.format_ts(ago(0)),
        "metrics": {"cpu_pct": 1.0},
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


BAD: dict[str, tuple[str, bytes]] = {
    "bad_topic": ("fleet/v1/acme/dev-1/nonsense", _body()),
    "too_large": (T, b"{" + b" " * (wire.MAX_PAYLOAD_BYTES + 10) + b"}"),
    "bad_json": (T, b'{"v": 1, "device": '),
    "not_object": (T, b"[1, 2, 3]"),
    "bad_version": (T, _body(v=2)),
    "missing_field": (T, _body(boot=None)),
    "bad_field": (T, _body(seq=-5)),
    "bad_timestamp": (T, _body(ts="yesterday-ish")),
    "device_mismatch": (T, _body(device="dev-2")),
    "too_many_metrics": (T, _body(metrics={f"m{i}": i for i in range(wire.MAX_METRICS + 1)})),
    "name_too_long": (T, _body(metrics={"m" * (wire.MAX_NAME_LEN + 1): 1})),
    "bad_name": (T, _body(metrics={"CPU%": 1})),
    "ts_out_of_range": (T, _body(ts=wire.format_ts(ago(-timedelta(days=2).total_seconds())))),
    "mapping_empty": ("vendor/dtu-9/status", b'{"unrelated": 1}'),
}

MAPPING = """
mappings:
  - topic: vendor/+/status
    tenant: acme
    metrics:
      temp_c: sensors.temp
"""


def _counter(text: str, name: str, label: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_each_reject_reason_is_counted_and_the_service_keeps_running(
    tmp_path: Path, broker: Broker
) -> None:
    cfg = make_config(tmp_path, collector_yaml(tmp_path, broker, extra=MAPPING))
    pub = Publisher(broker)
    async with running(cfg) as service:
        await asyncio.to_thread(pub.publish, T, telemetry("dev-1", 1))
        for topic, payload in BAD.values():
            await asyncio.to_thread(pub.publish, topic, payload)
        await asyncio.to_thread(pub.publish, "vendor/dtu-9/status", b'{"sensors": {"temp": 41.5}}')
        await asyncio.to_thread(pub.publish, T, telemetry("dev-1", 2))
        url = f"http://127.0.0.1:{service.http_port}"
        async with httpx.AsyncClient() as http:
            for _ in range(600):  # up to 30 s: polled, never a timed assertion
                text = (await http.get(f"{url}/metrics")).text
                if _counter(text, "collector_messages_total", 'outcome="accepted"') >= 3:
                    break
                await asyncio.sleep(0.05)
            health = (await http.get(f"{url}/healthz")).json()
        assert health["status"] == "ok" and health["mqtt_connected"] is True
        # which calendars guess holidays in the next 12 months (test_calendar_estimates.py)
        assert isinstance(health["calendars_estimated"], dict)
        assert "# TYPE fleetdesk_calendar_estimated gauge" in text
        assert health["mqtt_subscribed"] is True
        for reason in BAD:
            assert _counter(text, "collector_rejects_total", f'reason="{reason}"') == 1, reason
        assert _counter(text, "collector_messages_total", 'outcome="rejected"') == len(BAD)
        # good messages before and after all went through, mapped JSON included
        assert _counter(text, "collector_messages_total", 'outcome="accepted"') == 3
        assert service.recent is not None
        assert service.recent.latest("dtu-9")[-1][1] == {"temp_c": 41.5}
        assert [s[1]["cpu_pct"] for s in service.recent.latest("dev-1")] == [1.0, 2.0]
    pub.close()
    letters = dead_letters(tmp_path / "dead-letters.jsonl")
    assert sorted(letter["reason"] for letter in letters) == sorted(BAD)
    assert all(letter["topic"] == BAD[letter["reason"]][0] for letter in letters)


async def test_dead_letters_are_published_to_the_dead_letter_topic(
    tmp_path: Path, broker: Broker
) -> None:
    extra = "  dead_letter_topic: noc/dead-letters\n"
    text = collector_yaml(tmp_path, broker).replace("intake:\n", "intake:\n" + extra)
    cfg = make_config(tmp_path, text)
    letters: list[dict[str, object]] = []
    watcher = Publisher(broker, client_id="dead-letter-watcher")
    watcher.client.on_message = lambda _c, _u, m: letters.append(json.loads(m.payload))
    watcher.client.subscribe("noc/dead-letters", qos=0)
    pub = Publisher(broker)
    async with running(cfg):
        await asyncio.to_thread(pub.publish, T, b"not json")
        await eventually(lambda: len(letters) == 1)
    pub.close()
    watcher.close()
    assert letters[0]["reason"] == "bad_json" and letters[0]["payload"] == "not json"
    assert letters[0]["topic"] == T
