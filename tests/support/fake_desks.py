"""Small fake service desks on loopback, each behaving like the real API on the points tested.

Jira Service Management (customer requests + JQL search by label), Zammad (tickets + tag
search), ServiceNow (Table API incident + correlation_id query). A real desk cannot run here;
these keep the desk's own state (tickets and what was posted to them), so a test can count
desk tickets and see where every later event landed. ``fault`` makes the first create misbehave
the way the real desks were seen to: ``timeout`` (the ticket is made, the answer comes too
late), ``409`` (made, answered 409 without an id), ``empty`` (made, answered ``{"result": []}``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class DeskTicket:
    ref: str
    tags: list[str]
    created: dict[str, Any]
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, body)


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the worker hangs up on a slow answer on purpose


class FakeDesk:
    def __init__(self, kind: str, fault: str | None = None, slow_s: float = 1.0) -> None:
        self.kind = kind
        self.fault = fault
        self.slow_s = slow_s
        self.tickets: dict[str, DeskTicket] = {}
        self.creates = 0
        self._late = False
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def by_tag(self, tag: str) -> list[DeskTicket]:
        with self.lock:
            return [t for t in self.tickets.values() if tag in t.tags]

    # -- the desks' APIs ---------------------------------------------------------------------
    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        with self.lock:
            self._late = False
            if self.kind == "jira":
                result = self._jira(method, path, query, body)
            elif self.kind == "zammad":
                result = self._zammad(method, path, query, body)
            else:
                result = self._servicenow(method, path, query, body)
            late = self._late
        if late:  # the ticket exists already; the answer arrives after the client gave up
            time.sleep(self.slow_s)
        return result

    def _create(self, ref: str, tags: list[str], body: Any) -> str | None:
        """Make the ticket; the fault to play for this create, if any."""
        self.tickets[ref] = DeskTicket(ref, tags, body)
        self.creates += 1
        return self.fault if self.creates == 1 else None

    def _update(self, ref: str, path: str, body: Any) -> tuple[int, Any]:
        if ref not in self.tickets:
            return 404, {"error": f"no ticket {ref}"}
        self.tickets[ref].updates.append((path, body))
        return 200, {"ok": True}

    def _jira(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if method == "GET" and path == "/rest/api/3/search/jql":
            jql = query["jql"][0]  # labels = "FD-..." ORDER BY created ASC
            label = jql.split('"')[1]
            found = [t for t in self.tickets.values() if label in t.tags]
            return 200, {"issues": [{"id": "1", "key": t.ref} for t in found[:1]]}
        if method == "POST" and path == "/rest/servicedeskapi/request":
            key = f"OPS-{len(self.tickets) + 1}"
            fault = self._create(key, body["requestFieldValues"]["labels"], body)
            self._late = fault == "timeout"
            if fault == "409":
                return 409, {"errorMessages": ["conflict"]}
            return 201, {"issueId": str(len(self.tickets)), "issueKey": key}
        parts = path.split("/")  # /rest/servicedeskapi/request/<key>/<comment|transition>
        if method == "POST" and len(parts) == 6 and parts[5] in ("comment", "transition"):
            return self._update(parts[4], parts[5], body)
        return 404, {"errorMessages": [f"no {method} {path}"]}

    def _zammad(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v1/tickets/search":
            tag = query["query"][0].removeprefix("tags:").strip('"')
            found = [t for t in self.tickets.values() if tag in t.tags]
            return 200, [{"id": int(t.ref), "title": t.created["title"]} for t in found]
        if method == "POST" and path == "/api/v1/tickets":
            ref = str(len(self.tickets) + 100)
            fault = self._create(ref, body["tags"].split(","), body)
            self._late = fault == "timeout"
            if fault == "409":
                return 409, {"error": "duplicate"}
            return 201, {"id": int(ref), "number": f"3100{ref}"}
        if method == "PUT" and path.startswith("/api/v1/tickets/"):
            return self._update(path.rsplit("/", 1)[1], "update", body)
        return 404, {"error": f"no {method} {path}"}

    def _servicenow(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        table = "/api/now/table/incident"
        if method == "GET" and path == table:
            wanted = query["sysparm_query"][0].split("^")[0].removeprefix("correlation_id=")
            found = [t for t in self.tickets.values() if wanted in t.tags]
            return 200, {"result": [{"sys_id": t.ref} for t in found[:1]]}
        if method == "POST" and path == table:
            sys_id = f"{len(self.tickets) + 1:032x}"
            fault = self._create(sys_id, [body["correlation_id"]], body)
            self._late = fault == "timeout"
            if fault == "empty":
                return 201, {"result": []}
            if fault == "409":
                return 409, {"error": {"message": "duplicate"}}
            return 201, {"result": {"sys_id": sys_id, "number": "INC0010001"}}
        if method == "PATCH" and path.startswith(table + "/"):
            return self._update(path.rsplit("/", 1)[1], "patch", body)
        return 404, {"error": {"message": f"no {method} {path}"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        desk = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                body = json.loads(raw) if raw else None
                status, answer = desk.answer(self.command, parts.path, parse_qs(parts.query), body)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (the timeout fault)

            do_GET = do_POST = do_PUT = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
