"""Two-factor sign-in: setup (a pending secret, after the password), enable (a first valid code; recovery
codes), new recovery codes (a fresh code), disable (a fresh code or a recovery code), status, and the code
check that login's second step uses.

Every check of a code is throttled per user (from any address) and per address before it runs, and runs
under a row lock on the user's credential: a code is accepted only for a time-step later than the last one
accepted, so a code works once whether it is replayed later or sent twice at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.base import utcnow
from owr_auth.mail.queue import MailQueue
from owr_auth.metrics import MFA_CHECKS
from owr_auth.mfa import totp
from owr_auth.mfa.challenge import ChallengeStore
from owr_auth.mfa.errors import MfaAlreadyEnabled, MfaNotEnabled, MfaSetupMissing, WrongCode
from owr_auth.mfa.repository import MfaRepository, sealed_secret
from owr_auth.mfa.schemas import MfaStatus, RecoveryCodesView, SetupView
from owr_auth.mfa.sealing import MfaKeys
from owr_auth.notices import service as notices
from owr_auth.sessions.throttle import AttemptLimits, AttemptThrottle
from owr_auth.settings import AuthSettings
from owr_auth.users.models import User
from owr_shared.logging import get_logger

log = get_logger(__name__)

Purpose = Literal["login", "enable", "disable", "recovery_codes"]


@dataclass(slots=True)
class MfaKit:
    """What the lifespan makes for two-factor sign-in; `clock` (unix seconds) is swapped by tests."""

    keys: MfaKeys
    challenges: ChallengeStore
    throttle: AttemptThrottle
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def from_settings(cls, redis: Redis, settings: AuthSettings) -> MfaKit:
        limits = AttemptLimits(
            window_seconds=settings.login_failure_window_seconds,
            per_subject=settings.mfa_max_failures_per_user,
            per_ip=settings.mfa_max_failures_per_ip,
            lockout_base_seconds=settings.login_lockout_base_seconds,
            lockout_max_seconds=settings.login_lockout_max_seconds,
        )
        return cls(
            keys=MfaKeys.from_settings(settings),
            challenges=ChallengeStore(redis, ttl_seconds=settings.mfa_challenge_ttl_seconds),
            throttle=AttemptThrottle(redis, namespace="mfa", subject_kind="user", limits=limits),
        )


async def status(session: AsyncSession, *, user_id: uuid.UUID) -> MfaStatus:
    repo = MfaRepository(session)
    credential = await repo.get(user_id)
    enabled = credential is not None and credential.enabled_at is not None
    return MfaStatus(
        enabled=enabled,
        pending=credential is not None and not enabled,
        enabled_at=credential.enabled_at if credential else None,
        recovery_codes_left=await repo.recovery_codes_left(user_id) if enabled else 0,
    )


async def setup(session: AsyncSession, mfa: MfaKit, *, user: User) -> SetupView:
    """A new pending secret (replacing any earlier pending one), sealed at rest; its URI and QR code."""
    repo = MfaRepository(session)
    credential = await repo.lock(user.id)
    if credential is not None and credential.enabled_at is not None:
        raise MfaAlreadyEnabled()
    secret = totp.new_secret()
    await repo.put_pending(user.id, mfa.keys.seal(user.id, secret), utcnow())
    uri = totp.provisioning_uri(secret, user.email)
    log.info("mfa_setup_started", user_id=str(user.id))
    return SetupView(otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


async def enable(
    session: AsyncSession, mfa: MfaKit, queue: MailQueue, *, user: User, code: str, ip: str
) -> RecoveryCodesView:
    """Turn two-factor sign-in on with a first valid code; ten recovery codes, stored as keyed hashes. The
    account's address gets a notice once this commits."""
    user_id = user.id
    repo = MfaRepository(session)
    credential = await repo.get(user_id)
    if credential is None:
        raise MfaSetupMissing()
    if credential.enabled_at is not None:
        raise MfaAlreadyEnabled()
    if not await check(session, mfa, user_id=user_id, code=code, recovery_code=None, ip=ip, purpose="enable"):
        raise WrongCode()
    # `check` re-read the row under its lock: a concurrent enable with another valid code may have won.
    if credential.enabled_at is not None:
        raise MfaAlreadyEnabled()
    codes = _new_recovery_codes(mfa, user_id)
    await repo.replace_recovery_codes(user_id, [hash_ for _, hash_ in codes])
    await repo.enable(credential, utcnow())
    await notices.notify(session, queue, user, "mfa_enabled")
    log.info("mfa_enabled", user_id=str(user_id))
    return RecoveryCodesView(recovery_codes=[code for code, _ in codes])


