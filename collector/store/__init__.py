"""The collector's state (device registry, open faults, state blobs) over SQLAlchemy Core."""

from collector.store.database import StoreError
from collector.store.store import DeviceRow, OpenFault, Store

__all__ = ["DeviceRow", "OpenFault", "Store", "StoreError"]
