"""Several MQTT sessions feeding one pipeline: one per owned partition (scale-out), or one.

Each partition has its own persistent session (its own client id and subscriptions), so the
broker queues a partition's messages for whoever owns it next. The committer treats the group
as one intake: it takes every session's processed message ids before a commit and acknowledges
each on its own connection after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from collector.intake.mqtt import Acks, MqttIntake


class IntakeGroup:
    def __init__(self, intakes: list[MqttIntake], protocol: str = "5") -> None:
        self.intakes = intakes
        self._protocol = protocol

    @property
    def connected(self) -> bool:
        return all(i.connected for i in self.intakes)

    @property
    def subscribed(self) -> bool:
        """Every session's subscriptions acknowledged (SUBACK)."""
        return all(i.subscribed for i in self.intakes)

    @property
    def protocol(self) -> str:
        return self.intakes[0].protocol if self.intakes else self._protocol

    def set_on_batch(self, notify: Callable[[], None]) -> None:
        for intake in self.intakes:
            intake.on_batch = notify

    def set_before_disconnect(self, last_commit: Callable[[], Awaitable[None]]) -> None:
        for intake in self.intakes:
            intake.before_disconnect = last_commit

    def publish(self, topic: str, payload: bytes) -> None:
        for intake in self.intakes:
            if intake.connected:
                intake.publish(topic, payload)
                return

    def take_acks(self) -> list[Acks]:
        return [intake.take_acks() for intake in self.intakes]

    def ack(self, acks: list[Acks]) -> None:
        """``acks``: what ``take_acks`` returned (or nothing: a pass that took none)."""
        if not acks:
            return
        for intake, taken in zip(self.intakes, acks, strict=True):
            intake.ack(taken)

    async def run(self, stop: asyncio.Event) -> None:
        if not self.intakes:
            await stop.wait()
            return
        async with asyncio.TaskGroup() as group:
            for n, intake in enumerate(self.intakes):
                group.create_task(intake.run(stop), name=f"mqtt-intake-{n}")
