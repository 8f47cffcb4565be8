"""Cellular modem probe: signal (RSSI, RSRP, RSRQ, SINR), operator and technology.

Two sources: ModemManager's ``mmcli -J`` (JSON) or AT commands written to the modem's AT port
(``+CSQ``, ``+CESQ``, ``+COPS?`` and Quectel's ``+QENG="servingcell"``). The parsers are pure
functions over the text a modem or mmcli prints, tested on recorded outputs.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import termios
import time
from pathlib import Path
from typing import Any

from agent.config_types import CellularOptions
from agent.probes.base import (
    Completed,
    Probe,
    ProbeResult,
    Reading,
    Reason,
    SlotRecord,
    Unavailable,
    run_program,
)
from agent.wire import MetricValue

Metrics = dict[str, MetricValue]

# 3GPP TS 27.007 access technology numbers (+COPS) -> cell_tech
_ACT = {
    0: "gsm",
    1: "gsm",
    2: "umts",
    3: "gsm",
    4: "umts",
    5: "umts",
    6: "umts",
    7: "lte",
    8: "lte",
    9: "lte",
    10: "lte",
    11: "nr5g-sa",
    12: "nr5g-sa",
    13: "nr5g-nsa",
}


def _number(value: Any) -> float | None:
    """mmcli prints numbers as strings ("-97.00") and "--" for unknown."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _round(value: float) -> int | float:
    return int(value) if value == int(value) else round(value, 1)


# --------------------------------------------------------------------------- mmcli


def parse_mmcli_list(text: str) -> list[str]:
    """Modem indexes from ``mmcli -J -L``."""
    try:
        paths = json.loads(text).get("modem-list", [])
    except (ValueError, AttributeError):
        return []
    return [str(p).rsplit("/", 1)[-1] for p in paths if isinstance(p, str)]


