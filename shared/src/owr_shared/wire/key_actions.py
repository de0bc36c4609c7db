"""The worker <-> usage internal bodies of key actions: writes to OpenRouter (`PATCH /keys/{hash}`) that usage
records and the worker carries out.

The worker claims one action (`POST /internal/key-actions/{id}/claim`): the answer says what to send and with
which account's management key (its id in keys, revealed by the worker from the vault), or why it cannot be
done. It then reports the outcome (`POST /internal/key-actions/{id}/result`).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from owr_shared.schemas import Money, RequestSchema
from owr_shared.wire.alerts import ReportedText

KeyActionKind = Literal["disable", "enable", "set_limit"]
# `skipped`: a rule's disable that came while the key was disabled or being disabled (recorded, never sent), or a
# user's enable superseded while pending by a user's disable.
KeyActionStatus = Literal["pending", "running", "done", "failed", "skipped"]
LimitReset = Literal["daily", "weekly", "monthly"]
# The worker's job: `manage_key_upstream(ctx, action_id)`, queued under `key-action:{id}`.
MANAGE_KEY_UPSTREAM_JOB = "manage_key_upstream"
OPEN_ACTIONS_MAX = 200
# A claim's lease: the worker's job timeout and a margin (a try arq cut short never outlives it); at most a day.
LEASE_MAX_SECONDS = 86_400


def manage_key_upstream_job_id(action_id: uuid.UUID | str) -> str:
    return f"{MANAGE_KEY_UPSTREAM_JOB}:{action_id}"


class KeyActionClaim(RequestSchema):
    lease_seconds: int = Field(default=120, ge=10, le=LEASE_MAX_SECONDS)


class ClaimedKeyAction(BaseModel):
    """What the worker sends, or (`ready` false) why it cannot: the action is then already failed with `error`,
    or (status done/failed/skipped) finished before this claim. `attempts` numbers the claim: its report carries it."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    key_id: uuid.UUID
    kind: KeyActionKind
    status: KeyActionStatus
    ready: bool
    error: str | None = None
    attempts: int = 0
    management_key_id: uuid.UUID | None = None
    api_key_hash: str | None = None
    limit_usd: Money | None = None
    limit_reset: LimitReset | None = None
    # A set_limit's `include_byok_in_limit`; None: not sent (OpenRouter keeps its setting).
    include_byok_in_limit: bool | None = None
    # For the key's audit trail in keys: why, what asked, and who (a user id; none for a rule).
    reason: str = ""
    source: Literal["user", "budget", "anomaly"] = "user"
    requested_by: str | None = None


class KeyActionResult(RequestSchema):
    """`done`: OpenRouter accepted the change (`disabled` and the limit as it answered); `failed`: it will not be
    tried again (`error` says why, shown to users); `retry`: the claim is released for a later try."""

    outcome: Literal["done", "failed", "retry"]
    # The claim this try holds (`ClaimedKeyAction.attempts`): a report of an earlier claim, whose lease ran out
    # and whose action was claimed again, changes nothing.
    attempt: int = Field(ge=1, le=1_000_000)
    error: ReportedText | None = Field(default=None, max_length=4000)
    disabled: bool | None = None
    limit_usd: Money | None = None
    limit_reset: str | None = Field(default=None, max_length=32)


class KeyActionState(BaseModel):
    id: uuid.UUID
    status: KeyActionStatus
    attempts: int


class OpenKeyActions(BaseModel):
    """Actions still pending whose job may have been lost (Redis away at enqueue): the worker queues them again."""

    ids: list[uuid.UUID]
