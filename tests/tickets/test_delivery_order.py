"""Order per ticket across requeue and across two workers; retry timing; outbound secrets."""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import time
from collections import defaultdict
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from collector.config.errors import ConfigError
from collector.delivery.adapters.webhook import WebhookAdapter
from collector.delivery.signing import secret_key, sign_headers
from collector.delivery.sinks import Sink, load_sinks
from collector.delivery.worker import Attempt, DeliveryWorker, Outcome
from collector.store.tickets import OutboxRow, TicketStore
from tests.support.outbox import outbox_rows
from tests.support.pg import reset_schema
from tests.support.receiver import Answer, Receiver
from tests.support.services import free_port
from tests.support.tickets import make_events, new_secret, wait_until


async def test_requeued_dead_letter_is_sent_before_the_later_events_of_its_ticket(
    store: TicketStore,
) -> None:
    """The observed failure: ticket_opened dead, requeued, arrived after `resolved`."""
    ids = make_events(store, devices=1)  # opened, acknowledged, commented, resolved
    receiver = Receiver(free_port(), lambda n: Answer(400) if n == 0 else Answer(200))
    receiver.start()
    worker = DeliveryWorker(
        store, {"desk": Sink("desk", WebhookAdapter(receiver.url))}, poll_s=0.02
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["dead"] == 1)
        for _ in range(3):  # passes with the opening dead: the rest waits behind it
            await worker.run_once()
        assert receiver.accepted() == [] and len(receiver.received) == 1
        assert store.outbox_counts()["pending"] == 3
        assert store.requeue_dead(0.0) == 1  # the desk was fixed
        worker.notify()
        await wait_until(lambda: store.outbox_counts()["delivered"] == 4)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert [r.headers["idempotency-key"] for r in receiver.accepted()] == ids


async def test_dead_letter_in_the_middle_holds_the_rest_until_requeued(store: TicketStore) -> None:
    ids = make_events(store, devices=1)
    receiver = Receiver(free_port(), lambda n: Answer(422) if n == 1 else Answer(200))
    receiver.start()
    worker = DeliveryWorker(
        store, {"desk": Sink("desk", WebhookAdapter(receiver.url))}, poll_s=0.02
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: store.outbox_counts()["dead"] == 1)
        await worker.run_once()
        assert [r.headers["idempotency-key"] for r in receiver.accepted()] == ids[:1]
        store.requeue_dead(0.0)
        worker.notify()
        await wait_until(lambda: store.outbox_counts()["delivered"] == 4)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert [r.headers["idempotency-key"] for r in receiver.accepted()] == ids


def test_dropping_a_dead_letter_lets_the_rest_of_its_ticket_go(store: TicketStore) -> None:
    make_events(store, devices=1)
    first = store.due(1e12)[0]
    store.settle(dead=[(first.id, 1, 0.0, "rejected: HTTP 400")])
    assert store.due(1e12) == []  # held behind the dead row
    assert store.drop_dead(1.0) == 1
    assert [r.seq for r in store.due(1e12)] == [2]


async def test_two_workers_on_postgresql_send_every_event_once_in_order_per_ticket(
    pg_database: str,
) -> None:
    reset_schema(pg_database)
    setup = TicketStore(pg_database)
    setup.migrate()
    ids = make_events(setup, devices=24)

    def slow(_n: int) -> Answer:
        time.sleep(0.003)  # keep requests in flight so the workers overlap
        return Answer(200)

    receiver = Receiver(free_port(), slow)
    receiver.start()
    stores = [TicketStore(pg_database) for _ in range(2)]
    workers = [
        DeliveryWorker(
            s,
            {"desk": Sink("desk", WebhookAdapter(receiver.url), headers={"x-worker": name})},
            poll_s=0.01,
            max_in_flight=2,
        )
        for s, name in zip(stores, "ab", strict=True)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        await wait_until(lambda: setup.outbox_counts()["delivered"] == len(ids), limit_s=60)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        receiver.stop()
        for s in stores:
            s.close()
    got = [r.headers["idempotency-key"] for r in receiver.accepted()]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))  # each event once
    per_ticket: dict[str, list[int]] = defaultdict(list)
    for msg_id in got:
        number, seq = msg_id.rsplit(":", 1)
        per_ticket[number].append(int(seq))
    assert all(seqs == sorted(seqs) for seqs in per_ticket.values())  # order per ticket
    assert {r.headers["x-worker"] for r in receiver.accepted()} == {"a", "b"}  # both worked
    assert all(r.state == "delivered" for r in outbox_rows(setup))
    setup.close()


