"""fleetdesk collector: ingest, rules, SLA clocks, tickets and service-desk delivery."""

__version__ = "0.1.0"
