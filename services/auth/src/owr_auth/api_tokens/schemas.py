"""API token requests and views. A token's value appears in exactly one response: its creation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from owr_shared.auth import Role
from owr_shared.schemas import RequestSchema, StorableText

Scope = Literal["usage:read", "keys:read", "keys:write", "keys:sync", "alerts:read", "alerts:write"]
SCOPES: tuple[Scope, ...] = ("usage:read", "keys:read", "keys:write", "keys:sync", "alerts:read", "alerts:write")
READ_ONLY: tuple[Scope, ...] = ("usage:read", "keys:read")


class CreateTokenRequest(RequestSchema):
    name: Annotated[StorableText, Field(min_length=1, max_length=100)]
    scopes: list[Scope] = Field(default_factory=lambda: list(READ_ONLY), min_length=1, description="default: read-only")
    expires_in_days: int | None = Field(default=None, ge=1, le=365, description="default: 90 days")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=100_000, description="this token's own gateway limit; default: the gateway's"
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return sorted(set(value), key=SCOPES.index)


class TokenView(BaseModel):
    """A token as lists show it: never its value, only the prefix that tells it apart."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    workspace_id: uuid.UUID = Field(description="the workspace it acts in")
    role: Role = Field(description="its minter's role when it was made: the most it may do there")
    rate_limit_per_minute: int | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime


class CreatedToken(TokenView):
    token: str = Field(repr=False, description="shown this once; store it now")


class IntrospectionRequest(RequestSchema):
    token: str = Field(repr=False, max_length=256)


class Introspection(BaseModel):
    """RFC 7662's shape: `active` false says nothing more; active carries the caller and a short JWT."""

    active: bool
    token_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    workspace_id: uuid.UUID | None = None
    scopes: list[Scope] | None = None
    rate_limit_per_minute: int | None = None
    expires_at: datetime | None = None
    access_token: str | None = Field(default=None, repr=False)
    access_token_expires_in: int | None = None
    cache_seconds: int | None = Field(default=None, description="how long the gateway may keep this answer")
