"""Delivery of ticket events to service desks: outbox worker, signing, adapters, inbound.

Retry, backoff, ordering, signing and dead-lettering live here once; each desk adapter only
maps an event to its API's request.
"""
