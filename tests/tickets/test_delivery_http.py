"""What the delivery worker's HTTP client does with a desk's answers, against real servers on
loopback: the headers it sends, redirects not followed, an answer too large to hold, a desk that
closes the connection without answering, a desk that does not answer in time."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.backoff import Backoff
from collector.delivery.http_client import MAX_ANSWER_BYTES, SinkClient
from collector.delivery.sinks import Sink
from collector.delivery.worker import USER_AGENT, DeliveryWorker
from collector.store.tickets import TicketStore
from tests.support.outbox import outbox_rows
from tests.support.receiver import Answer, Receiver
from tests.support.services import free_port
from tests.support.tickets import make_events, wait_until


def one_event_store(tmp_path: Path) -> TicketStore:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)
    return store


async def run_until(worker: DeliveryWorker, done: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(done, 20)
    finally:
        stop.set()
        await task


async def test_the_request_carries_our_headers_and_the_body_as_signed(tmp_path: Path) -> None:
    store = one_event_store(tmp_path)
    receiver = Receiver(free_port())
    receiver.start()
    try:
        worker = DeliveryWorker(store, {"desk": Sink("desk", WebhookAdapter(receiver.url))})
        await run_until(worker, lambda: len(receiver.accepted()) == len(outbox_rows(store)))
        first = receiver.accepted()[0]
        row = min(outbox_rows(store), key=lambda r: r.id)
        assert first.method == "POST" and first.path == "/hook"
        assert first.headers["user-agent"] == USER_AGENT
        assert first.headers["content-type"] == "application/json"
        assert first.headers["idempotency-key"] == row.event_id
        assert first.json()["id"] == row.event_id
    finally:
        receiver.stop()
        store.close()


async def test_a_redirect_is_not_followed(tmp_path: Path) -> None:
    """A 3xx is the desk refusing the webhook: it is dead-lettered with the status, and the
    address it points to (one the sinks file does not name) receives nothing."""
    store = one_event_store(tmp_path)
    elsewhere = Receiver(free_port())
    elsewhere.start()
    desk = Receiver(free_port(), lambda n: Answer(302, headers={"location": elsewhere.url}))
    desk.start()
    try:
        worker = DeliveryWorker(store, {"desk": Sink("desk", WebhookAdapter(desk.url))})
        await run_until(worker, lambda: any(r.state == "dead" for r in outbox_rows(store)))
        dead = [r for r in outbox_rows(store) if r.state == "dead"]
        assert dead[0].last_error is not None
        assert dead[0].last_error.startswith("rejected: HTTP 302")
        assert elsewhere.received == []
    finally:
        desk.stop()
        elsewhere.stop()
        store.close()


async def test_an_answer_larger_than_the_limit_is_cut_not_held(tmp_path: Path) -> None:
    """A desk answering its 400 with 5 MiB: the reason keeps the first 200 characters; the
    worker read at most MAX_ANSWER_BYTES of it and goes on."""
    store = one_event_store(tmp_path)
    huge = b"x" * (5 * MAX_ANSWER_BYTES)
    desk = Receiver(free_port(), lambda n: Answer(400, body=huge))
    desk.start()
    try:
        worker = DeliveryWorker(store, {"desk": Sink("desk", WebhookAdapter(desk.url))})
        await run_until(worker, lambda: any(r.state == "dead" for r in outbox_rows(store)))
        reasons = [r.last_error for r in outbox_rows(store) if r.state == "dead"]
        assert reasons == ["rejected: HTTP 400 " + "x" * 200]  # its later events wait behind
        async with SinkClient(5.0) as client:
            answer = await client.request("POST", desk.url, b"{}", {})
        assert (answer.status, len(answer.body)) == (400, MAX_ANSWER_BYTES)
    finally:
        desk.stop()
        store.close()


class HangUpOnce:
    """A TCP server that reads the first request and closes the connection without an answer;
    later connections are refused (it stops listening), until a Receiver takes the port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            self.requests += 1
        self._sock.close()


async def test_a_desk_that_hangs_up_without_answering_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = one_event_store(tmp_path)
    port = free_port()
    hang_up = HangUpOnce(port)
    receiver = Receiver(port)
    caplog.set_level(logging.INFO, logger="collector.delivery.worker")
    stop = asyncio.Event()
    sink = Sink("desk", WebhookAdapter(receiver.url), backoff=Backoff(0.05, 0.1))
    task = asyncio.create_task(DeliveryWorker(store, {"desk": sink}, poll_s=0.05).run(stop))
    try:
        await wait_until(lambda: hang_up.requests == 1 and not hang_up._thread.is_alive())
        await wait_until(lambda: "connection_lost: " in caplog.text)
        receiver.start()  # the desk is back: the retry is delivered
        await wait_until(lambda: all(r.state == "delivered" for r in outbox_rows(store)))
    finally:
        stop.set()
        await task
        receiver.stop()
        store.close()
    failed = [r.getMessage() for r in caplog.records if "failed (" in r.getMessage()]
    assert failed and all("connection_lost: " in m or "connect_failed: " in m for m in failed)
