"""A small threaded HTTP server for the inbound desk endpoint (standard library only).

The collector service can mount ``InboundDesk.handle`` in its own HTTP server instead; this one
serves it alone, e.g. next to ``fleetdesk deliver``.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collector.http.desk_inbound import MAX_BODY, PATH, InboundDesk, Reply


class InboundServer:
    def __init__(self, desk: InboundDesk, host: str = "127.0.0.1", port: int = 0) -> None:
        self._desk = desk
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="inbound-desk",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        desk = self._desk

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive for desks that send many actions
            disable_nagle_algorithm = True  # headers and body leave together, no 40 ms stall

            def do_POST(self) -> None:
                if self.path != PATH:
                    self._send(Reply(404, {"error": "not_found", "detail": f"POST {PATH}"}))
                    return
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self._send(Reply(413, {"error": "body_too_large", "detail": str(MAX_BODY)}))
                    return
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(desk.handle(headers, body))

            def _send(self, reply: Reply) -> None:
                payload = reply.encoded()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are answered with reasons; no per-request log lines

        return Handler
