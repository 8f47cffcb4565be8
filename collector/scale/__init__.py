"""Scale-out: several collectors on one PostgreSQL, each owning partitions of the fleet."""
