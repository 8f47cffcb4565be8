"""fleetdesk edge agent: measures a field gateway and reports over MQTT.

Ships alone to gateways: imports nothing from ``collector`` and needs only paho-mqtt.
"""

__version__ = "0.1.0"
