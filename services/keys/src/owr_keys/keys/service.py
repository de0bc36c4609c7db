"""Storing, listing, changing and deleting keys, and requesting syncs; each change is audited."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from arq.connections import ArqRedis
from prometheus_client import Counter
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit import service as audit
from owr_keys.audit.models import AuditEvent
from owr_keys.audit.repository import AuditRepository
from owr_keys.audit.service import Actor
from owr_keys.erasure import service as erasure
from owr_keys.keys.errors import DuplicateKey, KeyInactive, KeyNotFound, QueueUnavailable, TooManyKeys
from owr_keys.keys.models import OpenRouterKey
from owr_keys.keys.repository import KeyRepository
from owr_keys.metrics import FIRST_SYNCS, SYNC_REQUESTS
from owr_keys.vault.crypto import Fingerprinter, Vault
from owr_shared.context import parse_traceparent
from owr_shared.dependencies import Pagination
from owr_shared.logging import get_logger

log = get_logger(__name__)

SYNC_JOB = "sync_key"
# A hung Redis costs the caller a bounded wait and a 503, not a hung request.
ENQUEUE_TIMEOUT_SECONDS = 2.0
_V1_PREFIX = "sk-or-v1-"
_PREFIX = "sk-or-"


def sync_job_id(key_id: uuid.UUID) -> str:
    """Deterministic, so a second press while the first job waits or runs queues nothing new."""
    return f"{SYNC_JOB}:{key_id}"


def mask(secret: str) -> str:
    """OpenRouter's own label: the prefix, 3 characters, '...', the last 3 (e.g. 'sk-or-v1-0e6...c96')."""
    prefix = _V1_PREFIX if secret.startswith(_V1_PREFIX) else _PREFIX
    body = secret[len(prefix) :]
    return f"{prefix}{body[:3]}...{body[-3:]}"


async def create_key(
    session: AsyncSession,
    vault: Vault,
    fingerprint: Fingerprinter,
    *,
    actor: Actor,
    workspace_id: uuid.UUID,
    name: str,
    secret: str,
    max_keys: int,
) -> OpenRouterKey:
    """Seal and store `secret`; a second copy of the same key in the workspace is a 409, and so is a key
    beyond `max_keys` (counted under the workspace's lock, so concurrent additions never pass it)."""
    await erasure.refuse_erased(session, workspace_id)
    repository = KeyRepository(session)
    if await repository.count_locked(workspace_id) >= max_keys:
        raise TooManyKeys(max_keys)
    key_id = uuid.uuid4()
    sealed = vault.seal(secret, workspace_id=workspace_id, key_id=key_id)
    label = mask(secret)
    row = await repository.insert(
        {
            "id": key_id,
            "workspace_id": workspace_id,
            "name": name,
            "label": label,
            "fingerprint": fingerprint(secret, workspace_id=workspace_id),
            "ciphertext": sealed.ciphertext,
            "nonce": sealed.nonce,
            "wrapped_dek": sealed.wrapped_dek,
            "dek_nonce": sealed.dek_nonce,
            "kek_version": sealed.kek_version,
        }
    )
    if row is None:
        raise DuplicateKey()
    await audit.record(
        session,
        actor=actor,
        action="created",
        key_id=key_id,
        workspace_id=workspace_id,
        details={"name": name, "label": label},
    )
    log.info("key_created", key_id=str(key_id), workspace_id=str(workspace_id))
    return row


async def list_keys(
    session: AsyncSession, *, workspace_id: uuid.UUID, paging: Pagination
) -> tuple[Sequence[OpenRouterKey], int]:
    return await KeyRepository(session).page(workspace_id, offset=paging.offset, limit=paging.per_page)


