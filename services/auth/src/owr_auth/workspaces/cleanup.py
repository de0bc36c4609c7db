"""Erasing a workspace's data in the other services, before auth deletes the workspace itself.

Each peer serves `DELETE /internal/workspaces/{id}` (idempotent) behind a service token with scope
`workspaces:delete` and the peer's audience, minted locally with `sub: auth`. 204 and 404 both mean
nothing is left there; any other answer, a timeout or a refused connection raises
`WorkspaceCleanupUnavailable` (503), so the account deletion stops before any auth row goes and
the caller can retry. A later service joins by adding a `Peer` in `from_settings`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from owr_auth.service_tokens.service import own_service_token
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring
from owr_auth.workspaces.errors import WorkspaceCleanupUnavailable
from owr_shared.context import REQUEST_ID_HEADER, TRACEPARENT_HEADER, new_traceparent, request_id_var, trace_id_var
from owr_shared.logging import get_logger
from owr_shared.wire.workspaces import PAGE_LIMIT, StoredWorkspaces

log = get_logger(__name__)

WORKSPACES_DELETE_SCOPE = "workspaces:delete"
# Statuses after which the peer holds nothing of the workspace: deleted now, or never had / already gone.
_DONE = frozenset({204, 404})

TokenMinter = Callable[[str, Iterable[str]], str]


@dataclass(frozen=True, slots=True)
class Peer:
    """A service that keeps data per workspace: its name (for logs), base URL and token audience."""

    name: str
    base_url: str
    audience: str


def context_headers() -> dict[str, str]:
    """The current request id, and a traceparent continuing the current trace, for an outgoing call."""
    headers = {TRACEPARENT_HEADER: new_traceparent(trace_id_var.get())}
    request_id = request_id_var.get()
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


class WorkspaceCleanup:
    """Asks every peer to erase workspaces' data; raises `WorkspaceCleanupUnavailable` if one cannot."""

    def __init__(self, http: httpx.AsyncClient, mint_token: TokenMinter, peers: Sequence[Peer]) -> None:
        self._http = http
        self._mint_token = mint_token
        self.peers = tuple(peers)

    @classmethod
    def from_settings(cls, http: httpx.AsyncClient, keyring: Keyring, settings: AuthSettings) -> WorkspaceCleanup:
        def mint(audience: str, scopes: Iterable[str]) -> str:
            return own_service_token(keyring, settings, audience=audience, scopes=scopes)

        peers = [Peer("keys", settings.keys_url, "owr-keys")]
        if settings.usage_url is not None:
            peers.append(Peer("usage", settings.usage_url, "owr-usage"))
        return cls(http, mint, peers)

    async def erase(self, workspace_ids: Sequence[uuid.UUID]) -> None:
        """Erase each workspace's data in every peer, one call at a time; stop at the first failure."""
        for peer in self.peers:
            await self.erase_at(peer, workspace_ids)

    async def erase_at(self, peer: Peer, workspace_ids: Sequence[uuid.UUID]) -> None:
        """Erase each workspace's data in one peer; stop at the first failure."""
        if not workspace_ids:
            return
        token = self._mint_token(peer.audience, [WORKSPACES_DELETE_SCOPE])
        for workspace_id in workspace_ids:
            await self._erase_one(peer, token, workspace_id)

    async def stored_workspaces(self, peer: Peer) -> AsyncIterator[list[uuid.UUID]]:
        """The workspaces the peer holds rows for, a page at a time, in id order."""
        token = self._mint_token(peer.audience, [WORKSPACES_DELETE_SCOPE])
        after: uuid.UUID | None = None
        while True:
            params = {"limit": str(PAGE_LIMIT)} | ({"after": str(after)} if after else {})
            headers = {"authorization": f"Bearer {token}", **context_headers()}
            try:
                response = await self._http.get(f"{peer.base_url}/internal/workspaces", params=params, headers=headers)
                response.raise_for_status()
                page = StoredWorkspaces.model_validate_json(response.content)
            except (httpx.HTTPError, ValidationError) as exc:
                log.error("workspace_listing_failed", peer=peer.name, error_type=type(exc).__name__)
                raise WorkspaceCleanupUnavailable() from exc
            if page.items:
                yield page.items
            if page.next_after is None:
                return
            after = page.next_after

    async def _erase_one(self, peer: Peer, token: str, workspace_id: uuid.UUID) -> None:
        url = f"{peer.base_url}/internal/workspaces/{workspace_id}"
        headers = {"authorization": f"Bearer {token}", **context_headers()}
        try:
            response = await self._http.delete(url, headers=headers)
        except httpx.HTTPError as exc:
            log.error(
                "workspace_cleanup_failed",
                peer=peer.name,
                workspace_id=str(workspace_id),
                error_type=type(exc).__name__,
            )
            raise WorkspaceCleanupUnavailable() from exc
        if response.status_code not in _DONE:
            log.error(
                "workspace_cleanup_failed", peer=peer.name, workspace_id=str(workspace_id), status=response.status_code
            )
            raise WorkspaceCleanupUnavailable()
        log.info("workspace_data_erased", peer=peer.name, workspace_id=str(workspace_id), status=response.status_code)
