"""Standard Webhooks 1.0 signing: what a receiver verifies a delivery with.

A channel's secret is `whsec_` + base64 of 24-64 random bytes. Each delivery carries `webhook-id` (the
event's id: the same on every retry, so a receiver can drop a repeat), `webhook-timestamp` (Unix seconds)
and `webhook-signature`: `v1,<base64 of HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")>`, one per
secret, space-separated, so both the old and the new secret sign while a rotation overlaps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"
SECRET_BYTES = 32


class BadSecret(ValueError):
    """Not a `whsec_` secret (the message never carries the value)."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    if not secret.startswith(PREFIX):
        raise BadSecret("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret("a webhook secret's body is base64") from None
    if not 24 <= len(key) <= 64:
        raise BadSecret("a webhook secret holds 24 to 64 bytes")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_in_use: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a delivery, signed with every secret in use (newest first)."""
    if not secrets_in_use:
        raise BadSecret("a delivery needs at least one secret")
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets_in_use),
    }
