"""SQL of the key links (which account row, if any, an inference key is linked to); callers own the transaction.

Writers hold the workspace's rollup lock (`RollupRepository.lock_workspaces`) while they relink.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.rollups.models import KeyLink

# The label rule: an inference key is linked to the one account row (one hash) its latest label names in
# the workspace's key lists, read through the freshest list (ties: the smallest management key id). Only
# keys whose label or link changed are written; the answer lists those whose link changed.
_REFRESH_LINKS = text(
    """
WITH cur AS (
    SELECT ks.key_id, ks.workspace_id, s.label, s.is_management_key
    FROM usage.key_states ks
    JOIN usage.snapshots s ON s.key_id = ks.key_id AND s.observed_at = ks.latest_observed_at
    WHERE ks.key_id = ANY(CAST(:key_ids AS uuid[]))
),
want AS (
    SELECT c.key_id, c.workspace_id, c.label, c.is_management_key, m.management_key_id, m.hash
    FROM cur c
    LEFT JOIN LATERAL (
        SELECT ak.management_key_id, ak.hash FROM usage.account_keys ak
        WHERE ak.workspace_id = c.workspace_id AND ak.label = c.label
        ORDER BY ak.observed_at DESC, ak.management_key_id
        LIMIT 1
    ) m ON NOT c.is_management_key AND c.label IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM usage.account_keys o
        WHERE o.workspace_id = c.workspace_id AND o.label = c.label AND o.hash <> m.hash
    )
),
changed AS (
    SELECT w.*, kl.management_key_id AS old_management_key_id,
           kl.api_key_hash AS old_hash
    FROM want w LEFT JOIN usage.key_links kl ON kl.key_id = w.key_id
    WHERE kl.key_id IS NULL
       OR kl.label IS DISTINCT FROM w.label
       OR kl.is_management_key <> w.is_management_key
       OR kl.management_key_id IS DISTINCT FROM w.management_key_id
       OR kl.api_key_hash IS DISTINCT FROM w.hash
),
written AS (
    INSERT INTO usage.key_links AS kl
        (key_id, workspace_id, label, is_management_key, management_key_id, api_key_hash, updated_at)
    SELECT key_id, workspace_id, label, is_management_key, management_key_id, hash, now()
    FROM changed ORDER BY key_id
    ON CONFLICT (key_id) DO UPDATE SET
        workspace_id = EXCLUDED.workspace_id,
        label = EXCLUDED.label,
        is_management_key = EXCLUDED.is_management_key,
        management_key_id = EXCLUDED.management_key_id,
        api_key_hash = EXCLUDED.api_key_hash,
        updated_at = EXCLUDED.updated_at
    RETURNING kl.key_id
)
SELECT c.key_id FROM changed c
WHERE (c.management_key_id, c.hash) IS DISTINCT FROM (c.old_management_key_id, c.old_hash)
"""
)


class KeyLinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def refresh_links(self, key_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Re-apply the label rule to these keys; returns the keys whose link changed."""
        if not key_ids:
            return []
        rows = await self.session.execute(_REFRESH_LINKS, {"key_ids": sorted(set(key_ids))})
        return [key_id for (key_id,) in rows.all()]

    async def link(self, workspace_id: uuid.UUID, key_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The (management key, hash) the key is linked to, if any."""
        row = (
            await self.session.execute(
                select(KeyLink.management_key_id, KeyLink.api_key_hash).where(
                    KeyLink.key_id == key_id, KeyLink.workspace_id == workspace_id
                )
            )
        ).first()
        if row is None or row.management_key_id is None or row.api_key_hash is None:
            return None
        return row.management_key_id, row.api_key_hash

    async def keys_linked_to(self, management_key_id: uuid.UUID, api_key_hash: str) -> list[uuid.UUID]:
        rows = await self.session.execute(
            text(
                "SELECT key_id FROM usage.key_links WHERE management_key_id = :m AND api_key_hash = :h ORDER BY key_id"
            ),
            {"m": management_key_id, "h": api_key_hash},
        )
        return [key_id for (key_id,) in rows.all()]

    async def link_candidates(
        self, workspace_id: uuid.UUID, management_key_id: uuid.UUID, labels: Sequence[str]
    ) -> list[uuid.UUID]:
        """Keys a change of this account's key list may relink: linked through it, or named by a label."""
        rows = await self.session.execute(
            text(
                """
                SELECT key_id FROM usage.key_links
                WHERE workspace_id = :w AND (label = ANY(CAST(:labels AS text[])) OR management_key_id = :m)
                ORDER BY key_id
                """
            ),
            {"w": workspace_id, "m": management_key_id, "labels": sorted(set(labels))},
        )
        return [key_id for (key_id,) in rows.all()]
