"""One package per service desk (its payload mapping and sink keys), listed in ``registry``."""
