"""One module per service desk; each maps ticket events to that desk's API requests."""
