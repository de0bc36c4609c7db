"""The service-token exchange with auth (`POST /internal/service-tokens`): what a service sends and gets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from owr_shared.schemas import RequestSchema, StorableText


class ServiceTokenRequest(RequestSchema):
    """Client credentials (RFC 6749 §4.4 in JSON) and what the token is for."""

    client_id: StorableText = Field(min_length=1, max_length=64)
    client_secret: StorableText = Field(min_length=1, max_length=1024, repr=False)
    audience: StorableText = Field(min_length=1, max_length=64)
    # Space-separated; omitted means every scope the client has.
    scope: StorableText | None = Field(default=None, max_length=512)


class ServiceTokenResponse(BaseModel):
    access_token: str = Field(repr=False)
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int
    scope: str
