"""A session as stored in Redis, and the sign-in forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class WebSession:
    """What Redis holds under a session id's hash; the tokens never leave the server."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: float  # Unix time
    csrf_token: str = field(repr=False)
    email: str
    created_at: float
    # Whether the person's email address is verified (the banner asks them to, until it is).
    email_verified: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebSession:
        # A session stored before a field existed takes the field's default.
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
