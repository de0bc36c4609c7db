"""The worker <-> keys internal bodies: the due list, reveals and status reports.

keys serves and parses them; the worker builds and parses the very same models.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from owr_shared.schemas import Money, RequestSchema

KeyKind = Literal["inference", "management"]
KeyStatus = Literal["pending", "valid", "invalid", "disabled", "error"]
# The `limit_reset` values keys stores (OpenRouter's daily, weekly, monthly, and any like them).
LIMIT_RESET = re.compile(r"^[a-z_]{1,32}$")
LAST_ERROR_INPUT_MAX = 4000
BATCH_MAX = 500


class DueKey(BaseModel):
    """A key due for sync; no secret (the worker asks for it with a reveal)."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    kind: KeyKind | None
    status: KeyStatus
    last_synced_at: datetime | None


class DueKeys(BaseModel):
    items: list[DueKey]


# Keys OpenRouter rejected: left out of the due scan, the only ones (daily validation), or included.
InvalidFilter = Literal["exclude", "only", "include"]


class DueClaim(RequestSchema):
    """Lease the next due keys for a sync, none another scan holds: each workspace's most overdue keys
    first, its first key before any workspace's second. The leases are the paging: a scan's next claim is
    its next page. `after` (an earlier release's keyset cursor) is accepted and ignored."""

    limit: int = Field(default=1000, ge=1, le=1000)
    after: uuid.UUID | None = None
    invalid: InvalidFilter = "exclude"


class RevealedKey(BaseModel):
    """The plaintext key: only ever sent to a service, and audited; with its workspace and its name (which the
    key rules' alerts show; absent from older keys services)."""

    workspace_id: uuid.UUID
    key: str = Field(repr=False)
    name: str | None = None


class StatusReport(RequestSchema):
    """The outcome of one sync. Fields left out keep their value; `last_error` left out is cleared.

    Senders serialise it with `exclude_unset`, so "left out" survives the wire.
    """

    kind: KeyKind | None = None
    status: KeyStatus
    limit: Money | None = None
    limit_reset: Annotated[str, StringConstraints(pattern=LIMIT_RESET.pattern)] | None = None
    limit_remaining: Money | None = None
    expires_at: AwareDatetime | None = None
    last_synced_at: AwareDatetime
    # Longer input is accepted and cut, so a verbose upstream error never fails the report itself.
    last_error: str | None = Field(default=None, max_length=LAST_ERROR_INPUT_MAX)


KeyIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=BATCH_MAX)]


class RevealBatch(RequestSchema):
    """Several keys to reveal at once (the worker batches the reveals of concurrent jobs)."""

    ids: KeyIds


class RevealedItem(RevealedKey):
    id: uuid.UUID


class UnrevealedItem(BaseModel):
    """A key that could not be revealed: gone, deactivated, or failing to decrypt."""

    id: uuid.UUID
    reason: Literal["not_found", "inactive", "unreadable"]


class RevealedBatch(BaseModel):
    items: list[RevealedItem]
    unavailable: list[UnrevealedItem]


class StatusItem(StatusReport):
    id: uuid.UUID


class StatusBatch(RequestSchema):
    items: Annotated[list[StatusItem], Field(min_length=1, max_length=BATCH_MAX)]


class StatusBatchResult(BaseModel):
    """Which reports took effect, which were older than the state already applied, which keys are gone."""

    applied: list[uuid.UUID]
    ignored: list[uuid.UUID]
    not_found: list[uuid.UUID]


class UpstreamAudit(RequestSchema):
    """A write the worker made at OpenRouter on a key (issue 17), for the key's audit trail: the action's id in
    usage (a repeated report records nothing more), why, and who asked (a user id, or none for a rule)."""

    action: Literal["upstream_disabled", "upstream_enabled", "upstream_limit_set"]
    action_id: uuid.UUID
    reason: str = Field(max_length=300)
    source: Literal["user", "budget", "anomaly"]
    requested_by: str | None = Field(default=None, max_length=128)
    limit: Money | None = None
    limit_reset: Annotated[str, StringConstraints(pattern=LIMIT_RESET.pattern)] | None = None
