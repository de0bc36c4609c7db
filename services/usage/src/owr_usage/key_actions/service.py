"""Key actions: writes to OpenRouter (`PATCH /keys/{hash}`) recorded here and carried out by the worker.

A user asks (disable, enable, apply a limit; a key no account links is refused at once), or a rule does in its
own transaction (`request_disable`: a budget's kill switch, an anomaly past the key's threshold). The row is the
audit trail: who or what asked, why, and how it went. The worker claims it (the account's management key id and
the key's hash come with the claim), sends the change, and reports; a disable that went through raises
`key.disabled`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.errors import Conflict
from owr_shared.logging import get_logger
from owr_shared.wire.key_actions import LimitReset
from owr_usage.alerts.service import money
from owr_usage.base import utcnow
from owr_usage.key_actions.enqueue import enqueue_after_commit
from owr_usage.key_actions.errors import KeyAlreadyDisabled, KeyDisableUnderWay, KeyNotKnown, KeyNotLinked
from owr_usage.key_actions.models import REASON_MAX, KeyAction
from owr_usage.key_actions.repository import KeyActionRepository
from owr_usage.key_actions.schemas import ACTIONS_SHOWN, KeyActionView, UpstreamView

log = get_logger(__name__)

NOT_LINKED = (
    "The key is not linked to an OpenRouter account: store the account's management key here and let it sync, "
    "then try again."
)
# Why a rule's disable was skipped (its `error`, shown in the key's trail).
SKIPPED_DISABLING = "a disable of the key was already under way"
SKIPPED_DISABLED = "the key was already disabled at OpenRouter"
SKIPPED_RELEASED = "; that disable failed, so this cause may disable the key again"
# A user's disable refused: why, as the problem a client sees.
USER_DISABLE_REFUSED: dict[str, Callable[[uuid.UUID], Conflict]] = {
    SKIPPED_DISABLING: KeyDisableUnderWay,
    SKIPPED_DISABLED: KeyAlreadyDisabled,
}
USER_DISABLE_REASON = "disabled at OpenRouter by a user"
# Why a pending enable was not sent (its `error`).
SUPERSEDED_BY_DISABLE = "superseded by a user's disable of the key before it was sent"


def _view(action: KeyAction) -> KeyActionView:
    return KeyActionView.model_validate(action, from_attributes=True)


async def _known(repo: KeyActionRepository, workspace_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, Any]:
    upstream = await repo.upstream(workspace_id, key_id)
    if upstream is None:
        raise KeyNotKnown()
    return upstream


async def _linked(repo: KeyActionRepository, workspace_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, Any]:
    """The key's link, refused at once (409) when no account's key list links it: the worker could not send it.
    The claim checks again (`NOT_LINKED`): a link lost between this and the claim fails the action there."""
    link = await _known(repo, workspace_id, key_id)
    if link["api_key_hash"] is None or link["management_key_id"] is None:
        raise KeyNotLinked()
    return link


async def _record(session: AsyncSession, action: KeyAction) -> KeyAction:
    await KeyActionRepository(session).add(action)
    enqueue_after_commit(session, action.id)
    log.info("key_action_requested", kind=action.kind, source=action.source, action_id=str(action.id))
    return action


async def _record_users(
    session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID, user_id: str, kind: str, **fields: Any
) -> KeyActionView:
    """Record a user's action (no `dedup_key`: each ask is its own) and queue it after the commit."""
    action = KeyAction(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        key_id=key_id,
        kind=kind,
        source="user",
        requested_by=user_id,
        **fields,
    )
    return _view(await _record(session, action))


# --- asked by users ---------------------------------------------------------------------------------------


async def request_enable(
    session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID, user_id: str
) -> KeyActionView:
    """Re-enable the key at OpenRouter (undoes the kill switch); 409 when no account links the key."""
    await _linked(KeyActionRepository(session), workspace_id, key_id)
    return await _record_users(
        session,
        workspace_id=workspace_id,
        key_id=key_id,
        user_id=user_id,
        kind="enable",
        reason="enabled at OpenRouter by a user",
    )


