"""The NOC board: server-rendered pages (Jinja2) and a small vendored script (EventSource)."""
