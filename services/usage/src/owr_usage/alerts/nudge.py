"""Queue the worker's delivery run as soon as a transaction that raised events commits.

The worker also polls every few seconds, so a nudge lost (Redis away, a test's sessionmaker without one) only
delays a delivery until the next poll; it never fails the request that raised the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.db import after_commit
from owr_shared.logging import get_logger
from owr_shared.wire.alerts import DELIVER_ALERTS_JOB, DELIVER_ALERTS_JOB_ID

log = get_logger(__name__)

# Where a session finds its nudge: the sessionmaker's `info`, copied into every session it makes (app.py).
NUDGE_INFO = "owr.alerts.nudge"
_QUEUED = "owr.alerts.nudge_queued"

Nudge = Callable[[], Awaitable[None]]


def queue_nudge(queue: ArqRedis) -> Nudge:
    """A nudge that queues `deliver_alerts` under the poll's job id (a run queued or running absorbs it)."""

    async def nudge() -> None:
        try:
            await queue.enqueue_job(DELIVER_ALERTS_JOB, _job_id=DELIVER_ALERTS_JOB_ID)
        except (RedisError, OSError) as exc:
            log.warning("alert_nudge_failed", error=type(exc).__name__)

    return nudge


def nudge_after_commit(session: AsyncSession) -> None:
    """Nudge the worker once this session's transaction commits (once per transaction, whatever it raised)."""
    nudge: Nudge | None = session.info.get(NUDGE_INFO)
    if nudge is None or session.info.get(_QUEUED):
        return
    session.info[_QUEUED] = True

    async def committed() -> None:
        session.info.pop(_QUEUED, None)
        await nudge()

    after_commit(session, committed)
