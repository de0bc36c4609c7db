"""Errors about the caller rather than a domain: missing workspace, missing scope."""

from __future__ import annotations

from owr_shared.errors import Forbidden


class WorkspaceRequired(Forbidden):
    """A verified token that does not act in a workspace cannot reach workspace data."""

    slug, title = "workspace-required", "Workspace Required"

    def __init__(self) -> None:
        super().__init__("The token does not name a workspace.")


class InsufficientScope(Forbidden):
    slug, title = "insufficient-scope", "Insufficient Scope"

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"The service token lacks the scope {scope!r}.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
