"""``fleetdesk device``: issue broker credentials and ACL lines, print the agent config.

    fleetdesk device add --tenant T --id D [--passwd FILE] [--acl FILE] [--out DIR]
                         [--broker mqtts://HOST:8883] [--ca-file PATH]
    fleetdesk device collector-account [--user fleetdesk-collector] [--passwd FILE] [--acl FILE]
                         [--out DIR]

A new account gets a random password, stored hashed in Mosquitto's password file (PBKDF2-
SHA512, the ``$7$`` format of ``mosquitto_passwd``) and in clear only in ``DIR/*.password``
(mode 0600), to be installed on the device; the password is never printed. The ACL block lets
a device publish only under ``fleet/v1/<tenant>/<id>/#`` and read only its own ``cmd`` topic
(deploy/mosquitto/). Mosquitto reads both files on SIGHUP (``systemctl reload mosquitto``).
An account that exists already is refused (exit 2): remove its lines to re-issue it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import sys
from pathlib import Path

from agent import wire

HELP = "issue a device's (or the collector's) broker account, ACL lines and agent config"
ITERATIONS = 101  # mosquitto_passwd's default for $7$
COLLECTOR_USER = "fleetdesk-collector"


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """``user:$7$101$<salt>$<hash>``, as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    b64 = base64.b64encode
    return f"{user}:$7${ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def device_user(tenant: str, device: str) -> str:
    return f"{tenant}/{device}"


def device_acl(tenant: str, device: str) -> str:
    base = f"{wire.TOPIC_PREFIX}/{tenant}/{device}"
    return (
        f"user {device_user(tenant, device)}\n"
        f"topic write {base}/#\n"
        f"topic read {wire.topic(tenant, device, wire.Kind.COMMAND)}\n"
    )


def collector_acl(user: str) -> str:
    return (
        f"user {user}\n"
        f"topic read {wire.TOPIC_PREFIX}/#\n"
        f"topic write {wire.TOPIC_PREFIX}/+/+/{wire.Kind.COMMAND.value}\n"
        "topic write fleet/deadletter\n"
    )


def agent_config(
    tenant: str, device: str, broker: str, ca_file: str | None, password_file: str
) -> str:
    tls = f'\n[broker.tls]\nca_file = "{ca_file}"\n' if ca_file else ""
    return f"""# /etc/fleetdesk/agent.toml for {device} (issued by fleetdesk device add)
interval_s = 60

[device]
id = "{device}"
tenant = "{tenant}"

[broker]
urls = ["{broker}"]
username = "{device_user(tenant, device)}"
password_file = "{password_file}"
{tls}
[spool]
path = "/var/lib/fleetdesk-agent/spool.db"

[probes.system]
[probes.interfaces]
exclude = ["lo", "veth*", "docker*"]
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="a device's account, ACL block and agent config")
    add.add_argument("--tenant", required=True)
    add.add_argument("--id", required=True, dest="device")
    add.add_argument("--broker", default="mqtts://mqtt.example.net:8883", help="URL agents dial")
    add.add_argument("--ca-file", default="/etc/fleetdesk/ca.pem", help="CA on the device")
    add.add_argument(
        "--password-file", default="/etc/fleetdesk/agent.password", help="password on the device"
    )
    col = sub.add_parser("collector-account", help="the collector's account and ACL block")
    col.add_argument("--user", default=COLLECTOR_USER)
    for command in (add, col):
        command.add_argument("--passwd", type=Path, default=Path("/etc/mosquitto/fleetdesk.passwd"))
        command.add_argument("--acl", type=Path, default=Path("/etc/mosquitto/fleetdesk.acl"))
        command.add_argument("--out", type=Path, default=Path("."), help="where files go (.)")


def _users(passwd: Path) -> set[str]:
    try:
        lines = passwd.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    return {line.split(":", 1)[0] for line in lines if ":" in line}


def _append(path: Path, text: str, mode: int = 0o640) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(text)


def _secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def run(args: argparse.Namespace) -> int:
    def fail(message: str) -> int:
        print(f"fleetdesk device: {message}", file=sys.stderr)
        return 2

    if args.device_command == "add":
        for name, value in (("--tenant", args.tenant), ("--id", args.device)):
            if not wire.valid_id(value):
                return fail(f"{name}: {value!r} is not an id of 1-64 [A-Za-z0-9._:-] characters")
            if ":" in value:  # the password file's separator
                return fail(f"{name}: {value!r}: ':' cannot be in a broker user name")
        user, acl = device_user(args.tenant, args.device), device_acl(args.tenant, args.device)
        secret_name = f"{args.device}.password"
    else:
        user, acl, secret_name = args.user, collector_acl(args.user), "collector.password"
    if user in _users(args.passwd):
        return fail(f"{args.passwd}: {user!r} has an account already")
    password = secrets.token_urlsafe(24)
    _secret_file(args.out / secret_name, password)
    _append(args.passwd, password_line(user, password) + "\n")
    _append(args.acl, "\n" + acl, 0o644)
    print(f"# {args.acl}: added\n{acl}")
    print(f"# {args.passwd}: added {user!r}; the password is in {args.out / secret_name} (0600)")
    if args.device_command == "add":
        config = agent_config(
            args.tenant, args.device, args.broker, args.ca_file, args.password_file
        )
        (args.out / f"{args.device}.toml").write_text(config, encoding="utf-8")
        print(f"# {args.out / (args.device + '.toml')}: the agent config to install\n{config}")
    print("# then: systemctl reload mosquitto")
    return 0
