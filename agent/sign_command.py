"""``fleetdesk-agent sign-command``: the operator's side of a signed downlink command.

Prints the command payload (one JSON line) signed with the device's (or tenant's) command key,
ready for ``mosquitto_pub -t fleet/v1/<tenant>/<device>/cmd -s``; the topic goes to stderr.
The key is read from ``--key-file``/``--key-env`` or the agent config's ``[commands]`` table,
and never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from agent import wire
from agent.command_auth import make_command, read_key, signature


def _fail(message: str) -> int:
    print(f"fleetdesk agent sign-command: {message}", file=sys.stderr)
    return 2


def sign_command(args: argparse.Namespace) -> int:
    tenant, device, key = args.tenant, args.device, None
    if args.config is not None:
        from agent.config import ConfigError, load

        try:
            config = load(args.config)
        except ConfigError as exc:
            return _fail(str(exc))
        tenant, device = tenant or config.device.tenant, device or config.device.id
        key = config.commands.key
    if args.key_file is not None or args.key_env is not None:
        try:
            key = read_key(args.key_env, args.key_file)
        except ValueError as exc:
            return _fail(str(exc))
    if not tenant or not device or not wire.valid_id(tenant) or not wire.valid_id(device):
        return _fail("give --tenant and --device (valid ids), or --config")
    if key is None:
        return _fail("no command key: give --key-file or --key-env, or a config with one")
    if not args.cmd or not wire.valid_name(args.cmd):
        return _fail("--cmd must name a command ([a-z][a-z0-9_]*)")
    try:
        cmd_args = json.loads(args.args)
    except ValueError as exc:
        return _fail(f"--args is not JSON: {exc}")
    if not isinstance(cmd_args, dict):
        return _fail("--args must be a JSON object")
    if not 1 <= args.ttl <= 7 * 86_400:
        return _fail("--ttl must be 1 .. 604800 seconds")
    topic = wire.topic(tenant, device, wire.Kind.COMMAND)
    body = make_command(args.cmd, cmd_args, datetime.now(UTC), args.ttl, args.command_id)
    body["sig"] = signature(body, topic, key)
    print(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
    print(f"topic: {topic}", file=sys.stderr)
    return 0
