"""usage's key action routes, as the worker calls them (scope `usage:ingest`, audience `owr-usage`), and keys'
audit of them (scope `keys:status`, audience `owr-keys`).

`POST /internal/key-actions/{id}/claim` takes an action for one try, `POST /internal/key-actions/{id}/result`
reports it, `GET /internal/key-actions/open` lists those whose job may have been lost; keys'
`POST /internal/keys/{id}/upstream-audit` puts a write made at OpenRouter into the key's audit trail.
"""

from __future__ import annotations

import uuid

from owr_shared.wire.key_actions import (
    OPEN_ACTIONS_MAX,
    ClaimedKeyAction,
    KeyActionClaim,
    KeyActionResult,
    KeyActionState,
    OpenKeyActions,
)
from owr_shared.wire.keys import UpstreamAudit
from owr_worker.internal import KEYS_AUDIENCE, USAGE_AUDIENCE, _InternalClient


class KeyActionsClient(_InternalClient):
    service = "usage"
    audience = USAGE_AUDIENCE

    async def claim(self, action_id: uuid.UUID, *, lease_seconds: int) -> ClaimedKeyAction | None:
        """The action for one try (see `ready`), or None when usage no longer has it."""
        request = KeyActionClaim(lease_seconds=lease_seconds)
        status, body = await self._call(
            "POST", f"/internal/key-actions/{action_id}/claim", body=request, expect=(200,), tolerate=(404,)
        )
        return None if status == 404 else self._answer(ClaimedKeyAction, body, "key action claim")

    async def report(self, action_id: uuid.UUID, result: KeyActionResult) -> KeyActionState | None:
        status, body = await self._call(
            "POST", f"/internal/key-actions/{action_id}/result", body=result, expect=(200,), tolerate=(404,)
        )
        return None if status == 404 else self._answer(KeyActionState, body, "key action result")

    async def open_ids(self, *, limit: int = OPEN_ACTIONS_MAX) -> list[uuid.UUID]:
        _, body = await self._call("GET", "/internal/key-actions/open", params={"limit": str(limit)}, expect=(200,))
        return self._answer(OpenKeyActions, body, "open key actions").ids


class UpstreamAuditClient(_InternalClient):
    service = "keys"
    audience = KEYS_AUDIENCE

    async def record(self, key_id: uuid.UUID, report: UpstreamAudit) -> bool:
        """Record the write in the key's audit; False when keys no longer has the key."""
        status, _ = await self._call(
            "POST", f"/internal/keys/{key_id}/upstream-audit", body=report, expect=(204,), tolerate=(404,)
        )
        return status == 204
