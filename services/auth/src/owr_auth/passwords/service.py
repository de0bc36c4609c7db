"""Argon2id hashing off the event loop, and the password policy.

Policy (NIST SP 800-63B): 12 to 128 characters after NFKC normalisation, no composition rules, and
none of the 10,000 most common passwords (case-insensitive). Passwords are NFKC-normalised before
hashing, so the same password typed on another keyboard layout or OS still verifies.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from owr_auth.passwords.errors import PasswordPolicyViolation
from owr_auth.settings import AuthSettings

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = "common-passwords.txt"


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lowercase; read once, on first use."""
    text = resources.files("owr_auth.passwords").joinpath(COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def normalize_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password_policy(password: str, *, field: str = "password") -> None:
    """Raise `PasswordPolicyViolation` naming the first rule the password breaks."""
    normalized = normalize_password(password)
    if len(normalized) < MIN_LENGTH:
        raise PasswordPolicyViolation(
            field=field, rule="password_too_short", message=f"The password must have at least {MIN_LENGTH} characters."
        )
    if len(normalized) > MAX_LENGTH:
        raise PasswordPolicyViolation(
            field=field, rule="password_too_long", message=f"The password must have at most {MAX_LENGTH} characters."
        )
    if normalized.lower() in common_passwords():
        raise PasswordPolicyViolation(
            field=field,
            rule="password_too_common",
            message="The password is one of the most commonly used passwords; choose another.",
        )


class PasswordService:
    """Hash and verify with argon2id in worker threads, a bounded number at a time."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int, max_concurrency: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Each computation holds memory_kib of RAM; the semaphore caps the total under a login burst.
        self._slots = asyncio.Semaphore(max_concurrency)
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> PasswordService:
        return cls(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            max_concurrency=settings.argon2_max_concurrency,
        )

    async def hash(self, password: str) -> str:
        """Return the argon2id PHC string of `password`."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, normalize_password(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; a corrupt hash counts as a mismatch."""
        async with self._slots:
            return await asyncio.to_thread(self._verify_sync, password_hash, normalize_password(password))

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification, so an unknown account answers as slowly as a known one."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(24))
        await self.verify(self._dummy_hash, password)

    async def warm_up(self) -> None:
        """Compute the dummy hash and load the common-password list before the first request."""
        await self.verify_dummy(secrets.token_urlsafe(24))
        await asyncio.to_thread(common_passwords)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
