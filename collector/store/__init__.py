"""The collector's state (device registry, open faults, state blobs) over SQLAlchemy Core."""

from collector.store.store import DeviceRow, OpenFault, Store, StoreError

__all__ = ["DeviceRow", "OpenFault", "Store", "StoreError"]
