"""Probes: parsers on recorded outputs (fixtures/), each probe on a recorded host tree, and
"unavailable" with a named reason instead of a crash when hardware or tools are missing.

Where the real thing cannot run here (no modem, no ModemManager, no ICMP ``ping``), small
stand-in programs named ``mmcli`` / ``ping`` replay the recorded outputs through the probe's
real subprocess path; the AT path talks to a real pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import shutil
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import DeviceConfig, ReachTarget
from agent.identity import detect, parse_os_release, resolve
from agent.probes import Reading, Reason, Unavailable, build_probes
from agent.probes import cellular as cell
from agent.probes.exec_check import ExecProbe, first_number
from agent.probes.interfaces import InterfacesProbe, is_up
from agent.probes.reachability import ReachabilityProbe, parse_ping, tcp_ping
from agent.probes.serial import SerialProbe, parse_uart_counters, port_index
from agent.probes.system import SystemProbe, cpu_percent, parse_cpu_times, parse_meminfo
from agent.runner import run_probe
from agent.wire import valid_name
from tests.support.agent import FIXTURES

CELL = FIXTURES / "cellular"
PING = FIXTURES / "ping"
HOST = FIXTURES / "host"


def text(path: Path) -> str:
    return path.read_text()


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A writable copy of the recorded host tree (/proc, /sys, /etc, /dev)."""
    root = tmp_path / "host"
    shutil.copytree(HOST, root)
    return root


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The only folder on PATH: stand-in programs plus the few tools they use, so a real
    ping or mmcli installed on the machine cannot interfere."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("cat", "sleep"):
        found = shutil.which(tool)
        assert found is not None
        (folder / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(folder))
    return folder


def stand_in(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def assert_canonical(metrics: dict[str, object]) -> None:
    assert all(valid_name(name) for name in metrics), metrics


# --------------------------------------------------------------------------- cellular


def test_mmcli_modem_and_signal_lte() -> None:
    modem = cell.parse_mmcli_modem(text(CELL / "mmcli-modem-lte.json"))
    assert modem == {
        "cell_signal_pct": 71,
        "cell_tech": "lte",
        "cell_state": "connected",
        "cell_operator": "CHINA MOBILE",
        "cell_registration": "home",
    }
    signal = cell.parse_mmcli_signal(text(CELL / "mmcli-signal-lte.json"))
    assert signal == {"rssi_dbm": -68, "rsrp_dbm": -97, "rsrq_db": -11, "sinr_db": 12.4}


def test_mmcli_5g_nsa_keeps_lte_canonical_and_nr_apart() -> None:
    modem = cell.parse_mmcli_modem(text(CELL / "mmcli-modem-nsa.json"))
    assert modem is not None and modem["cell_tech"] == "nr5g-nsa"
    signal = cell.parse_mmcli_signal(text(CELL / "mmcli-signal-nsa.json"))
    assert signal["rsrp_dbm"] == -95 and signal["sinr_db"] == 13
    assert signal["nr_rsrp_dbm"] == -88 and signal["nr_sinr_db"] == 25
    assert signal["nr_rsrq_db"] == -11


def test_mmcli_unknown_values_and_odd_input() -> None:
    assert cell.parse_mmcli_signal(text(CELL / "mmcli-signal-off.json")) == {}
    searching = cell.parse_mmcli_modem(text(CELL / "mmcli-modem-searching.json"))
    assert searching == {
        "cell_signal_pct": 0,
        "cell_state": "enabled",
        "cell_registration": "searching",
    }
    assert cell.parse_mmcli_list(text(CELL / "mmcli-list.json")) == ["0"]
    assert cell.parse_mmcli_list(text(CELL / "mmcli-list-empty.json")) == []
    for junk in ("", "not json", "[]", '{"modem": 3}', '{"modem": {"signal": []}}'):
        assert cell.parse_mmcli_modem(junk) in (None, {})
        assert cell.parse_mmcli_signal(junk) == {}


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("at-csq.txt", {"rssi_dbm": -67}),
        ("at-csq-unknown.txt", {}),
        ("at-cesq.txt", {"rsrq_db": -11, "rsrp_dbm": -97}),
        ("at-cops.txt", {"cell_operator": "CHINA MOBILE", "cell_tech": "lte"}),
        (
            "at-qeng-lte.txt",
            {"cell_tech": "lte", "rsrp_dbm": -97, "rsrq_db": -10, "rssi_dbm": -66, "sinr_db": 13},
        ),
        (
            "at-qeng-sa.txt",
            {"cell_tech": "nr5g-sa", "rsrp_dbm": -85, "rsrq_db": -11, "sinr_db": 15},
        ),
        (
            "at-qeng-nsa.txt",
            {
                "cell_tech": "nr5g-nsa",
                "rsrp_dbm": -95,
                "rsrq_db": -9,
                "rssi_dbm": -64,
                "sinr_db": 14,
                "nr_rsrp_dbm": -88,
                "nr_sinr_db": 25,
                "nr_rsrq_db": -11,
            },
        ),
        ("at-qeng-unsupported.txt", {}),
    ],
)
def test_at_responses(fixture: str, expected: dict[str, object]) -> None:
    parsers = [cell.parse_csq, cell.parse_cesq, cell.parse_cops, cell.parse_qeng]
    found: dict[str, object] = {}
    for parse in parsers:
        found |= parse(text(CELL / fixture))
    assert found == expected
    assert_canonical(found)


