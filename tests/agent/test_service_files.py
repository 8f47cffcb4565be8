"""The service files run the agent as an unprivileged user, not root.

The OpenWrt script's ``start_service`` runs for real under ``sh``; procd and OpenWrt's user
functions cannot run here, so they are shell stubs that record what they are asked (a fake for
what this machine does not have, and the test says so).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.agent import REPO

INIT = REPO / "deploy" / "openwrt" / "fleetdesk-agent.init"
UNIT = REPO / "deploy" / "fleetdesk-agent.service"

STUBS = """
log() { echo "$*" >> "$RECORD"; }
extra_command() { :; }
user_exists() { grep -q "^$1$" "$USERS"; }
user_add() { log "user_add $*"; echo "$1" >> "$USERS"; }
procd_open_instance() { log open; }
procd_set_param() { log "param $*"; }
procd_close_instance() { log close; }
chown() { log "chown $*"; }
"""


def start_service(tmp: Path, users: str) -> list[str]:
    record, known = tmp / "record", tmp / "users"
    known.write_text(users)
    record.write_text("")
    conf, prog = tmp / "agent.toml", tmp / "fleetdesk-agent"
    conf.write_text("")
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    body = INIT.read_text().split("\n", 1)[1]  # without the rc.common shebang
    script = (
        f"RECORD={record}\nUSERS={known}\n{STUBS}\n{body}\n"
        f"PROG={prog}\nCONF={conf}\nSTATE={tmp / 'state'}\nstart_service\n"
    )
    subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True)
    return record.read_text().splitlines()


def test_the_openwrt_service_runs_as_its_own_user(tmp_path: Path) -> None:
    calls = start_service(tmp_path, "root\n")
    assert any(c.startswith("user_add fleetdesk 472 ") for c in calls), calls
    assert "param user fleetdesk" in calls
    assert f"chown fleetdesk {tmp_path / 'state'}" in calls
    assert (tmp_path / "state").is_dir()
    again = start_service(tmp_path, "root\nfleetdesk\n")  # the user exists: not made again
    assert not any(c.startswith("user_add") for c in again) and "param user fleetdesk" in again


def test_the_systemd_unit_runs_as_a_dynamic_user() -> None:
    lines = {line.strip() for line in UNIT.read_text().splitlines()}
    assert "DynamicUser=yes" in lines and "NoNewPrivileges=yes" in lines
    assert not any(line.startswith("User=") for line in lines)
    assert "SupplementaryGroups=dialout" in lines
