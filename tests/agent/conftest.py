"""Fixtures for the agent tests; the helpers they use live in tests/support/agent.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.agent import AgentProcess, Sink
from tests.support.mosquitto import Broker


@pytest.fixture
def sink(broker: Broker) -> Iterator[Sink]:
    s = Sink(broker).start()
    yield s
    s.stop()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Every agent a test starts is stopped (or killed) afterwards."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        if agent.proc.poll() is None:
            agent.kill()


@pytest.fixture
def wake() -> Iterator[socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a
    a.close()
    b.close()
