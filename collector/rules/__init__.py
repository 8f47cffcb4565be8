"""Rules and fault classification: a pure, replayable library.

Telemetry, states, events, traps and maintenance windows go in, each with the instant it
happened; fault events come out, classified into the level of the device's contract. Nothing
here reads the clock or does I/O, except the file loaders (``load_rules``, ``load_inventory``).
"""