async def get_key(session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> OpenRouterKey:
    row = await KeyRepository(session).get(workspace_id, key_id)
    if row is None:
        raise KeyNotFound()
    return row


async def update_key(
    session: AsyncSession,
    *,
    actor: Actor,
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    name: str | None,
    is_active: bool | None,
) -> OpenRouterKey:
    """Rename and/or (de)activate; each actual change is one audit event, no-ops are none."""
    row = await KeyRepository(session).get(workspace_id, key_id, for_update=True)
    if row is None:
        raise KeyNotFound()
    if name is not None and name != row.name:
        await audit.record(
            session,
            actor=actor,
            action="renamed",
            key_id=key_id,
            workspace_id=workspace_id,
            details={"from": row.name, "to": name},
        )
        row.name = name
    if is_active is not None and is_active != row.is_active:
        await audit.record(
            session,
            actor=actor,
            action="activated" if is_active else "deactivated",
            key_id=key_id,
            workspace_id=workspace_id,
        )
        row.is_active = is_active
    await session.flush()
    return row


async def delete_key(session: AsyncSession, *, actor: Actor, workspace_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Delete the key; its audit history stays (and goes with the workspace)."""
    row = await KeyRepository(session).delete(workspace_id, key_id)
    if row is None:
        raise KeyNotFound()
    await audit.record(
        session,
        actor=actor,
        action="deleted",
        key_id=key_id,
        workspace_id=workspace_id,
        details={"name": row.name, "label": row.label},
    )
    log.info("key_deleted", key_id=str(key_id), workspace_id=str(workspace_id))


async def _enqueue_sync(
    queue: ArqRedis, key_id: uuid.UUID, outcomes: Counter, *, traceparent: str | None, request_id: str | None
) -> bool:
    """Queue `sync_key` for the key (True), or find its job already waiting (False); `QueueUnavailable`
    when Redis fails or does not answer within `ENQUEUE_TIMEOUT_SECONDS`. Each outcome counts in `outcomes`."""
    # Only a well-formed traceparent travels into the job; anything else would be caller-controlled noise.
    carried = traceparent.strip().lower() if traceparent and parse_traceparent(traceparent) else None
    try:
        job = await asyncio.wait_for(
            queue.enqueue_job(
                SYNC_JOB, _job_id=sync_job_id(key_id), key_id=str(key_id), traceparent=carried, request_id=request_id
            ),
            timeout=ENQUEUE_TIMEOUT_SECONDS,
        )
    except (RedisError, OSError, TimeoutError) as exc:
        outcomes.labels("queue_unavailable").inc()
        log.warning("sync_enqueue_failed", key_id=str(key_id), error_type=type(exc).__name__)
        raise QueueUnavailable() from None
    outcomes.labels("enqueued" if job is not None else "already_queued").inc()
    return job is not None


async def enqueue_first_sync(
    queue: ArqRedis, key_id: uuid.UUID, *, traceparent: str | None, request_id: str | None
) -> None:
    """After a new key is committed: queue its first sync now rather than at the next due scan.

    Runs once the 201 is sent, so nothing here can fail the request. When Redis is down the key is
    stored all the same and still `pending`: the due scan finds it (never synced keys are due).
    """
    with contextlib.suppress(QueueUnavailable):
        await _enqueue_sync(queue, key_id, FIRST_SYNCS, traceparent=traceparent, request_id=request_id)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    job_id: str
    enqueued: bool


async def request_sync(
    session: AsyncSession,
    queue: ArqRedis,
    *,
    actor: Actor,
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    traceparent: str | None,
    request_id: str | None,
) -> SyncRequest:
    """Queue `sync_key` once per key: while a job with the same id waits, another press adds nothing."""
    # Held until commit: the audit row written after the (slow) enqueue cannot outlive an erasure.
    await erasure.refuse_erased(session, workspace_id)
    row = await KeyRepository(session).get(workspace_id, key_id)
    if row is None:
        raise KeyNotFound()
    if not row.is_active:
        raise KeyInactive()
    job_id = sync_job_id(key_id)
    enqueued = await _enqueue_sync(queue, key_id, SYNC_REQUESTS, traceparent=traceparent, request_id=request_id)
    await audit.record(
        session,
        actor=actor,
        action="sync_requested",
        key_id=key_id,
        workspace_id=workspace_id,
        details={"enqueued": enqueued},
    )
    return SyncRequest(job_id=job_id, enqueued=enqueued)


async def audit_of_key(
    session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID, paging: Pagination
) -> tuple[Sequence[AuditEvent], int]:
    """The key's history; 404 once the key is deleted (its rows remain until the workspace goes)."""
    if await KeyRepository(session).get(workspace_id, key_id) is None:
        raise KeyNotFound()
    return await AuditRepository(session).list_for_key(
        workspace_id, key_id, offset=paging.offset, limit=paging.per_page
    )