def test_cellular_probe_through_mmcli(bin_dir: Path) -> None:
    stand_in(
        bin_dir,
        "mmcli",
        f"""case "$*" in
  *--signal-setup*) exit 0 ;;
  *--signal-get*) cat {CELL}/mmcli-signal-lte.json ;;
  *) cat {CELL}/mmcli-modem-lte.json ;;
esac""",
    )
    result = cell.CellularProbe().collect(0)
    assert isinstance(result, Reading)
    assert result.metrics["rsrp_dbm"] == -97 and result.metrics["cell_operator"] == "CHINA MOBILE"


def test_cellular_probe_unavailable_reasons(bin_dir: Path, tmp_path: Path) -> None:
    missing = cell.CellularProbe().collect(0)
    assert isinstance(missing, Unavailable) and missing.reason is Reason.NO_PROGRAM
    stand_in(bin_dir, "mmcli", 'echo "error: couldn\'t find modem" >&2; exit 1')
    no_modem = cell.CellularProbe().collect(0)
    assert isinstance(no_modem, Unavailable) and no_modem.reason is Reason.NO_DEVICE
    stand_in(bin_dir, "mmcli", "sleep 5")
    slow = cell.CellularProbe(timeout_s=0.2).collect(0)
    assert isinstance(slow, Unavailable) and slow.reason is Reason.TIMEOUT
    no_port = cell.CellularProbe(source="at", at_port=str(tmp_path / "ttyUSB9")).collect(0)
    assert isinstance(no_port, Unavailable) and no_port.reason is Reason.NO_DEVICE


