"""``fleetdesk demo``: the whole product on one machine.

A simulated fleet runs the real edge-agent code (config parsing, probes over a simulated host,
spool, MQTT client) against a broker, the collector service ingests it, a fault script breaks
things on a timeline and a small service desk receives the signed webhooks. See docs/demo.md.
"""
