"""Prometheus metrics of delivery; ``fleetdesk_outbox_dead`` > 0 is the alert to page on."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ATTEMPTS = Counter(
    "fleetdesk_webhook_attempts", "Delivery attempts by sink and outcome", ["sink", "outcome"]
)
OUTBOX = Gauge("fleetdesk_outbox_rows", "Outbox rows by state", ["state"])
DEAD = Gauge("fleetdesk_outbox_dead", "Events that could not be delivered (dead-lettered)")
LATENCY = Histogram(
    "fleetdesk_webhook_delivery_seconds",
    "From the ticket change being committed to the desk accepting it",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600, 86400),
)