@pytest.fixture
def modem() -> Iterator[str]:
    """A pseudo-terminal answering AT commands with the recorded responses."""
    answers = {
        "AT+COPS?": "at-cops.txt",
        "AT+CSQ": "at-csq.txt",
        "AT+CESQ": "at-cesq.txt",
        'AT+QENG="servingcell"': "at-qeng-unsupported.txt",
    }
    master, slave = pty.openpty()
    stop = threading.Event()

    def answer() -> None:
        buffer = b""
        while not stop.is_set():
            try:
                chunk = os.read(master, 1024)
            except OSError:
                return
            buffer += chunk
            while b"\r" in buffer:
                line, _, buffer = buffer.partition(b"\r")
                name = answers.get(line.decode().strip())
                reply = (CELL / name).read_bytes() if name else b"\r\nERROR\r\n"
                os.write(master, reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield os.ttyname(slave)
    stop.set()
    os.close(slave)
    os.close(master)
    thread.join(5)


def test_cellular_probe_over_an_at_port(modem: str) -> None:
    result = cell.CellularProbe(source="at", at_port=modem, timeout_s=3).collect(0)
    assert isinstance(result, Reading), result
    assert result.metrics == {
        "cell_operator": "CHINA MOBILE",
        "cell_tech": "lte",
        "rssi_dbm": -67,
        "rsrq_db": -11,
        "rsrp_dbm": -97,
    }


# --------------------------------------------------------------------------- reachability


@pytest.mark.parametrize(
    ("fixture", "loss", "rtt"),
    [
        ("iputils-ok.txt", 0.0, 34.966),
        ("iputils-partial.txt", 50.0, 109.2),
        ("iputils-down.txt", 100.0, None),
        ("busybox-ok.txt", 0.0, 0.4),
    ],
)
def test_ping_output(fixture: str, loss: float, rtt: float | None) -> None:
    result = parse_ping(text(PING / fixture))
    assert result is not None and (result.loss_pct, result.rtt_ms) == (loss, rtt)


def test_ping_output_without_statistics() -> None:
    assert parse_ping(text(PING / "busybox-unknown-host.txt")) is None


def test_tcp_reachability_on_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        up = tcp_ping("127.0.0.1", port, 3, 1.0)
    assert up.loss_pct == 0 and up.rtt_ms is not None and up.method == "tcp"
    down = tcp_ping("127.0.0.1", port, 2, 0.5)  # closed now: refused
    assert down.loss_pct == 100 and down.rtt_ms is None


def test_reachability_probe_icmp_through_ping_and_fallbacks(bin_dir: Path) -> None:
    targets = (
        ReachTarget("gw", "127.0.0.21"),
        ReachTarget("far", "127.0.0.29"),
    )
    # Without ping, a target with no port cannot be measured: a named reason, no crash.
    none = ReachabilityProbe(targets).collect(0)
    assert isinstance(none, Unavailable) and none.reason is Reason.NO_PROGRAM
    stand_in(
        bin_dir,
        "ping",
        f"""for last; do :; done
case "$last" in
  127.0.0.21) cat {PING}/iputils-ok.txt ;;
  *) cat {PING}/iputils-down.txt; exit 1 ;;
esac""",
    )
    result = ReachabilityProbe(targets).collect(0)
    assert isinstance(result, Reading)
    assert result.metrics == {
        "ping_gw_loss_pct": 0.0,
        "ping_gw_rtt_ms": 34.966,
        "ping_far_loss_pct": 100.0,
        "ping_loss_pct": 100.0,
        "ping_rtt_ms": 34.966,
    }


# --------------------------------------------------------------------------- system


def test_system_parsers() -> None:
    before = parse_cpu_times(text(HOST / "proc" / "stat"))
    assert before == (15500, 96500)
    assert cpu_percent(before, (16500, 98500)) == 50.0
    assert cpu_percent(before, before) is None
    assert parse_meminfo(text(HOST / "proc" / "meminfo")) == 40.0
    assert parse_meminfo("MemTotal: 100 kB\nMemFree: 50 kB\nCached: 25 kB\n") == 25.0
    assert parse_meminfo("nothing") is None


def test_system_probe_on_a_recorded_host(host: Path) -> None:
    probe = SystemProbe(host, "/")
    first = probe.collect(0)
    assert isinstance(first, Reading)
    assert first.metrics["uptime_s"] == 1234567 and first.metrics["load1"] == 0.42
    assert first.metrics["mem_used_pct"] == 40.0 and first.metrics["temp_c"] == 52.3
    assert 0 <= float(first.metrics["disk_used_pct"]) <= 100
    assert "cpu_pct" not in first.metrics  # needs two samples
    stat_file = host / "proc" / "stat"
    stat_file.write_text(
        stat_file.read_text().replace("cpu  10000 0 5000 80000", "cpu  10750 0 5250 81000")
    )
    second = probe.collect(1)
    assert isinstance(second, Reading) and second.metrics["cpu_pct"] == 50.0
    assert_canonical(second.metrics)


def test_system_probe_without_proc(tmp_path: Path) -> None:
    result = SystemProbe(tmp_path / "empty", "/").collect(0)
    assert isinstance(result, Unavailable) and result.reason is Reason.NO_DATA


# --------------------------------------------------------------------------- interfaces


def test_operstate_rules() -> None:
    assert is_up("up\n", None, None)
    assert is_up("unknown", "0x1091", "1")  # a wwan/tun link without operstate support
    assert not is_up("unknown", "0x1090", "1")  # administratively down
    assert not is_up("down", "0x1003", "0")
    assert not is_up("dormant", "0x1003", "1")


def test_interfaces_probe_and_link_events(host: Path) -> None:
    probe = InterfacesProbe(host)
    first = probe.collect(0)
    assert isinstance(first, Reading) and first.events == ()
    m = first.metrics
    assert m["if_eth0_up"] is True and m["if_wwan0_up"] is True and m["if_br_lan_up"] is False
    assert m["if_wwan0_rx_bytes"] == 987654321 and m["if_wwan0_rx_errors"] == 3
    assert "if_lo_up" not in m  # excluded by default
    assert_canonical(m)
    (host / "sys/class/net/wwan0/flags").write_text("0x1090\n")
    (host / "sys/class/net/br-lan/operstate").write_text("up\n")
    second = probe.collect(1)
    assert isinstance(second, Reading)
    events = {(e.name, e.data["iface"]) for e in second.events}
    assert events == {("link_down", "wwan0"), ("link_up", "br-lan")}


def test_interfaces_probe_selection(host: Path, tmp_path: Path) -> None:
    only = InterfacesProbe(host, include=("ww*",)).collect(0)
    assert isinstance(only, Reading) and {k.split("_")[1] for k in only.metrics} == {"wwan0"}
    none = InterfacesProbe(host, include=("nothing*",)).collect(0)
    assert isinstance(none, Unavailable) and none.reason is Reason.NO_DEVICE
    gone = InterfacesProbe(tmp_path / "nowhere").collect(0)
    assert isinstance(gone, Unavailable) and gone.reason is Reason.NO_DATA


# --------------------------------------------------------------------------- serial


def test_uart_counters() -> None:
    recorded = text(HOST / "proc/tty/driver/serial")
    assert parse_uart_counters(recorded, 1) == (654321, 123456)
    assert parse_uart_counters(recorded, 2) is None
    assert port_index("/dev/ttyS12") == 12 and port_index("/dev/ttyUSB0") is None


def test_serial_probe_on_a_recorded_host(host: Path) -> None:
    clock = [1_000_000_000.0]
    os.utime(host / "dev/ttyS1", (clock[0] - 120, clock[0] - 120))
    probe = SerialProbe("/dev/ttyS1", host, clock=lambda: clock[0])
    closed = probe.collect(0)
    assert isinstance(closed, Reading)
    assert closed.metrics == {
        "serial_present": True,
        "serial_open": False,
        "serial_up": False,
        "serial_rx_bytes": 654321,
        "serial_tx_bytes": 123456,
        "serial_idle_s": 120,
    }
    # A process (the DTU daemon) opens the port and bytes move.
    fd_dir = host / "proc/4242/fd"
    fd_dir.mkdir(parents=True)
    (fd_dir / "3").symlink_to("/dev/ttyS1")
    counters = host / "proc/tty/driver/serial"
    counters.write_text(counters.read_text().replace("rx:654321", "rx:654400"))
    clock[0] += 10
    busy = probe.collect(10)
    assert isinstance(busy, Reading)
    assert busy.metrics["serial_up"] is True and busy.metrics["serial_rx_bytes"] == 654400
    assert busy.metrics["serial_idle_s"] == 0
    clock[0] += 30
    idle = probe.collect(40)
    assert isinstance(idle, Reading) and idle.metrics["serial_idle_s"] == 30


def test_serial_probe_missing_port_is_down_not_a_crash(tmp_path: Path) -> None:
    result = SerialProbe("/dev/ttyS7", tmp_path).collect(0)
    assert isinstance(result, Reading)
    assert result.metrics == {"serial_present": False, "serial_open": False, "serial_up": False}


def test_serial_probe_on_a_real_terminal() -> None:
    master, slave = pty.openpty()
    try:
        result = SerialProbe(os.ttyname(slave)).collect(0)
    finally:
        os.close(slave)
        os.close(master)
    assert isinstance(result, Reading)
    assert result.metrics["serial_present"] is True
    assert result.metrics["serial_up"] is True  # this test process holds it open


# --------------------------------------------------------------------------- exec


def test_exec_checks() -> None:
    ok = ExecProbe("answer", ("sh", "-c", "echo 'queue: 42 items'")).collect(0)
    assert isinstance(ok, Reading)
    assert ok.metrics == {"exec_answer_exit": 0, "exec_answer_value": 42}
    failed = ExecProbe("vpn", ("sh", "-c", "echo down; exit 3")).collect(0)
    assert isinstance(failed, Reading) and failed.metrics == {"exec_vpn_exit": 3}
    slow = ExecProbe("slow", ("sleep", "5"), timeout_s=0.2).collect(0)
    assert isinstance(slow, Unavailable) and slow.reason is Reason.TIMEOUT
    missing = ExecProbe("x", ("no-such-program-here",)).collect(0)
    assert isinstance(missing, Unavailable) and missing.reason is Reason.NO_PROGRAM


@pytest.mark.parametrize(
    ("output", "value"),
    [("42\n", 42), ("-3.5 dBm", -3.5), ("load 1e3", 1000), ("none", None), ("nan", None)],
)
def test_first_number(output: str, value: float | None) -> None:
    assert first_number(output) == value


# --------------------------------------------------------------------------- registry and identity


def test_registry_builds_enabled_probes_and_a_failing_probe_is_contained(host: Path) -> None:
    from agent.config import load

    config = load(FIXTURES / "config" / "good-full.toml")
    names = [p.name for p in build_probes(config.probes, host)]
    assert names == [
        "system",
        "interfaces",
        "reachability",
        "cellular",
        "serial",
        "exec_vpn_up",
        "exec_queue_depth",
    ]

    class Broken:
        name = "broken"

        def collect(self, now: float) -> Reading:
            raise ZeroDivisionError("bug")

    result = run_probe(Broken(), 0)
    assert isinstance(result, Unavailable) and result.reason is Reason.ERROR
    assert "ZeroDivisionError" in result.detail


def test_identity_from_openwrt_and_overrides(host: Path) -> None:
    found = detect(host)
    assert found.model == "WR5120 industrial 5G router"
    assert found.firmware == "OpenWrt 23.05.2 r23630-842932a63d"
    assert found.serial == ""
    chosen = resolve(DeviceConfig("gw-1", "t", serial="SN-1", firmware="custom"), host)
    assert (chosen.model, chosen.serial, chosen.firmware) == (found.model, "SN-1", "custom")
    assert parse_os_release("A='x y'\nB=\"z\"\n# c\nbad line\n") == {"A": "x y", "B": "z"}
