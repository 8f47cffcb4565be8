"""The two stage shapes of the pipeline, and the pipeline that runs them in order.

An **intake stage** takes a batch of envelopes and returns the survivors: it may drop them
(rejects, duplicates), fill them in (decode) or hand them to a writer (registry, telemetry
store). Stages never block: anything slow is handed to a writer that runs elsewhere.

The last intake stage is the rules stage; what it produces are fault events, and those go, one
by one and in order, to the **fault stages** (persisting them, ticketing them, printing them in a
replay). Time is always passed in: the live service passes the wall clock, replay a virtual one.

``collector.pipeline.assembly.assemble`` is the one place the stages are put in order, for the
live collector and for ``fleetdesk replay`` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from collector.intake.envelope import Envelope
from collector.rules.faults import FaultEvent

Stage = Callable[[list[Envelope]], list[Envelope]]


class FaultStage(Protocol):
    """What comes after the rules engine."""

    def on_fault(self, event: FaultEvent) -> None:
        """One fault event (opened, escalated, cleared, ...), in the order the engine made them."""
        ...

    def advance(self, now: datetime) -> None:
        """Time has passed to ``now`` (a stage with timers of its own fires what is due)."""
        ...
