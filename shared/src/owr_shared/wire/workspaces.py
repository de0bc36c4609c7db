"""The auth <-> peers internal bodies of a workspace's erasure and the orphan sweep.

keys and usage serve `GET /internal/workspaces` (the workspaces they hold rows for, a page at a time) and
`DELETE /internal/workspaces/{id}`; auth calls them, and serves the sweep the worker's cron calls.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

PAGE_LIMIT = 1000


class StoredWorkspaces(BaseModel):
    """A page of the workspace ids a service holds rows for, in id order; `next_after` pages on."""

    items: list[uuid.UUID]
    next_after: uuid.UUID | None = None


def stored_page(items: list[uuid.UUID], limit: int) -> StoredWorkspaces:
    """A listing page; `next_after` is set while a full page says more may follow."""
    return StoredWorkspaces(items=items, next_after=items[-1] if len(items) == limit else None)


class SweepResult(BaseModel):
    """One orphan sweep: deletions finished (accounts whose peers were away), and orphans erased."""

    pending_finished: int = Field(ge=0)
    pending_left: int = Field(ge=0)
    orphans_erased: int = Field(ge=0)
