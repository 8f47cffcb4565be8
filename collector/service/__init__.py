"""The collector service: intake (MQTT, SNMP), pipeline stages, storage and HTTP."""
