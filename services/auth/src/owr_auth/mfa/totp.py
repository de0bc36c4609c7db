"""TOTP with pyotp (RFC 6238: SHA-1, 6 digits, 30 s, what every authenticator app reads), the setup QR
code with segno, and recovery codes.

A code is accepted for the current time-step and one step either side (clock drift, a code typed as it
rolled over), and only for a step later than the last one accepted for that user (replay protection).
"""

from __future__ import annotations

import io
import secrets

import pyotp
import segno
from pyotp.exceptions import OTPVerificationError

ISSUER = "OpenRouter Watcher"
QR_TITLE = "QR code to add OpenRouter Watcher to an authenticator app"
STEP_SECONDS = 30
# Steps either side of the current one that still verify: RFC 6238 §5.2 recommends at most one.
DRIFT_STEPS = 1
# 160 bits, RFC 4226's recommended length, in base32 (32 characters).
SECRET_BASE32_CHARS = 32

RECOVERY_CODE_COUNT = 10
# Crockford's base32 alphabet (no i, l, o, u): 12 characters are 60 random bits, read aloud without doubt.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_CODE_CHARS = 12
_RECOVERY_LOOKALIKES = str.maketrans({"i": "1", "l": "1", "o": "0"})


def new_secret() -> str:
    return pyotp.random_base32(length=SECRET_BASE32_CHARS)


def provisioning_uri(secret: str, account_name: str) -> str:
    """`otpauth://totp/OpenRouter%20Watcher:<email>?secret=…&issuer=OpenRouter%20Watcher…`."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=account_name, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as a QR code: a standalone SVG document (paths only: no script, style or external reference),
    dark on a white ground so it scans from a dark-mode page, 4 px a module."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", scale=4, xmldecl=False, nl=False, dark="#000", light="#fff", title=QR_TITLE
    )
    return out.getvalue().decode("utf-8")


def normalize_code(code: str) -> str:
    return "".join(code.split())


def matching_step(secret: str, code: str, *, now: float) -> int | None:
    """The time-step whose code `code` is, within the drift either side of `now`; None when it is none."""
    code = normalize_code(code)
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    try:
        step: int = pyotp.TOTP(secret, interval=STEP_SECONDS).verify_and_get_timecode(
            code, for_time=now, valid_window=DRIFT_STEPS
        )
    except OTPVerificationError:
        return None
    return step


def new_recovery_codes() -> list[str]:
    """Ten codes shown as `xxxx-xxxx-xxxx`."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_CHARS))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalize_recovery_code(code: str) -> str | None:
    """The code as stored (lowercase, no separators, look-alikes mapped), or None if it cannot be one."""
    cleaned = "".join(c for c in code.lower() if c not in "- \t").translate(_RECOVERY_LOOKALIKES)
    if len(cleaned) != RECOVERY_CODE_CHARS or any(c not in RECOVERY_ALPHABET for c in cleaned):
        return None
    return cleaned
