"""The REST API (``/api/v1``), its auth and the live event stream."""
