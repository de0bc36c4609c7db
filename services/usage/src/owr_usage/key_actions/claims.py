"""The worker's side of key actions: it claims an action for one try (`claim`), reports the outcome (`report`: a
disable that went through raises `key.disabled`), and sweeps the actions whose job was lost (`open_actions`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_shared.wire.key_actions import ClaimedKeyAction, KeyActionResult, KeyActionState
from owr_usage.alerts import service as alerts
from owr_usage.key_actions.models import ERROR_MAX, FINISHED, KeyAction
from owr_usage.key_actions.repository import KeyActionRepository
from owr_usage.key_actions.service import NOT_LINKED, SKIPPED_DISABLING, SKIPPED_RELEASED

log = get_logger(__name__)

# An action the sweep finds pending this long after it was recorded lost its job (Redis away at enqueue).
SWEEP_AFTER = timedelta(seconds=30)


def _claimed(action: KeyAction, *, ready: bool, link: dict[str, Any] | None = None) -> ClaimedKeyAction:
    return ClaimedKeyAction(
        id=action.id,
        workspace_id=action.workspace_id,
        key_id=action.key_id,
        kind=cast(Any, action.kind),
        status=cast(Any, action.status),
        ready=ready,
        error=action.error,
        attempts=action.attempts,
        management_key_id=link["management_key_id"] if link else None,
        api_key_hash=link["api_key_hash"] if link else None,
        limit_usd=action.limit_usd,
        limit_reset=cast(Any, action.limit_reset),
        include_byok_in_limit=action.include_byok_in_limit,
        reason=action.reason,
        source=cast(Any, action.source),
        requested_by=action.requested_by,
    )


async def claim(
    session: AsyncSession, *, action_id: uuid.UUID, lease_seconds: int, now: datetime
) -> ClaimedKeyAction | None:
    """Take the action for one try (None: no such action). Not ready when it is finished, held by another
    claim, waits for an earlier action on the key (actions apply in the order they were asked), or cannot be
    done: a key not linked to an account fails here, for good, with a reason users see."""
    repo = KeyActionRepository(session)
    action = await repo.locked(action_id)
    if action is None:
        return None
    if action.status in FINISHED or (
        action.status == "running" and action.lease_until is not None and action.lease_until > now
    ):
        return _claimed(action, ready=False)
    if await repo.earlier_open(action):
        return _claimed(action, ready=False)
    link = await repo.upstream(action.workspace_id, action.key_id)
    action.updated_at = now
    if link is None or link["api_key_hash"] is None or link["management_key_id"] is None:
        action.status, action.error, action.completed_at, action.lease_until = "failed", NOT_LINKED, now, None
        log.info("key_action_failed", reason="not_linked", action_id=str(action.id))
        await _release_skipped(repo, action)
        return _claimed(action, ready=False)
    action.status, action.lease_until = "running", now + timedelta(seconds=lease_seconds)
    action.attempts += 1
    await session.flush()
    return _claimed(action, ready=True, link=link)


async def report(
    session: AsyncSession, *, action_id: uuid.UUID, result: KeyActionResult, now: datetime
) -> KeyActionState | None:
    """The outcome of a try. Only a running action takes it, from its current claim: a repeated report, or a
    stale try's whose lease ran out and whose action was claimed again, changes nothing (at least once)."""
    repo = KeyActionRepository(session)
    action = await repo.locked(action_id)
    if action is None:
        return None
    if action.status == "running" and result.attempt != action.attempts:
        log.warning("key_action_report_stale", action_id=str(action.id), attempt=result.attempt)
    elif action.status == "running":
        action.updated_at, action.lease_until = now, None
        action.error = result.error[:ERROR_MAX] if result.error else None
        if result.outcome == "retry":
            action.status = "pending"
        else:
            action.status, action.completed_at = result.outcome, now
        if result.outcome == "done":
            await _applied(session, repo, action, result, now)
        elif result.outcome == "failed":
            await _release_skipped(repo, action)
        await session.flush()
    return KeyActionState(id=action.id, status=cast(Any, action.status), attempts=action.attempts)


async def _release_skipped(repo: KeyActionRepository, action: KeyAction) -> None:
    """A disable that failed never reached OpenRouter: the causes skipped behind it may disable the key again."""
    if action.kind != "disable":
        return
    await repo.lock_key(action.key_id)  # as `request_disable`: no skip is recorded behind it meanwhile
    released = await repo.release_skipped(action, because=SKIPPED_DISABLING, note=SKIPPED_RELEASED)
    if released:
        log.info("key_action_skips_released", action_id=str(action.id), released=released)


async def _applied(
    session: AsyncSession, repo: KeyActionRepository, action: KeyAction, result: KeyActionResult, now: datetime
) -> None:
    link = await repo.upstream(action.workspace_id, action.key_id)
    if link is not None and link["api_key_hash"] is not None:
        await repo.mark_account_row(
            link["management_key_id"],
            link["api_key_hash"],
            disabled=result.disabled,
            limit_usd=result.limit_usd,
            limit_reset=result.limit_reset,
            set_limit=action.kind == "set_limit",
            # As sent (OpenRouter took it): the report carries no BYOK setting, so an older usage reads it too.
            include_byok_in_limit=action.include_byok_in_limit,
        )
    log.info("key_action_done", kind=action.kind, source=action.source, action_id=str(action.id))
    if action.kind != "disable":
        return
    data = {
        "key_id": str(action.key_id),
        "key_name": link["key_name"] if link else None,
        "label": link["label"] if link else None,
        "reason": action.reason,
        "source": action.source,
        # Who asked, for a user's disable (a user id; none for a rule's).
        "requested_by": action.requested_by,
        "action_id": str(action.id),
        "budget_id": str(action.budget_id) if action.budget_id else None,
        "evidence": action.evidence,
    }
    await alerts.raise_event(
        session,
        workspace_id=action.workspace_id,
        type="key.disabled",
        data=data,
        occurred_at=now,
        dedup_key=f"key_action:{action.id}",
    )


async def open_actions(session: AsyncSession, *, now: datetime, limit: int) -> list[uuid.UUID]:
    """Actions whose job may be lost: pending a while, or running past their lease."""
    return await KeyActionRepository(session).open_ids(created_before=now - SWEEP_AFTER, now=now, limit=limit)
