"""Queue the worker's `manage_key_upstream` job for each action a transaction recorded, once it commits.

The worker also sweeps open actions every minute (`POST /internal/key-actions/open`), so a job lost here (Redis
away, a test's sessionmaker without a queue) only delays the action; it never fails the request that asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.db import after_commit
from owr_shared.logging import get_logger
from owr_shared.wire.key_actions import MANAGE_KEY_UPSTREAM_JOB, manage_key_upstream_job_id

log = get_logger(__name__)

# Where a session finds its enqueuer: the sessionmaker's `info` (app.py), like the alerts' nudge.
ENQUEUE_INFO = "owr.key_actions.enqueue"

Enqueue = Callable[[uuid.UUID], Awaitable[None]]


def queue_enqueuer(queue: ArqRedis) -> Enqueue:
    """Queue the job under the action's own id: an action queued twice runs once at a time."""

    async def enqueue(action_id: uuid.UUID) -> None:
        try:
            await queue.enqueue_job(
                MANAGE_KEY_UPSTREAM_JOB, _job_id=manage_key_upstream_job_id(action_id), action_id=str(action_id)
            )
        except (RedisError, OSError) as exc:
            log.warning("key_action_enqueue_failed", error=type(exc).__name__)

    return enqueue


def enqueue_after_commit(session: AsyncSession, action_id: uuid.UUID) -> None:
    enqueue: Enqueue | None = session.info.get(ENQUEUE_INFO)
    if enqueue is None:
        return

    async def committed() -> None:
        await enqueue(action_id)

    after_commit(session, committed)
