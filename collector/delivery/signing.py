"""Standard Webhooks signatures (https://www.standardwebhooks.com), both directions.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the key from a
``whsec_<base64>`` secret (padding optional: many desks print the secret without it).
Signing with several secrets during a rotation sends one signature per secret, space-separated,
as the spec allows; verification accepts any of them and refuses timestamps outside a
tolerance, so an old request cannot be replayed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


class SigningError(ValueError):
    """A secret that is not ``whsec_`` followed by base64."""


def secret_key(secret: str) -> bytes:
    text = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError as exc:
        raise SigningError("webhook secret must be 'whsec_' followed by base64") from exc
    if not key:
        raise SigningError("webhook secret is empty")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(
    secrets: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Headers for one request, signed with every secret given (rotation: old and new)."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    signed = " ".join(signature(secret_key(s), msg_id, timestamp, body) for s in keys)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signed}


class Refusal(enum.StrEnum):
    MISSING_HEADERS = "missing_headers"
    BAD_HEADERS = "bad_headers"  # not ASCII
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, slots=True)
class Verified:
    msg_id: str
    timestamp: int


def verify(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> Verified | Refusal:
    """Check a request's Standard Webhooks headers; ``headers`` keys must be lower case.

    ``secret``: one, or several while the desk rotates its secret (any one may match)."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return Refusal.MISSING_HEADERS
    if not (msg_id.isascii() and stamp.isascii() and signatures.isascii()):
        return Refusal.BAD_HEADERS
    try:
        timestamp = int(stamp)
    except ValueError:
        return Refusal.BAD_TIMESTAMP
    if timestamp < now - tolerance_s:
        return Refusal.TIMESTAMP_TOO_OLD
    if timestamp > now + tolerance_s:
        return Refusal.TIMESTAMP_IN_FUTURE
    keys = [secret] if isinstance(secret, str) else list(secret)
    expected = [signature(secret_key(k), msg_id, timestamp, body) for k in keys]
    for candidate in signatures.split(" "):
        if any(hmac.compare_digest(candidate, e) for e in expected):
            return Verified(msg_id, timestamp)
    return Refusal.BAD_SIGNATURE
