"""The API token itself: `owr_` + 256 random bits + a checksum, and its stored form (HMAC-SHA-256).

The shape follows GitHub's tokens, so secret scanners can recognise ours and reject a mistyped token
without a lookup: 43 base62 characters carry 32 random bytes, then 6 base62 characters carry the
CRC-32 of those 43. Only `HMAC-SHA-256(pepper, token)` is stored; the gateway holds the pepper too, so
its cache entry for a token has a name auth can compute (and delete) from the stored hash alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

from owr_shared.wire import redis_keys

PREFIX = "owr_"
BODY_LENGTH = 43  # ceil(256 / log2(62))
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
TOKEN_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(PREFIX) + 6  # what lists show: enough to tell tokens apart, useless to an attacker
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_token() -> str:
    """A fresh token: 256 bits from the OS's CSPRNG, then the checksum."""
    body = _base62(int.from_bytes(secrets.token_bytes(32), "big"), BODY_LENGTH)
    return PREFIX + body + _checksum(body)


def well_formed(token: str) -> bool:
    """Prefix, length, alphabet and checksum: a typo or a foreign string fails here, with no lookup."""
    if len(token) != TOKEN_LENGTH or not token.startswith(PREFIX):
        return False
    rest = token[len(PREFIX) :]
    if any(char not in _INDEX for char in rest):
        return False
    body, checksum = rest[:BODY_LENGTH], rest[BODY_LENGTH:]
    return hmac.compare_digest(_checksum(body), checksum)


def display_prefix(token: str) -> str:
    return token[:DISPLAY_LENGTH]


def token_hash(pepper: bytes, token: str) -> bytes:
    """The stored form: HMAC-SHA-256 under the server-side pepper (a database leak alone reveals nothing)."""
    return hmac.new(pepper, token.encode("ascii"), hashlib.sha256).digest()


def cache_key(hashed: bytes) -> str:
    """The gateway's Redis entry for a token (its introspection, at most 60 s old)."""
    return f"{redis_keys.API_TOKEN_CACHE}{hashed.hex()}"
