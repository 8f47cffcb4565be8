"""The SLA engine: durations, business calendars, service policies and SLA clocks.

Pure: time is always passed in; the only I/O is in the ``load_*`` functions that read the
calendar and policy files under ``rules/``.
"""