async def request_user_disable(
    session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID, user_id: str, reason: str | None
) -> KeyActionView:
    """Disable the key at OpenRouter now (a leak seen by a person): under the key's disable lock, as a rule's
    disable, but a refusal is said (409) rather than recorded `skipped`: not linked to an account, a disable under
    way, or disabled there already with no enable on its way. A pending enable is superseded (`skipped`, never
    sent); a running one, perhaps sent already, finishes first and this disable follows it (actions apply in
    order), so the key ends disabled either way."""
    repo = KeyActionRepository(session)
    await _linked(repo, workspace_id, key_id)
    # Only then the lock: another workspace's key id is a 404 without waiting on that key's transactions.
    await repo.lock_key(key_id)
    refused = await _disabled_or_disabling(repo, workspace_id, key_id)
    if refused is not None:
        raise USER_DISABLE_REFUSED[refused](key_id)
    now = utcnow()
    superseded = await repo.skip_pending_enables(workspace_id, key_id, error=SUPERSEDED_BY_DISABLE, now=now)
    return await _record_users(
        session,
        workspace_id=workspace_id,
        key_id=key_id,
        user_id=user_id,
        kind="disable",
        reason=f"{USER_DISABLE_REASON}: {reason}" if reason else USER_DISABLE_REASON,
        evidence={"superseded_enables": [str(i) for i in superseded]} if superseded else {},
    )


async def request_limit(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    user_id: str,
    amount_usd: Decimal,
    reset: LimitReset | None,
    include_byok: bool | None = None,
) -> KeyActionView:
    """Set the key's limit at OpenRouter (a hygiene report's suggested limit, or any other), and whether BYOK spend
    counts toward it (None: as OpenRouter has it); 409 when no account links the key."""
    await _linked(KeyActionRepository(session), workspace_id, key_id)
    byok = "" if include_byok is None else (", BYOK included" if include_byok else ", BYOK not included")
    return await _record_users(
        session,
        workspace_id=workspace_id,
        key_id=key_id,
        user_id=user_id,
        kind="set_limit",
        limit_usd=amount_usd,
        limit_reset=reset,
        include_byok_in_limit=include_byok,
        reason=f"limit set to {money(amount_usd)} USD ({reset or 'no reset'}{byok}) by a user",
    )


