"""Keeping the daily rows and their rollups exact as figures arrive: one hook per kind of ingestion.

- snapshots: the (key, day) pairs their derivation touched; a key whose label now links it elsewhere gets
  all its days rebuilt;
- activity: the keys linked to that hash, on the days replaced;
- a key list: every key it may relink (linked through it, or named by an old or new label), all days.

Each hook first takes the rollup lock of the workspaces involved (see the repository), so it reads the
links and figures every earlier writer committed; all the work is set-based, a few statements per call.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.reconciliation import service as reconciliation
from owr_usage.rollups.links_repository import KeyLinkRepository
from owr_usage.rollups.repository import RollupRepository


async def after_snapshots(
    session: AsyncSession, workspaces: Mapping[uuid.UUID, uuid.UUID], days: Iterable[tuple[uuid.UUID, dt.date]]
) -> set[tuple[uuid.UUID, dt.date]]:
    """Snapshots were stored: `workspaces` maps each key of the batch to its workspace, `days` are the
    (key, day) pairs whose `key_days` were re-derived. Returns the (key, day)s whose daily rows changed."""
    targets = set(days)
    if not targets:
        return set()
    keys = {key for key, _ in targets}
    repo = RollupRepository(session)
    await repo.lock_workspaces(workspaces[key] for key in keys)
    relinked = await KeyLinkRepository(session).refresh_links(sorted(keys))
    # A day whose daily rows would come out the same is left alone (most re-derivations change one day:
    # today's provisional figure); a relinked key has every day rebuilt.
    relinked_keys = set(relinked)
    changed = set(await repo.changed_days(sorted((key, day) for key, day in targets if key not in relinked_keys)))
    changed.update(await repo.all_days(relinked))
    await repo.rebuild(sorted(changed))
    # The targets' own gaps are counted by the caller (it saw them before the derivation).
    await reconciliation.count_relinked(session, relinked, counted_elsewhere=targets)
    return changed


async def after_activity(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    management_key_id: uuid.UUID,
    api_key_hash: str,
    dates: Collection[dt.date],
) -> list[uuid.UUID]:
    """A key hash's activity was replaced on `dates`: rebuild those days of the keys linked to it (returned)."""
    if not dates:
        return []
    repo = RollupRepository(session)
    await repo.lock_workspaces([workspace_id])
    keys = await KeyLinkRepository(session).keys_linked_to(management_key_id, api_key_hash)
    await repo.rebuild([(key, day) for key in keys for day in dates])
    return list(keys)


async def after_key_list(
    session: AsyncSession, workspace_id: uuid.UUID, management_key_id: uuid.UUID, labels: Collection[str]
) -> list[uuid.UUID]:
    """An account's key list was replaced; `labels` are those of the old and the new list. Returns the keys
    whose link changed."""
    repo = RollupRepository(session)
    await repo.lock_workspaces([workspace_id])
    links = KeyLinkRepository(session)
    candidates = await links.link_candidates(workspace_id, management_key_id, sorted(labels))
    relinked = await links.refresh_links(candidates)
    await repo.rebuild(await repo.all_days(relinked))
    await reconciliation.count_relinked(session, relinked)
    return relinked
