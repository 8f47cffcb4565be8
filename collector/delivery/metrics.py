"""Prometheus metrics of delivery; ``fleetdesk_outbox_dead`` > 0 is the alert to page on.

The collector registers them in its own registry (served at ``/metrics``); ``fleetdesk
deliver`` uses the process-wide default registry.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.attempts = Counter(
            "fleetdesk_webhook_attempts",
            "Delivery attempts by sink and outcome",
            ["sink", "outcome"],
            registry=registry,
        )
        self.outbox = Gauge(
            "fleetdesk_outbox_rows", "Outbox rows by state", ["state"], registry=registry
        )
        self.dead = Gauge(
            "fleetdesk_outbox_dead",
            "Events that could not be delivered (dead-lettered)",
            registry=registry,
        )
        self.latency = Histogram(
            "fleetdesk_webhook_delivery_seconds",
            "From the ticket change being committed to the desk accepting it",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600, 86400),
            registry=registry,
        )


_default: DeliveryMetrics | None = None


def default_metrics() -> DeliveryMetrics:
    """The metrics in the default registry, created once per process."""
    global _default  # noqa: PLW0603 - one set of metrics per registry
    if _default is None:
        _default = DeliveryMetrics()
    return _default
