"""A session as stored in Redis, and the sign-in forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Each role's rank, as the API orders them (owner > admin > member > viewer): the pages hide what a role
# cannot do (the API refuses it anyway).
ROLE_RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass(slots=True)
class WebSession:
    """What Redis holds under a session id's hash; the tokens never leave the server.

    The workspace the access token acts in, the role it carries there and the person's workspaces (the
    header's switcher) are kept with it, renewed when the token changes workspace or role.
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: float  # Unix time
    csrf_token: str = field(repr=False)
    email: str
    created_at: float
    workspace_id: str = ""
    role: str = ""
    workspaces: list[dict[str, Any]] = field(default_factory=list)
    # Whether the person's email address is verified (the banner asks them to, until it is).
    email_verified: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebSession:
        # Sessions stored before a field existed load with its default.
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    @property
    def workspace_name(self) -> str:
        return next((str(w["name"]) for w in self.workspaces if w.get("id") == self.workspace_id), "")

    def can(self, role: str) -> bool:
        """Whether the session's role in its workspace is at least `role`."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]
