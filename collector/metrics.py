"""The collector's own Prometheus metrics, in one registry served at ``/metrics``.

Hot-path stages count per batch and increment once, with label children bound here up front
(a ``.labels()`` lookup per message would cost more than the decode).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.messages = Counter(
            "collector_messages",
            "Inputs (MQTT messages, SNMP samples, traps) by outcome.",
            ["outcome"],
            registry=r,
        )
        self.accepted = self.messages.labels("accepted")
        self.rejected = self.messages.labels("rejected")
        self.duplicate = self.messages.labels("duplicate")
        self.ignored = self.messages.labels("ignored")
        self.rejects = Counter(
            "collector_rejects", "Rejected messages by reason.", ["reason"], registry=r
        )
        self.dead_letter_errors = Counter(
            "collector_dead_letter_errors", "Dead letters that could not be written.", registry=r
        )
        self.seq_gaps = Counter(
            "collector_seq_gaps",
            "Sequence numbers skipped (telemetry lost upstream, or late).",
            registry=r,
        )
        self.seq_late = Counter(
            "collector_seq_late",
            "Out-of-order messages that filled an earlier gap (spool replays).",
            registry=r,
        )
        self.seq_rewinds = Counter(
            "collector_seq_rewinds",
            "Sequence counters that went back within a boot (a restored or new spool): new epochs.",
            registry=r,
        )
        self.devices = Gauge("collector_devices", "Devices in the registry.", registry=r)
        self.mqtt_connected = Gauge(
            "collector_mqtt_connected", "1 while connected to the broker.", registry=r
        )
        self.mqtt_connects = Counter(
            "collector_mqtt_connects", "Connection attempts by result.", ["result"], registry=r
        )
        self.tsdb_lines = Counter(
            "collector_tsdb_lines",
            "Line-protocol lines by outcome (written, dropped, failed, kept).",
            ["outcome"],
            registry=r,
        )
        self.tsdb_backlog = Gauge(
            "collector_tsdb_backlog_lines",
            "Lines in the disk buffer, not yet written to the database.",
            registry=r,
        )
        self.tsdb_buffer_bytes = Gauge(
            "collector_tsdb_buffer_bytes",
            "Bytes in the disk buffer, not yet written to the database.",
            registry=r,
        )
        self.unacked = Gauge(
            "collector_mqtt_unacked",
            "MQTT messages received and not yet acknowledged (their effects not yet stored).",
            registry=r,
        )
        self.commits = Counter(
            "collector_intake_commits",
            "Intake commits (registry rows, fault events and telemetry made durable).",
            registry=r,
        )
        self.tsdb_write_seconds = Histogram(
            "collector_tsdb_write_seconds",
            "From hand-over to the database's acknowledgement, per written chunk.",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.snmp_polls = Counter(
            "collector_snmp_polls",
            "SNMP polls by outcome (ok, timeout, error).",
            ["outcome"],
            registry=r,
        )
        self.snmp_poll_seconds = Histogram(
            "collector_snmp_poll_seconds",
            "Duration of one device poll (all of its profile).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.snmp_traps = Counter(
            "collector_snmp_traps",
            "SNMP notifications by outcome (accepted, unknown_source, bad_auth, ignored).",
            ["outcome"],
            registry=r,
        )
        self.fault_events = Counter(
            "collector_fault_events", "Fault events from the rules engine.", ["kind"], registry=r
        )
        self.open_faults = Gauge("collector_open_faults", "Faults open now.", registry=r)
        self.store_errors = Counter(
            "collector_store_errors",
            "Failed storage operations by part (each is retried with backoff).",
            ["part"],
            registry=r,
        )
        self.draining = Gauge("collector_draining", "1 while shutting down.", registry=r)