def test_retry_after_never_passes_the_dead_letter_horizon(tmp_path: Path) -> None:
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    store.migrate()
    make_events(store, devices=1)
    now = 1_000_000.0
    sink = Sink("desk", WebhookAdapter("http://127.0.0.1:9/hook"), dead_after_s=600.0)
    worker = DeliveryWorker(store, {"desk": sink}, clock=lambda: now, rng=random.Random(1))
    row = store.due(1e12, 1)[0]
    young = OutboxRow(
        row.id, row.sink, row.event_id, row.ticket, row.seq, row.body, now - 100.0, 0, now
    )
    claim = store.claim(now, 1)
    worker._settle(claim, [(young, Attempt(Outcome.RETRY, "HTTP 429", retry_after_s=86400.0))])
    [stored] = [r for r in outbox_rows(store) if r.id == row.id]
    assert stored.next_attempt_at == pytest.approx(now + 500.0)  # capped: 600 s after the change
    store.close()


def test_rotating_outbound_secrets_sign_with_each_and_unpadded_secrets_load(tmp_path: Path) -> None:
    old, new = new_secret(), new_secret()
    headers = sign_headers((old, new), "FD-1:1", int(time.time()), b'{"a":1}')
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):  # a receiver holding either secret accepts the request
        Webhook(secret).verify('{"a":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify('{"a":1}', headers)
    raw = secrets.token_bytes(31)  # 31 bytes: base64 needs padding
    unpadded = "whsec_" + base64.b64encode(raw).decode().rstrip("=")
    assert secret_key(unpadded) == raw
    path = tmp_path / "sinks.yaml"
    path.write_text(
        "sinks:\n  - name: desk\n    type: webhook\n    url: https://desk.example.com/h\n"
        "    secret_env: [NEW_SECRET, OLD_SECRET]\n"
    )
    sink = load_sinks(path, {"NEW_SECRET": unpadded, "OLD_SECRET": old})["desk"]
    assert sink.secrets == (unpadded, old)


@pytest.mark.parametrize(
    ("sink", "problem"),
    [
        (
            "{name: j, type: jira, url: 'http://jira.example.com', service_desk_id: 1,"
            " request_type_id: 2, authorization_env: AUTH}",
            "needs an https:// URL",
        ),
        (
            "{name: p, type: pagerduty, routing_key_env: AUTH, url: 'http://127.0.0.1:9/e'}",
            "set allow_http_loopback: true",
        ),
        (
            "{name: w, type: webhook, url: 'http://10.0.0.1/h', authorization_env: AUTH,"
            " allow_http_loopback: true}",
            "needs an https:// URL",
        ),
    ],
)
def test_credentials_need_https_unless_loopback_is_allowed(
    tmp_path: Path, sink: str, problem: str
) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(f"sinks:\n  - {sink}\n")
    with pytest.raises(ConfigError) as err:
        load_sinks(path, {"AUTH": "Basic eDp5"})
    assert problem in str(err.value) and "eDp5" not in str(err.value)
    path.write_text(
        "sinks:\n  - {name: p, type: pagerduty, routing_key_env: AUTH,"
        " url: 'http://127.0.0.1:9/e', allow_http_loopback: true}\n"
    )
    assert load_sinks(path, {"AUTH": "k"})["p"].adapter.url == "http://127.0.0.1:9/e"  # type: ignore[attr-defined]


def test_inbound_keys_of_a_sink(tmp_path: Path) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(
        "sinks:\n  - name: jira\n    type: jira\n    url: https://j.example.com\n"
        "    service_desk_id: 1\n    request_type_id: 2\n"
        "    inbound_secret_env: [JIRA_NEW, JIRA_OLD]\n"
        "    inbound_map: {Triage: ack, Fixed: resolve}\n"
    )
    sink = load_sinks(path, {"JIRA_NEW": "n3w", "JIRA_OLD": "0ld"})["jira"]
    assert sink.kind == "jira" and sink.inbound is not None
    assert sink.inbound.secrets == ("n3w", "0ld")
    assert dict(sink.inbound.options) == {"Triage": "ack", "Fixed": "resolve"}
    path.write_text(
        "sinks:\n  - {name: w, type: webhook, url: https://w.example.com, inbound_secret_env: S}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_sinks(path, {"S": "not base64!"})
    assert "inbound_secret_env" in str(err.value) and "not base64!" not in str(err.value)
    path.write_text(
        "sinks:\n  - {name: w, type: webhook, url: https://w.example.com, inbound_map: {a: ack}}\n"
    )
    with pytest.raises(ConfigError, match="needs inbound_secret_env"):
        load_sinks(path, {})
    path.write_text(
        "sinks:\n  - {name: z, type: zammad, url: https://z.example.com, group: g, customer: c,\n"
        "     inbound_secret_env: S, inbound_map: {open: reboot}}\n"
    )
    with pytest.raises(ConfigError, match="'reboot' is not one of ack, cancel"):
        load_sinks(path, {"S": "token"})
