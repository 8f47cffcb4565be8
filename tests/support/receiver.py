"""A real HTTP receiver on loopback for delivery tests, with a scripted list of answers.

It records every request (headers, body, the status it answered) and can be started and
stopped on the same port, so a test can have the desk "down" (connection refused) for a while.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender killed mid-request (the tests do that on purpose) is not an error here


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    hold: threading.Event | None = None  # the reply waits for this (a desk that hangs)


class Receiver:
    def __init__(
        self,
        port: int,
        answers: Callable[[int], Answer] | None = None,
        tls: tuple[Path, Path] | None = None,  # (certificate, key): serve HTTPS
    ) -> None:
        self.port = port
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/hook"
        self.received: list[Received] = []
        self._answers = answers or (lambda _n: Answer())
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def set_answers(self, answers: Callable[[int], Answer]) -> None:
        with self._lock:
            self._answers = answers

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real desk's front end
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms stall

            def _handle(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    answer = receiver._answers(len(receiver.received))
                    receiver.received.append(
                        Received(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            answer.status,
                            time.time(),
                        )
                    )
                if answer.hold is not None:  # outside the lock: other requests go on
                    answer.hold.wait(30)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_PUT = do_PATCH = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def main() -> None:
    """Serve on the port given; print ``<webhook-id> <arrival time> <device>`` per request.

    Used by bench/tickets.py to keep the receiver out of the measured process.
    """
    import signal
    import sys

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # set both, so a receiver started from a background job (SIGINT ignored) still stops
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    receiver = Receiver(int(sys.argv[1]))
    printed = 0

    def answer(n: int) -> Answer:
        return Answer(200)

    receiver.set_answers(answer)
    receiver.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(0.002)
            accepted = receiver.accepted()
            for r in accepted[printed:]:
                msg_id = r.headers.get("webhook-id") or r.headers.get("idempotency-key", "-")
                try:
                    device = r.json()["ticket"]["device"] or "-"
                except (ValueError, KeyError, TypeError):
                    device = "-"
                print(msg_id, repr(r.at), device, flush=True)
            printed = len(accepted)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
