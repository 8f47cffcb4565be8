"""Standard Webhooks signatures (https://www.standardwebhooks.com), both directions.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the key from a
``whsec_<base64>`` secret. Verification accepts any of several space-separated signatures (key
rotation) and refuses timestamps outside a tolerance, so an old request cannot be replayed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


class SigningError(ValueError):
    """A secret that is not ``whsec_`` followed by base64."""


def secret_key(secret: str) -> bytes:
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise SigningError("webhook secret must be 'whsec_' followed by base64") from exc
    if not key:
        raise SigningError("webhook secret is empty")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret_key(secret), msg_id, timestamp, body),
    }


class Refusal(enum.StrEnum):
    MISSING_HEADERS = "missing_headers"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, slots=True)
class Verified:
    msg_id: str
    timestamp: int


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> Verified | Refusal:
    """Check a request's Standard Webhooks headers; ``headers`` keys must be lower case."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return Refusal.MISSING_HEADERS
    try:
        timestamp = int(stamp)
    except ValueError:
        return Refusal.BAD_TIMESTAMP
    if timestamp < now - tolerance_s:
        return Refusal.TIMESTAMP_TOO_OLD
    if timestamp > now + tolerance_s:
        return Refusal.TIMESTAMP_IN_FUTURE
    expected = signature(secret_key(secret), msg_id, timestamp, body)
    for candidate in signatures.split(" "):
        if hmac.compare_digest(candidate, expected):
            return Verified(msg_id, timestamp)
    return Refusal.BAD_SIGNATURE
