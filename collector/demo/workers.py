"""The simulated agents in worker processes, so the collector's process keeps its CPU.

At 200 devices the agents are ~400 threads; in the collector's own process they starve it (one
interpreter lock). Each worker process owns a share of the devices and runs, for each, the
real agent in a thread exactly as :mod:`collector.demo.agents` does; the conductor drives them
over a pipe (power on, power cut, go dark, host state, events, host ticks, stop).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from collector.demo.agents import SimDevice
from collector.demo.services import die_with_parent

log = logging.getLogger("fleetdesk.demo")
PER_WORKER = 50


def _serve(conn: Connection, sims: list[SimDevice], log_path: str | None, ppid: int) -> None:
    die_with_parent()
    if os.getppid() != ppid:  # the parent died before the line above
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the conductor's to handle
    if log_path:
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        logging.getLogger("fleetdesk.agent").setLevel(logging.WARNING)
    by_id = {s.dev.id: s for s in sims}
    while True:
        try:
            op, dev_id, args = conn.recv()
        except EOFError:
            op, dev_id, args = "exit", "", ()
        result: Any = None
        try:
            sim = by_id.get(dev_id)
            if op == "exit":
                _stop_all(sims)
                return
            if op == "stop_all":
                _stop_all(sims)
                result = {s.dev.id: s.errors for s in sims if s.errors}
            elif op == "tick":
                now = time.time()
                for s in sims:
                    if s.powered:
                        s.host.tick(now)
            elif sim is None:
                raise KeyError(dev_id)
            elif op == "set":
                for key, value in args[0].items():
                    setattr(sim.host, key, value)
                sim.host.tick(time.time())
            elif op == "power_on":
                if args[0]:
                    sim.host.reboot(time.time())
                sim.host.tick(time.time())
                sim.power_on()
            elif op == "power_cut":
                sim.power_cut()
            elif op == "go_dark":
                sim.shutdown()
            elif op == "event" and sim.agent is not None:
                sim.agent.pending_events.put((args[0], args[1]))
            conn.send(("ok", result))
        except Exception as exc:  # reported to the conductor, the worker goes on
            log.exception("demo worker: %s %s failed", op, dev_id)
            conn.send(("error", repr(exc)))


def _stop_all(sims: list[SimDevice]) -> None:
    powered = [s for s in sims if s.powered and s.agent is not None]
    for s in powered:
        assert s.agent is not None
        s.agent.stop()
    for s in powered:
        s.shutdown()


class Worker:
    def __init__(self, sims: list[SimDevice], log_path: str | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.lock = threading.Lock()
        self.proc = ctx.Process(
            target=_serve, args=(child, sims, log_path, os.getpid()), daemon=True,
            name="fleetdesk-demo-worker",
        )  # fmt: skip
        self.proc.start()
        child.close()

    def call(self, op: str, dev_id: str = "", *args: Any) -> Any:
        with self.lock:
            self.conn.send((op, dev_id, args))
            status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"demo worker: {op} {dev_id}: {result}")
        return result

    def close(self) -> None:
        with self.lock, contextlib.suppress(OSError):
            self.conn.send(("exit", "", ()))
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


class AgentPool:
    """The devices spread over ``ceil(n / PER_WORKER)`` worker processes."""

    def __init__(self, sims: list[SimDevice], log_path: str | None = None) -> None:
        n = max(1, -(-len(sims) // PER_WORKER))
        self.workers = [Worker(sims[i::n], log_path) for i in range(n)]
        self.of = {s.dev.id: self.workers[i % n] for i, s in enumerate(sims)}
        self.powered = {s.dev.id: False for s in sims}
        self.errors: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.powered)

    def call(self, op: str, dev_id: str, *args: Any) -> Any:
        return self.of[dev_id].call(op, dev_id, *args)

    def power_on(self, dev_id: str, reboot: bool = False) -> None:
        self.call("power_on", dev_id, reboot)
        self.powered[dev_id] = True

    def power_off(self, dev_id: str, gasp: bool) -> None:
        self.call("power_cut" if gasp else "go_dark", dev_id)
        self.powered[dev_id] = False

    def tick(self) -> None:
        for w in self.workers:
            w.call("tick")

    def stop(self) -> None:
        """Every agent stops (offline, cleanly), in all workers at once; then they exit."""
        threads = [threading.Thread(target=self._stop_one, args=(w,)) for w in self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for dev_id in self.powered:
            self.powered[dev_id] = False

    def _stop_one(self, w: Worker) -> None:
        try:
            self.errors.update(w.call("stop_all") or {})
        except (OSError, EOFError, RuntimeError) as exc:
            log.warning("demo worker stop: %s", exc)
        w.close()
