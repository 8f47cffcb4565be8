"""Decode stage: wire messages (``fleet/v1/...``) and mapped third-party JSON topics.

Rejects carry the wire protocol's reasons, plus ``ts_out_of_range`` (a timestamp absurdly far
from the arrival time: the device's clock is wrong), ``unmapped_topic`` (no mapping matches) and
``mapping_empty`` (a mapped payload without any of the configured values).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from agent import wire
from collector.config.collector import IntakeConfig, MetricMapping
from collector.intake.deadletter import Rejects
from collector.intake.envelope import Envelope
from collector.metrics import Metrics

TS_OUT_OF_RANGE = "ts_out_of_range"
UNMAPPED_TOPIC = "unmapped_topic"
MAPPING_EMPTY = "mapping_empty"


class TopicMapper:
    """Matches third-party topics (one ``+`` = device id) and turns JSON into telemetry."""

    def __init__(self, mappings: tuple[MetricMapping, ...]) -> None:
        self.mappings = [(m, m.topic.split("/")) for m in mappings]

    def match(self, topic: str) -> tuple[MetricMapping, str] | None:
        levels = topic.split("/")
        for mapping, pattern in self.mappings:
            if len(levels) != len(pattern):
                continue
            device = None
            for want, got in zip(pattern, levels, strict=True):
                if want == "+":
                    device = got
                elif want != got:
                    break
            else:
                if device is not None:
                    return mapping, device
        return None

    @staticmethod
    def extract(mapping: MetricMapping, body: Any) -> dict[str, wire.MetricValue]:
        metrics: dict[str, wire.MetricValue] = {}
        for name, path in mapping.metrics:
            value = _walk(body, path)
            if isinstance(value, bool | int | str) or (
                isinstance(value, float) and math.isfinite(value)
            ):
                metrics[name] = value
        return metrics


def _walk(body: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(body, dict):
            body = body.get(part)
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        else:
            return None
    return body


class DecodeStage:
    def __init__(
        self,
        intake: IntakeConfig,
        mappings: tuple[MetricMapping, ...],
        rejects: Rejects,
        metrics: Metrics,
    ) -> None:
        self.max_future = intake.ts_max_future_s
        self.max_past = intake.ts_max_past_s
        self.mapper = TopicMapper(mappings)
        self.rejects = rejects
        self.metrics = metrics

    def __call__(self, batch: list[Envelope]) -> list[Envelope]:
        out: list[Envelope] = []
        ignored = 0
        decode = wire.decode
        reject = self.rejects.reject
        max_future, max_past = self.max_future, self.max_past
        for env in batch:
            if env.msg is not None:  # already typed (SNMP)
                out.append(env)
                continue
            topic = env.topic
            if not topic.startswith("fleet/"):
                if self._mapped(env):
                    out.append(env)
                continue
            msg = decode(topic, env.payload)
            if isinstance(msg, wire.DecodeError):
                reject(topic, env.payload, env.at, msg.reason.value, msg.detail)
                continue
            if isinstance(msg, wire.Command):
                ignored += 1  # our own downlink, seen through the wildcard subscription
                continue
            ts = msg.ts  # every other kind of message has one
            skew = ts.timestamp() - env.at
            if skew > max_future or -skew > max_past:
                reject(
                    topic,
                    env.payload,
                    env.at,
                    TS_OUT_OF_RANGE,
                    f"ts {wire.format_ts(ts)} is {skew:+.0f}s from arrival",
                )
                continue
            env.msg = msg
            env.tenant = topic.split("/", 3)[2]
            out.append(env)
        self.rejects.count()
        if ignored:
            self.metrics.ignored.inc(ignored)
        return out

    def _mapped(self, env: Envelope) -> bool:
        found = self.mapper.match(env.topic)
        if found is None:
            self.rejects.reject(env.topic, env.payload, env.at, UNMAPPED_TOPIC, "no mapping")
            return False
        mapping, device = found
        if not wire.valid_id(device):
            self.rejects.reject(
                env.topic, env.payload, env.at, "bad_topic", f"invalid device id {device[:80]!r}"
            )
            return False
        if len(env.payload) > wire.MAX_PAYLOAD_BYTES:
            self.rejects.reject(env.topic, env.payload, env.at, "too_large", "mapped payload")
            return False
        try:
            body = json.loads(env.payload)
        except (ValueError, RecursionError) as exc:
            self.rejects.reject(env.topic, env.payload, env.at, "bad_json", str(exc)[:120])
            return False
        metrics = TopicMapper.extract(mapping, body)
        if not metrics:
            self.rejects.reject(env.topic, env.payload, env.at, MAPPING_EMPTY, "no mapped value")
            return False
        ts = datetime.fromtimestamp(env.at, UTC)
        if mapping.ts_path is not None:
            parsed = wire.parse_ts(_walk(body, mapping.ts_path))
            if isinstance(parsed, wire.DecodeError):
                self.rejects.reject(
                    env.topic, env.payload, env.at, parsed.reason.value, parsed.detail
                )
                return False
            ts = parsed
        env.msg = wire.Telemetry(device=device, boot="", seq=0, ts=ts, metrics=metrics)
        env.source = "mapping"
        env.tenant = mapping.tenant
        return True