def parse_mmcli_modem(text: str) -> Metrics | None:
    """State, signal quality, technology and operator from ``mmcli -J -m N``."""
    try:
        modem = json.loads(text)["modem"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(modem, dict):
        return None
    generic = modem.get("generic") or {}
    gpp = modem.get("3gpp") or {}
    metrics: Metrics = {}
    quality = _number((generic.get("signal-quality") or {}).get("value"))
    if quality is not None:
        metrics["cell_signal_pct"] = int(quality)
    techs = generic.get("access-technologies") or []
    if isinstance(techs, list) and techs:
        # "lte", "5gnr" or both (NSA); name it like the AT source does.
        names = {str(t).lower() for t in techs}
        tech = "nr5g-nsa" if {"lte", "5gnr"} <= names else str(techs[0]).lower()
        metrics["cell_tech"] = "nr5g-sa" if tech == "5gnr" else tech
    if isinstance(generic.get("state"), str):
        metrics["cell_state"] = generic["state"][:64]
    operator = gpp.get("operator-name")
    if isinstance(operator, str) and operator and operator != "--":
        metrics["cell_operator"] = operator[:64]
    registration = gpp.get("registration-state")
    if isinstance(registration, str) and registration != "--":
        metrics["cell_registration"] = registration[:32]
    return metrics


def parse_mmcli_signal(text: str) -> Metrics:
    """Extended signal values from ``mmcli -J -m N --signal-get`` (LTE first, then 5G, 3G, 2G).

    A 5G NR carrier next to LTE (NSA) is reported as ``nr_rsrp_dbm`` and friends.
    """
    try:
        signal = json.loads(text)["modem"]["signal"]
    except (ValueError, KeyError, TypeError):
        return {}
    if not isinstance(signal, dict):
        return {}
    metrics: Metrics = {}
    keys = {"rssi": "rssi_dbm", "rsrp": "rsrp_dbm", "rsrq": "rsrq_db", "snr": "sinr_db"}
    for tech in ("lte", "5g", "umts", "gsm", "cdma1x", "evdo"):
        values = signal.get(tech)
        if not isinstance(values, dict):
            continue
        for source, name in keys.items():
            number = _number(values.get(source))
            if number is None:
                continue
            if name not in metrics:
                metrics[name] = _round(number)
            elif tech == "5g":
                metrics[f"nr_{name}"] = _round(number)
    return metrics


# --------------------------------------------------------------------------- AT commands


def _at_fields(text: str, prefix: str) -> list[list[str]]:
    """The comma-separated fields of every ``+PREFIX: ...`` line, quotes removed."""
    rows = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.upper().startswith(f"+{prefix}:"):
            body = line.split(":", 1)[1]
            rows.append([f.strip().strip('"') for f in body.split(",")])
    return rows


def _int_field(row: list[str], index: int) -> int | None:
    try:
        return int(row[index])
    except (IndexError, ValueError):
        return None


def parse_csq(text: str) -> Metrics:
    """``+CSQ: <rssi>,<ber>``: RSSI 0..31 -> -113..-51 dBm, 99 unknown."""
    rows = _at_fields(text, "CSQ")
    value = _int_field(rows[0], 0) if rows else None
    if value is None or not 0 <= value <= 31:
        return {}
    return {"rssi_dbm": -113 + 2 * value}


def parse_cesq(text: str) -> Metrics:
    """``+CESQ: rxlev,ber,rscp,ecno,rsrq,rsrp`` (27.007): RSRQ 0..34, RSRP 0..97, 255 unknown."""
    rows = _at_fields(text, "CESQ")
    if not rows:
        return {}
    metrics: Metrics = {}
    rsrq, rsrp = _int_field(rows[0], 4), _int_field(rows[0], 5)
    if rsrq is not None and 0 <= rsrq <= 34:
        metrics["rsrq_db"] = _round(-20.0 + rsrq * 0.5)
    if rsrp is not None and 0 <= rsrp <= 97:
        metrics["rsrp_dbm"] = -141 + rsrp
    return metrics


def parse_cops(text: str) -> Metrics:
    """``+COPS: <mode>,<format>,"<operator>",<AcT>``."""
    rows = _at_fields(text, "COPS")
    if not rows or len(rows[0]) < 3:
        return {}
    metrics: Metrics = {}
    if rows[0][2]:
        metrics["cell_operator"] = rows[0][2][:64]
    act = _int_field(rows[0], 3)
    if act in _ACT:
        metrics["cell_tech"] = _ACT[act]
    return metrics


def _signal_fields(row: list[str], names: dict[int, str]) -> Metrics:
    metrics: Metrics = {}
    for index, name in names.items():
        value = _int_field(row, index)
        if value is not None:
            metrics[name] = value
    return metrics


def parse_qeng(text: str) -> Metrics:
    """Quectel ``AT+QENG="servingcell"`` (RM5xx/EC2x layout) for LTE, NR5G-SA and NR5G-NSA.

    SINR is taken as dB, as RM5xx modules print it; see docs/agent.md for EC2x modules.
    """
    metrics: Metrics = {}
    for fields in _at_fields(text, "QENG"):
        # drop "servingcell","<state>" (SA and LTE continue on that line, NSA has it alone)
        row = fields[2:] if fields and fields[0] == "servingcell" else fields
        if not row:
            continue
        kind = row[0].upper()
        if kind == "LTE":
            metrics["cell_tech"] = "lte"
            lte = _signal_fields(
                row, {11: "rsrp_dbm", 12: "rsrq_db", 13: "rssi_dbm", 14: "sinr_db"}
            )
            metrics |= lte
        elif kind == "NR5G-SA":
            metrics["cell_tech"] = "nr5g-sa"
            metrics |= _signal_fields(row, {10: "rsrp_dbm", 11: "rsrq_db", 12: "sinr_db"})
        elif kind == "NR5G-NSA":
            metrics["cell_tech"] = "nr5g-nsa"
            metrics |= _signal_fields(row, {4: "nr_rsrp_dbm", 5: "nr_sinr_db", 6: "nr_rsrq_db"})
    return metrics


_BAUD = {
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}
_FINAL_RE = re.compile(r"\r?\n(OK|ERROR|\+CM[ES] ERROR:[^\r\n]*)\r?\n")


def at_exchange(port: str, commands: list[str], baud: int, timeout: float) -> dict[str, str]:
    """Write each AT command and read its response up to OK/ERROR (raises OSError)."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[0] = 0  # iflag: raw
        attrs[1] = 0  # oflag
        attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL
        attrs[3] = 0  # lflag: no echo, no canonical mode
        speed = _BAUD.get(baud, termios.B115200)
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)
        answers = {}
        for command in commands:
            os.write(fd, f"{command}\r".encode())
            buffer = b""
            deadline = time.monotonic() + timeout
            while not _FINAL_RE.search(buffer.decode(errors="replace")):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{command}: no final result code")
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    buffer += os.read(fd, 4096)
            answers[command] = buffer.decode(errors="replace")
        return answers
    finally:
        os.close(fd)


AT_COMMANDS = ["AT+COPS?", "AT+CSQ", "AT+CESQ", 'AT+QENG="servingcell"']


def parse_at(answers: dict[str, str]) -> Metrics:
    """Merge the answers; the detailed ones (QENG, CESQ) win over CSQ's coarse RSSI."""
    metrics: Metrics = {}
    metrics |= parse_cops(answers.get("AT+COPS?", ""))
    metrics |= parse_csq(answers.get("AT+CSQ", ""))
    metrics |= parse_cesq(answers.get("AT+CESQ", ""))
    metrics |= parse_qeng(answers.get('AT+QENG="servingcell"', ""))
    return metrics


# --------------------------------------------------------------------------- the probe


def _mmcli_failure(done: Completed) -> Unavailable:
    message = (done.stderr or done.stdout).strip().splitlines()
    detail = message[-1][:160] if message else f"exit status {done.returncode}"
    if "find modem" in detail or "no modems" in detail.lower():
        return Unavailable(Reason.NO_DEVICE, detail)
    return Unavailable(Reason.FAILED, detail)


class CellularProbe(SlotRecord):
    __slots__ = (  # noqa: RUF023 (in field order, for the repr)
        "source",
        "modem",
        "mmcli",
        "at_port",
        "at_baud",
        "timeout_s",
        "name",
        "_signal_setup",
    )
    _hidden = ("_signal_setup",)

    def __init__(  # noqa: PLR0917 (the dataclass's positional signature, used by build)
        self,
        source: str = "mmcli",
        modem: str = "any",
        mmcli: str = "mmcli",
        at_port: str | None = None,
        at_baud: int = 115200,
        timeout_s: float = 5.0,
        name: str = "cellular",
        _signal_setup: bool = False,
    ) -> None:
        self.source = source
        self.modem = modem
        self.mmcli = mmcli
        self.at_port = at_port
        self.at_baud = at_baud
        self.timeout_s = timeout_s
        self.name = name
        self._signal_setup = _signal_setup

    def collect(self, now: float) -> ProbeResult:
        if self.source == "at":
            return self._collect_at()
        return self._collect_mmcli()

    def _collect_mmcli(self) -> ProbeResult:
        base = (self.mmcli, "-J", "-m", self.modem)
        done = run_program(base, self.timeout_s)
        if isinstance(done, Unavailable):
            return done
        if done.returncode != 0:
            return _mmcli_failure(done)
        metrics = parse_mmcli_modem(done.stdout)
        if metrics is None:
            return Unavailable(Reason.NO_DATA, "mmcli printed no modem object")
        if not self._signal_setup:
            # Extended signal values need polling switched on once (every 10 s).
            run_program((self.mmcli, "-m", self.modem, "--signal-setup=10"), self.timeout_s)
            self._signal_setup = True
        signal = run_program((*base, "--signal-get"), self.timeout_s)
        if isinstance(signal, Completed) and signal.returncode == 0:
            metrics |= parse_mmcli_signal(signal.stdout)
        return Reading(metrics)

    def _collect_at(self) -> ProbeResult:
        assert self.at_port is not None
        if not os.path.exists(self.at_port):
            return Unavailable(Reason.NO_DEVICE, f"{self.at_port} does not exist")
        try:
            answers = at_exchange(self.at_port, AT_COMMANDS, self.at_baud, self.timeout_s)
        except PermissionError:
            return Unavailable(Reason.PERMISSION, f"may not open {self.at_port}")
        except TimeoutError as exc:
            return Unavailable(Reason.TIMEOUT, str(exc))
        except (OSError, termios.error) as exc:
            return Unavailable(Reason.FAILED, f"{self.at_port}: {exc}")
        metrics = parse_at(answers)
        if not metrics:
            return Unavailable(Reason.NO_DATA, "the modem answered no signal value")
        return Reading(metrics)


def build(options: CellularOptions, root: Path) -> Probe:
    o = options
    return CellularProbe(o.source, o.modem, o.mmcli, o.at_port, o.at_baud, o.timeout_s)
