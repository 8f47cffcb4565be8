"""Tickets: the pure lifecycle of a fault's service ticket (time is always passed in).

Nothing here imports asyncio, HTTP or database code; the store (``store.py``) and the delivery
worker (``collector/delivery``) are the shell around it.
"""
