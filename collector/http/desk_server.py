"""A small threaded HTTP server for the inbound desk endpoints (standard library only).

The collector service can mount them in its own HTTP server instead; this one serves them
alone, e.g. next to ``fleetdesk deliver``. It reads exactly ``Content-Length`` bytes and
refuses, before reading any, a request without one (chunked bodies: 411), a malformed or
negative one (400) or one over ``MAX_BODY`` (413), then closes that connection.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collector.http.desk_inbound import (
    PATH,
    SINK_PREFIX,
    InboundDesk,
    Reply,
    check_length,
    refused,
)


class InboundServer:
    def __init__(self, desk: InboundDesk, host: str = "127.0.0.1", port: int = 0) -> None:
        self._desk = desk
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
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
                path = self.path.split("?", 1)[0]
                sink = path.removeprefix(SINK_PREFIX) if path.startswith(SINK_PREFIX) else None
                if path != PATH and not sink:
                    self._refuse(refused(404, "not_found", f"POST {PATH} or {SINK_PREFIX}<sink>"))
                    return
                length = self.headers.get("content-length")
                if length is None:
                    self._refuse(refused(411, "length_required", "Content-Length is required"))
                    return
                refusal = check_length(length.strip())
                if refusal is not None:
                    self._refuse(refusal)
                    return
                body = self.rfile.read(int(length))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if sink:
                    self._send(desk.handle_sink(sink, headers, body))
                else:
                    self._send(desk.handle(headers, body))

            def _refuse(self, reply: Reply) -> None:
                self.close_connection = True  # the body (if any) was not read
                self._send(reply, close=True)

            def _send(self, reply: Reply, *, close: bool = False) -> None:
                payload = reply.encoded()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                if close:
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are answered with reasons; no per-request log lines

        return Handler