async def regenerate_recovery_codes(
    session: AsyncSession, mfa: MfaKit, queue: MailQueue, *, user: User, code: str, ip: str
) -> RecoveryCodesView:
    """Ten new recovery codes in place of every old one (used or not), for a fresh authenticator code: a
    recovery code cannot make more of them, so whoever found a printed list cannot keep the account's.
    409 `mfa-not-enabled` when it is off, also when a `disable` committed while this one waited for the lock
    (`check` reads it again under the lock). The account's address gets a notice once this commits."""
    user_id = user.id
    repo = MfaRepository(session)
    if not await repo.is_enabled(user_id):
        raise MfaNotEnabled()
    if not await check(session, mfa, user_id=user_id, code=code, recovery_code=None, ip=ip, purpose="recovery_codes"):
        raise WrongCode()
    codes = _new_recovery_codes(mfa, user_id)
    await repo.replace_recovery_codes(user_id, [hash_ for _, hash_ in codes])
    await notices.notify(session, queue, user, "recovery_codes_replaced")
    log.info("mfa_recovery_codes_regenerated", user_id=str(user_id))
    return RecoveryCodesView(recovery_codes=[code for code, _ in codes])


def _new_recovery_codes(mfa: MfaKit, user_id: uuid.UUID) -> list[tuple[str, bytes]]:
    """Ten fresh codes, each with the keyed hash that is all auth stores of it."""
    return [(c, mfa.keys.recovery_hash(user_id, _stored_form(c))) for c in totp.new_recovery_codes()]


async def disable(
    session: AsyncSession,
    mfa: MfaKit,
    queue: MailQueue,
    *,
    user: User,
    code: str | None,
    recovery_code: str | None,
    ip: str,
) -> None:
    """Turn two-factor sign-in off with a fresh code or an unused recovery code (409 `mfa-not-enabled` when it
    is off, also when another `disable` won the lock). The account's address gets a notice once this commits."""
    user_id = user.id
    repo = MfaRepository(session)
    if not await repo.is_enabled(user_id):
        raise MfaNotEnabled()
    if not await check(session, mfa, user_id=user_id, code=code, recovery_code=recovery_code, ip=ip, purpose="disable"):
        raise WrongCode()
    await repo.remove(user_id)
    await notices.notify(session, queue, user, "mfa_disabled")
    log.info("mfa_disabled", user_id=str(user_id), with_recovery_code=recovery_code is not None)


async def check(
    session: AsyncSession,
    mfa: MfaKit,
    *,
    user_id: uuid.UUID,
    code: str | None,
    recovery_code: str | None,
    ip: str,
    purpose: Purpose,
) -> bool:
    """Whether the code is good, using it up: a TOTP code of a step later than the last accepted one (of
    the pending secret for `enable`, of the enabled one otherwise), or an unused recovery code (not for
    `enable`).

    Throttled first (`LoginLocked`, 429; `LoginUnavailable`, 503 without Redis); a success gives the
    attempt back. The credential stays locked until the transaction ends. For `disable` and
    `recovery_codes`, `MfaNotEnabled` (409) when it is off under the lock: the callers' first read is not
    locked, and a `disable` may have committed since.
    """
    subject = str(user_id)
    await mfa.throttle.begin_attempt(subject, ip)
    repo = MfaRepository(session)
    credential = await repo.lock(user_id)
    if purpose in ("disable", "recovery_codes") and (credential is None or credential.enabled_at is None):
        # Not a wrong code, so no `wrong-code`; the attempt stays counted (giving it back would reset the
        # account's failures, and only a caller who raced their own disable gets here).
        raise MfaNotEnabled()
    # `enable` checks a pending secret; a sign-in or `disable`, only one that is on.
    if credential is not None and (credential.enabled_at is None) != (purpose == "enable"):
        credential = None
    ok = False
    if credential is not None and code is not None:
        sealed = sealed_secret(credential)
        secret = mfa.keys.open(user_id, sealed)
        step = totp.matching_step(secret, code, now=mfa.clock())
        if step is not None and (credential.last_used_step is None or step > credential.last_used_step):
            await repo.mark_used(credential, step)
            ok = True
            if sealed.kek_version != mfa.keys.active_version:
                # A KEK rotation reaches the secrets of people who sign in without a command of its own.
                await repo.reseal(credential, mfa.keys.rewrap(user_id, sealed))
    elif credential is not None and recovery_code is not None and purpose != "enable":
        stored = totp.normalize_recovery_code(recovery_code)
        if stored is not None:
            ok = await repo.use_recovery_code(user_id, mfa.keys.recovery_hash(user_id, stored), utcnow())
    kind = "totp" if code is not None else "recovery"
    MFA_CHECKS.labels(purpose, kind, "ok" if ok else "wrong").inc()
    if ok:
        await mfa.throttle.attempt_succeeded(subject, ip)
        if kind == "recovery":
            log.info("mfa_recovery_code_used", user_id=subject, purpose=purpose)
    return ok


def _stored_form(code: str) -> str:
    stored = totp.normalize_recovery_code(code)
    assert stored is not None  # our own codes always normalise
    return stored
