"""Which downlink commands the agent obeys: signed, unexpired, live and never twice.

A command is signed with HMAC-SHA256 over its canonical form: the command topic, a newline,
then the JSON object without ``sig`` with sorted keys and no spaces (:func:`canonical`). The
topic binds the signature to one tenant and device, so a per-tenant key cannot be replayed to
another device. ``exp`` (RFC 3339) bounds its life; ``id``s seen are remembered until their
``exp`` so a recorded command cannot be played again. :class:`CommandGate` is pure: time is
passed in, and what it remembers is loaded and dumped as text by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from agent import wire
from agent.config_types import CommandsConfig

MIN_KEY_BYTES: Final = 16
MAX_SEEN: Final = 1024  # ids remembered at once; past it new commands wait (too_many)


def canonical(body: Mapping[str, Any], topic: str) -> bytes:
    """The bytes that are signed: ``topic`` + ``\\n`` + the sorted, compact JSON sans ``sig``."""
    doc = {k: v for k, v in body.items() if k != "sig"}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{topic}\n{text}".encode()


def signature(body: Mapping[str, Any], topic: str, key: bytes) -> str:
    return hmac.new(key, canonical(body, topic), hashlib.sha256).hexdigest()


def read_key(env: str | None, file: Path | None) -> bytes:
    """The key from an environment variable or a file (stripped text); ValueError says why."""
    if env is not None:
        text = os.environ.get(env)
        if text is None:
            raise ValueError(f"the environment variable {env} is not set")
    elif file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {str(file)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{str(file)!r} is not UTF-8 text") from None
    else:
        raise ValueError("no key given")
    key = text.strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key is shorter than {MIN_KEY_BYTES} bytes")
    return key


def make_command(
    cmd: str, args: dict[str, Any], now: datetime, ttl_s: float, command_id: str | None = None
) -> dict[str, Any]:
    """A command body (unsigned) that expires ``ttl_s`` after ``now``."""
    return {
        "v": wire.PROTOCOL_VERSION,
        "id": command_id or f"c-{secrets.token_hex(8)}",
        "cmd": cmd,
        "args": args,
        "ts": wire.format_ts(now),
        "exp": wire.format_ts(now + timedelta(seconds=ttl_s)),
    }


class CommandGate:
    """Admits a command or says why not (``reason: detail``, the reason first)."""

    def __init__(self, config: CommandsConfig) -> None:
        self.config = config
        self._seen: dict[str, float] = {}  # command id -> its exp (Unix seconds)

    def check(
        self, body: Mapping[str, Any], topic: str, retained: bool, now: datetime
    ) -> str | None:
        """None to obey; else the refusal. An admitted id is remembered (see :meth:`dump`)."""
        if retained:
            return "retained: a retained command is never obeyed (publish with retain off)"
        refusal = self._authentic(body, topic)
        if refusal is not None:
            return refusal
        raw_exp = body.get("exp")
        if raw_exp is None:
            return "no_expiry: a command needs 'exp' (RFC 3339)"
        exp = wire.parse_ts(raw_exp)
        if isinstance(exp, wire.DecodeError):
            return f"bad_expiry: {exp.detail}"
        left = (exp - now).total_seconds()
        skew, ttl = self.config.clock_skew_s, self.config.max_ttl_s
        if left < -skew:
            return f"expired: exp {wire.format_ts(exp)} is past (agent clock {wire.format_ts(now)})"
        if left > ttl + skew:
            return f"bad_expiry: exp is more than max_ttl_s={ttl:g} s ahead"
        command_id = str(body.get("id"))
        self._forget(now.timestamp())
        if command_id in self._seen:
            return f"replayed: command id {command_id!r} was seen before"
        if len(self._seen) >= MAX_SEEN:
            return "too_many: too many live commands; retry after some expire"
        self._seen[command_id] = exp.timestamp() + skew
        return None

    def _authentic(self, body: Mapping[str, Any], topic: str) -> str | None:
        key, sig = self.config.key, body.get("sig")
        if key is None or (sig is None and self.config.trust_broker_acl):
            if self.config.trust_broker_acl:
                return None  # opted in: the broker's ACL decides who may publish here
            return "unsigned: no command key configured and trust_broker_acl is off"
        if sig is None:
            return "unsigned: commands must carry 'sig' (fleetdesk-agent sign-command)"
        if not isinstance(sig, str) or not hmac.compare_digest(
            sig.lower().encode(), signature(body, topic, key).encode()
        ):
            return "bad_signature: 'sig' does not match this device's command key"
        return None

    def _forget(self, now: float) -> None:
        for command_id in [i for i, exp in self._seen.items() if exp < now]:
            del self._seen[command_id]

    def dump(self) -> str:
        return json.dumps(self._seen, separators=(",", ":"))

    def load(self, text: str | None) -> None:
        """Ids remembered by the previous run (a damaged value is ignored)."""
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return
        if isinstance(data, dict):
            for key, exp in list(data.items())[:MAX_SEEN]:
                if isinstance(exp, int | float) and not isinstance(exp, bool):
                    self._seen[str(key)] = float(exp)