async def upstream(session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> UpstreamView:
    repo = KeyActionRepository(session)
    link = await _known(repo, workspace_id, key_id)
    switch = await repo.kill_switch(workspace_id, key_id)
    actions = await repo.of_key(workspace_id, key_id, limit=ACTIONS_SHOWN)
    linked = link["api_key_hash"] is not None
    return UpstreamView(
        key_id=key_id,
        linked=linked,
        management_key_id=link["management_key_id"],
        disabled=link["disabled"] if linked else None,
        limit_usd=link["limit_usd"],
        limit_reset=link["limit_reset"],
        observed_at=link["observed_at"],
        anomaly_score=switch.anomaly_score if switch else None,
        actions=[_view(a) for a in actions],
    )


async def set_kill_switch(
    session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID, anomaly_score: Decimal | None
) -> UpstreamView:
    repo = KeyActionRepository(session)
    await _known(repo, workspace_id, key_id)
    await repo.set_kill_switch(workspace_id, key_id, anomaly_score)
    return await upstream(session, workspace_id=workspace_id, key_id=key_id)


async def disabled_upstream(session: AsyncSession, key_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Of these keys, those OpenRouter has disabled (their account row, as listed or as our last action left it)
    or may have by now (a disable claimed and not finished)."""
    return await KeyActionRepository(session).disabled_upstream(sorted(set(key_ids)))


# --- asked by rules, in their transaction ---------------------------------------------------------------


async def request_disable(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    reason: str,
    source: str,
    dedup_key: str,
    evidence: dict[str, Any] | None = None,
    budget_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Record a disable in the caller's transaction, once per `dedup_key` (e.g. `budget:{id}:{period_start}`);
    the worker's job is queued after the commit. The action's id, or None when that cause had one already, or
    the key is being disabled or is disabled already (one leak trips several anomalies and a budget: one
    disable, one `key.disabled`). A cause skipped so is recorded `skipped`: after a user's enable, the same
    cause found again (an anomaly of the same day scored higher) does not disable the key again."""
    repo = KeyActionRepository(session)
    # Two rules' transactions at once (an ingestion, a budget's change) must not both find no open disable.
    await repo.lock_key(key_id)
    skipped = await _disabled_or_disabling(repo, workspace_id, key_id)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "workspace_id": workspace_id,
        "key_id": key_id,
        "kind": "disable",
        "source": source,
        "reason": reason[:REASON_MAX],
        "budget_id": budget_id,
        "evidence": evidence or {},
        "dedup_key": dedup_key,
    }
    if skipped is not None:
        values.update(status="skipped", error=skipped, completed_at=utcnow())
    written = await repo.add_once(values)
    if skipped is not None:
        log.info("key_action_skipped", kind="disable", source=source, reason="disabled_or_disabling")
        return None
    if written is None:
        return None
    enqueue_after_commit(session, written)
    log.info("key_action_requested", kind="disable", source=source, action_id=str(written))
    return written


async def _disabled_or_disabling(repo: KeyActionRepository, workspace_id: uuid.UUID, key_id: uuid.UUID) -> str | None:
    """Why a disable now is not sent, if so: a disable is open on the key, or its account row says OpenRouter has
    it disabled and no enable is on its way (a user's enable undoes it; a later cause may disable it again)."""
    open_kinds = await repo.open_kinds(workspace_id, key_id)
    if "disable" in open_kinds:
        return SKIPPED_DISABLING
    link = await repo.upstream(workspace_id, key_id)
    if link and link["api_key_hash"] is not None and link["disabled"] and "enable" not in open_kinds:
        return SKIPPED_DISABLED
    return None


async def disable_on_anomaly(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    key_id: uuid.UUID,
    score: Decimal,
    evidence: dict[str, Any],
    dedup_key: str,
) -> uuid.UUID | None:
    """An anomaly of `score` on the key: disable it when its kill switch is on and the score reaches the key's
    threshold (`PUT /api/v1/keys/{id}/kill-switch`). The action's id, or None."""
    switch = await KeyActionRepository(session).kill_switch(workspace_id, key_id)
    if switch is None or switch.anomaly_score is None or score < switch.anomaly_score:
        return None
    return await request_disable(
        session,
        workspace_id=workspace_id,
        key_id=key_id,
        reason=f"anomaly score {money(score)} reached the kill switch's threshold {money(switch.anomaly_score)}",
        source="anomaly",
        dedup_key=f"anomaly:{dedup_key}"[:200],
        evidence={"score": money(score), **evidence},
    )


class Anomaly(Protocol):
    """What the kill switch reads of an anomaly (`owr_usage.anomalies`' found anomalies have these)."""

    @property
    def workspace_id(self) -> uuid.UUID: ...
    @property
    def key_id(self) -> uuid.UUID: ...
    @property
    def day(self) -> date: ...
    @property
    def kind(self) -> str: ...
    @property
    def score(self) -> float: ...


async def disable_on_anomalies(session: AsyncSession, anomalies: Iterable[Anomaly]) -> list[uuid.UUID]:
    """`disable_on_anomaly` for each anomaly an evaluation found (once per key and day, whatever its kinds: a
    leak trips a spike, a dormant key's wake-up and a new model together); the actions' ids."""
    recorded = []
    for anomaly in anomalies:
        action = await disable_on_anomaly(
            session,
            workspace_id=anomaly.workspace_id,
            key_id=anomaly.key_id,
            score=Decimal(str(anomaly.score)),
            # The anomaly's own evidence too, when it carries any (its figures against the key's baseline).
            evidence={
                **(getattr(anomaly, "evidence", None) or {}),
                "kind": anomaly.kind,
                "day": anomaly.day.isoformat(),
            },
            dedup_key=f"{anomaly.key_id}:{anomaly.day.isoformat()}",
        )
        if action is not None:
            recorded.append(action)
    return recorded
